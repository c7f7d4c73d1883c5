/// y = x W: x is [rows, k] (trailing dimensions flattened), W is [k, n].
public struct MatMul: Operation {
    public var kind: String { "matmul" }
    public var inputCount: Int { 2 }

    public init() {}

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (x, w) = (inputShapes[0], inputShapes[1])
        let count = x.reduce(1, *)
        guard w.count == 2, w[0] > 0, count % w[0] == 0 else {
            throw ShapeMismatch(kind, "input \(x) does not fit weight \(w)")
        }
        return [[count / w[0], w[1]]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (x, w) = (inputs[0], inputs[1])
        let (k, n) = (w.shape[0], w.shape[1])
        precondition(x.count % k == 0, "matmul: input \(x.shape) does not fit weight \(w.shape)")
        let m = rows(x, columns: k)
        return [x.data.withUnsafeBufferPointer { xp in
            w.data.withUnsafeBufferPointer { wp in
                Tensor(shape: [m, n]) { out in
                    BLAS.sgemm(m: m, n: n, k: k, xp.baseAddress!, wp.baseAddress!, out.baseAddress!)
                }
            }
        }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return [nil, nil] }
        let (x, w) = (args.input(0), args.input(1))
        let (k, n) = (w.shape[0], w.shape[1])
        let m = rows(x, columns: k)
        var dx: Tensor?
        var dw: Tensor?
        dy.data.withUnsafeBufferPointer { dyp in
            if args.wanted[0] {
                dx = w.data.withUnsafeBufferPointer { wp in
                    Tensor(shape: x.shape) { out in  // dX = dY W^T
                        BLAS.sgemm(transposeB: true, m: m, n: k, k: n, dyp.baseAddress!, wp.baseAddress!, out.baseAddress!)
                    }
                }
            }
            if args.wanted[1] {
                dw = x.data.withUnsafeBufferPointer { xp in
                    Tensor(shape: w.shape) { out in  // dW = X^T dY
                        BLAS.sgemm(transposeA: true, m: k, n: n, k: m, xp.baseAddress!, dyp.baseAddress!, out.baseAddress!)
                    }
                }
            }
        }
        return [dx, dw]
    }
}

/// y = x + b broadcast along dimension 1 (features of a [rows, features] matrix, channels of NCHW).
public struct BiasAdd: Operation {
    public var kind: String { "bias_add" }
    public var inputCount: Int { 2 }
    public var backwardReadsInputs: Set<Int> { [] }

    public init() {}

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (x, b) = (inputShapes[0], inputShapes[1])
        guard x.count >= 2, x[1] == b.reduce(1, *) else { throw ShapeMismatch(kind, "\(b) does not fit \(x)") }
        return [x]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (x, b) = (inputs[0], inputs[1])
        let channels = b.count
        precondition(x.shape.count >= 2 && x.shape[1] == channels, "bias_add: \(b.shape) does not fit \(x.shape)")
        let inner = x.shape.dropFirst(2).reduce(1, *)
        return [x.data.withUnsafeBufferPointer { xp in
            b.data.withUnsafeBufferPointer { bp in
                Tensor(shape: x.shape) { out in
                    let (xp, bp, out) = (xp.baseAddress!, bp.baseAddress!, out.baseAddress!)
                    for row in 0..<x.shape[0] {
                        if inner == 1 {  // [rows, features]: one contiguous row at a time
                            let offset = row * channels
                            for c in 0..<channels { out[offset + c] = xp[offset + c] + bp[c] }
                            continue
                        }
                        for c in 0..<channels {
                            let offset = (row * channels + c) * inner
                            let (bias, source, target) = (bp[c], xp + offset, out + offset)
                            for j in 0..<inner { target[j] = source[j] + bias }
                        }
                    }
                }
            }
        }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return [nil, nil] }
        let channels = dy.shape[1]
        let inner = dy.shape.dropFirst(2).reduce(1, *)
        var db: Tensor?
        if args.wanted[1] {
            // Rows summed in Float, one row at a time, into Double totals per channel.
            var sums = [Double](repeating: 0, count: channels)
            var rowSums = [Float](repeating: 0, count: channels)
            dy.data.withUnsafeBufferPointer { g in
                let g = g.baseAddress!
                for row in 0..<dy.shape[0] {
                    rowSums.withUnsafeMutableBufferPointer { r in
                        for c in 0..<channels {
                            let offset = (row * channels + c) * inner
                            var s: Float = 0
                            for j in 0..<inner { s += g[offset + j] }
                            r[c] = s
                        }
                    }
                    for c in 0..<channels { sums[c] += Double(rowSums[c]) }
                }
            }
            db = Tensor(shape: [channels], data: sums.map { Float($0) })
        }
        return [args.wanted[0] ? dy : nil, db]
    }
}

/// y = a + b for tensors of equal shape (residual connections).
public struct Add: Operation {
    public var kind: String { "add" }
    public var inputCount: Int { 2 }
    public var backwardReadsInputs: Set<Int> { [] }

    public init() {}

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        guard inputShapes[0] == inputShapes[1] else {
            throw ShapeMismatch(kind, "\(inputShapes[0]) and \(inputShapes[1]) differ")
        }
        return [inputShapes[0]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        [inputs[0].zipped(inputs[1], +)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return [nil, nil] }
        return [args.wanted[0] ? dy : nil, args.wanted[1] ? dy : nil]
    }
}
