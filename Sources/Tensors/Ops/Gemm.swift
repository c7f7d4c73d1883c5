/// ONNX's Gemm: Y = alpha op(A) op(B) + beta C, where op transposes when asked and C (optional)
/// broadcasts to [M, N]. PyTorch exports every `nn.Linear` on matrices as Gemm with transB = 1.
public struct Gemm: Operation {
    public var transposeA: Bool
    public var transposeB: Bool
    public var alpha: Float
    public var beta: Float
    public var hasBias: Bool
    public var kind: String { "gemm" }
    public var inputCount: Int { hasBias ? 3 : 2 }

    public init(transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1, beta: Float = 1, hasBias: Bool = true) {
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.alpha = alpha
        self.beta = beta
        self.hasBias = hasBias
    }

    /// (M, K, N) of inputs of these shapes, or nil when they do not fit.
    private func sizes(_ a: [Int], _ b: [Int]) -> (m: Int, k: Int, n: Int)? {
        guard a.count == 2, b.count == 2 else { return nil }
        let (m, k) = transposeA ? (a[1], a[0]) : (a[0], a[1])
        let (k2, n) = transposeB ? (b[1], b[0]) : (b[0], b[1])
        return k == k2 ? (m, k, n) : nil
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        guard let (m, _, n) = sizes(inputShapes[0], inputShapes[1]) else {
            throw ShapeMismatch(kind, "\(inputShapes[0]) and \(inputShapes[1]) do not multiply")
        }
        if hasBias, Broadcast.shape(inputShapes[2], [m, n]) != [m, n] {
            throw ShapeMismatch(kind, "bias \(inputShapes[2]) does not broadcast to [\(m), \(n)]")
        }
        return [[m, n]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (a, b) = (inputs[0], inputs[1])
        guard let (m, k, n) = sizes(a.shape, b.shape) else { preconditionFailure("gemm: \(a.shape) and \(b.shape) do not multiply") }
        var y = a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                Tensor(shape: [m, n]) { out in
                    BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                               ap.baseAddress!, bp.baseAddress!, out.baseAddress!)
                }
            }
        }
        if hasBias {
            let c = inputs[2]
            let beta = self.beta
            y.data.withUnsafeMutableBufferPointer { out in
                c.data.withUnsafeBufferPointer { cp in
                    Broadcast.forEach([m, n], [m, n], c.shape) { o, _, j in out[o] += beta * cp[j] }
                }
            }
        }
        return [y]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return Array(repeating: nil, count: inputCount) }
        let (a, b) = (args.input(0), args.input(1))
        let (m, k, n) = sizes(a.shape, b.shape)!
        var gradients: [Tensor?] = Array(repeating: nil, count: inputCount)
        dy.data.withUnsafeBufferPointer { g in
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    let (g, ap, bp) = (g.baseAddress!, ap.baseAddress!, bp.baseAddress!)
                    if args.wanted[0] {
                        gradients[0] = Tensor(shape: a.shape) { out in
                            if transposeA {  // dA = alpha op(B) dY^T, [K, M]
                                BLAS.sgemm(transposeA: transposeB, transposeB: true, m: k, n: m, k: n, alpha: alpha, bp, g, out.baseAddress!)
                            } else {  // dA = alpha dY op(B)^T, [M, K]
                                BLAS.sgemm(transposeB: !transposeB, m: m, n: k, k: n, alpha: alpha, g, bp, out.baseAddress!)
                            }
                        }
                    }
                    if args.wanted[1] {
                        gradients[1] = Tensor(shape: b.shape) { out in
                            if transposeB {  // dB = alpha dY^T op(A), [N, K]
                                BLAS.sgemm(transposeA: true, transposeB: transposeA, m: n, n: k, k: m, alpha: alpha, g, ap, out.baseAddress!)
                            } else {  // dB = alpha op(A)^T dY, [K, N]
                                BLAS.sgemm(transposeA: !transposeA, m: k, n: n, k: m, alpha: alpha, ap, g, out.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        if hasBias, args.wanted[2] {
            let reduced = Broadcast.reduce(dy, to: args.input(2).shape)
            gradients[2] = beta == 1 ? reduced : reduced.mapped { beta * $0 }
        }
        return gradients
    }
}

/// ONNX's MatMul on tensors of rank 2 or more: a matrix product over the last two dimensions,
/// broadcast over the leading (batch) ones, as `numpy.matmul`. A rank-2 right side (a linear layer on
/// a sequence) is one product of the flattened rows.
public struct BatchedMatMul: Operation {
    public var kind: String { "batched_matmul" }
    public var inputCount: Int { 2 }

    public init() {}

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (a, b) = (inputShapes[0], inputShapes[1])
        guard a.count >= 2, b.count >= 2, a[a.count - 1] == b[b.count - 2],
              let batch = Broadcast.shape(Array(a.dropLast(2)), Array(b.dropLast(2))) else {
            throw ShapeMismatch(kind, "\(a) and \(b) do not multiply")
        }
        return [batch + [a[a.count - 2], b[b.count - 1]]]
    }

    /// Calls `body(o, i, j)` for each matrix `o` of the output with the matrices `i` of A and `j` of B
    /// it multiplies.
    private func forEachProduct(_ a: [Int], _ b: [Int], _ body: (Int, Int, Int) -> Void) {
        let (batchA, batchB) = (Array(a.dropLast(2)), Array(b.dropLast(2)))
        let batch = Broadcast.shape(batchA, batchB)!
        Broadcast.forEach(batch, batchA, batchB, body)
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (a, b) = (inputs[0], inputs[1])
        let shape = try! outputShapes([a.shape, b.shape])[0]
        let (m, k, n) = (a.shape[a.shape.count - 2], b.shape[b.shape.count - 2], b.shape[b.shape.count - 1])
        return [a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                Tensor(shape: shape) { out in
                    let (ap, bp, out) = (ap.baseAddress!, bp.baseAddress!, out.baseAddress!)
                    if b.shape.count == 2 {
                        BLAS.sgemm(m: a.count / k, n: n, k: k, ap, bp, out)
                        return
                    }
                    forEachProduct(a.shape, b.shape) { o, i, j in
                        BLAS.sgemm(m: m, n: n, k: k, ap + i * m * k, bp + j * k * n, out + o * m * n)
                    }
                }
            }
        }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return [nil, nil] }
        let (a, b) = (args.input(0), args.input(1))
        let (m, k, n) = (a.shape[a.shape.count - 2], b.shape[b.shape.count - 2], b.shape[b.shape.count - 1])
        var da = args.wanted[0] ? Tensor(zeros: a.shape) : nil
        var db = args.wanted[1] ? Tensor(zeros: b.shape) : nil
        dy.data.withUnsafeBufferPointer { g in
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    let (g, ap, bp) = (g.baseAddress!, ap.baseAddress!, bp.baseAddress!)
                    if b.shape.count == 2 {
                        let rows = a.count / k
                        da?.data.withUnsafeMutableBufferPointer { BLAS.sgemm(transposeB: true, m: rows, n: k, k: n, g, bp, $0.baseAddress!) }
                        db?.data.withUnsafeMutableBufferPointer { BLAS.sgemm(transposeA: true, m: k, n: n, k: rows, ap, g, $0.baseAddress!) }
                        return
                    }
                    // Products of broadcast matrices add up: beta 1 accumulates into the zeroed gradients.
                    forEachProduct(a.shape, b.shape) { o, i, j in
                        da?.data.withUnsafeMutableBufferPointer {
                            BLAS.sgemm(transposeB: true, m: m, n: k, k: n, g + o * m * n, bp + j * k * n, beta: 1, $0.baseAddress! + i * m * k)
                        }
                        db?.data.withUnsafeMutableBufferPointer {
                            BLAS.sgemm(transposeA: true, m: k, n: n, k: m, ap + i * m * k, g + o * m * n, beta: 1, $0.baseAddress! + j * k * n)
                        }
                    }
                }
            }
        }
        return [da, db]
    }
}
