/// NumPy's broadcasting rule, as ONNX's element-wise ops use it: shapes are aligned at their last
/// dimension, and a dimension of 1 (or a missing one) stretches to the other's size.
public enum Broadcast {
    /// The broadcast shape of `a` and `b`, or nil when a pair of dimensions differs and neither is 1.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard x == y || x == 1 || y == 1 else { return nil }
            out[i] = x == 1 ? y : x
        }
        return out
    }

    /// Element strides of `shape` as seen from `output`'s indices: 0 along stretched dimensions.
    static func strides(of shape: [Int], in output: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: output.count)
        var step = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let o = i + output.count - shape.count
            strides[o] = shape[i] == 1 ? 0 : step
            step *= shape[i]
        }
        return strides
    }

    /// Calls `body(o, i, j)` for every element `o` of `output` with the positions `i` in `a` and `j`
    /// in `b` it reads. The last dimension runs innermost with fixed strides, so the common cases
    /// (equal shapes, a bias along the last axis, a scalar) are tight loops.
    @inline(__always)
    static func forEach(_ output: [Int], _ a: [Int], _ b: [Int], _ body: (Int, Int, Int) -> Void) {
        let count = output.reduce(1, *)
        guard count > 0 else { return }
        if a == output && b == output {
            for o in 0..<count { body(o, o, o) }
            return
        }
        let (sa, sb) = (strides(of: a, in: output), strides(of: b, in: output))
        let rank = output.count
        guard rank > 0 else { body(0, 0, 0); return }
        let inner = output[rank - 1]
        let (ia, ib) = (sa[rank - 1], sb[rank - 1])
        var index = [Int](repeating: 0, count: rank)
        var (baseA, baseB) = (0, 0)
        var o = 0
        while o < count {
            for k in 0..<inner { body(o + k, baseA + k * ia, baseB + k * ib) }
            o += inner
            // Advance the outer dimensions like an odometer.
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                baseA += sa[d]
                baseB += sb[d]
                if index[d] < output[d] { break }
                baseA -= sa[d] * output[d]
                baseB -= sb[d] * output[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// `gradient` (of the broadcast output's shape) summed over the dimensions `shape` was stretched
    /// along: the gradient of the input that had `shape`.
    static func reduce(_ gradient: Tensor, to shape: [Int]) -> Tensor {
        if gradient.shape == shape { return gradient }
        var sums = [Float](repeating: 0, count: shape.reduce(1, *))
        gradient.data.withUnsafeBufferPointer { g in
            sums.withUnsafeMutableBufferPointer { s in
                forEach(gradient.shape, shape, gradient.shape) { o, i, _ in s[i] += g[o] }
            }
        }
        return Tensor(shape: shape, data: sums)
    }
}

/// Add, Sub, Mul and Div of two tensors with broadcasting (ONNX's element-wise arithmetic). The
/// gradient of a stretched input is summed over the dimensions it was stretched along.
public struct BroadcastArithmetic: Operation {
    public enum Operator: String, Sendable { case add, sub, mul, div }
    public var op: Operator
    public var kind: String { op.rawValue }
    public var inputCount: Int { 2 }
    /// Sums and differences need only the shapes, which travel as small extra outputs.
    public var outputCount: Int { 3 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { op == .add || op == .sub ? [] : [0, 1] }
    public var backwardReadsOutputs: Set<Int> { op == .add || op == .sub ? [1, 2] : [] }

    public init(_ op: Operator) { self.op = op }

    /// The result, then the two inputs' shapes (for backward).
    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (a, b) = (inputShapes[0], inputShapes[1])
        guard let out = Broadcast.shape(a, b) else { throw ShapeMismatch(kind, "\(a) and \(b) do not broadcast") }
        return [out, [a.count], [b.count]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (a, b) = (inputs[0], inputs[1])
        guard let shape = Broadcast.shape(a.shape, b.shape) else { preconditionFailure("\(kind): \(a.shape) and \(b.shape) do not broadcast") }
        let y = a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                Tensor(shape: shape) { out in
                    switch op {
                    case .add: Broadcast.forEach(shape, a.shape, b.shape) { o, i, j in out[o] = ap[i] + bp[j] }
                    case .sub: Broadcast.forEach(shape, a.shape, b.shape) { o, i, j in out[o] = ap[i] - bp[j] }
                    case .mul: Broadcast.forEach(shape, a.shape, b.shape) { o, i, j in out[o] = ap[i] * bp[j] }
                    case .div: Broadcast.forEach(shape, a.shape, b.shape) { o, i, j in out[o] = ap[i] / bp[j] }
                    }
                }
            }
        }
        return [y, shapeTensor(a.shape), shapeTensor(b.shape)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return [nil, nil] }
        switch op {
        case .add, .sub:
            let (a, b) = (shapeFrom(args.output(1)), shapeFrom(args.output(2)))
            let da = args.wanted[0] ? Broadcast.reduce(dy, to: a) : nil
            let db = args.wanted[1] ? Broadcast.reduce(op == .add ? dy : dy.mapped { -$0 }, to: b) : nil
            return [da, db]
        case .mul, .div:
            let (a, b) = (args.input(0), args.input(1))
            // d(a*b) = dy*b, dy*a; d(a/b) = dy/b, -dy*a/b^2: products over the output's shape, then reduced.
            func product(_ f: (Float, Float, Float) -> Float) -> Tensor {
                dy.data.withUnsafeBufferPointer { g in
                    a.data.withUnsafeBufferPointer { ap in
                        b.data.withUnsafeBufferPointer { bp in
                            Tensor(shape: dy.shape) { out in
                                Broadcast.forEach(dy.shape, a.shape, b.shape) { o, i, j in out[o] = f(g[o], ap[i], bp[j]) }
                            }
                        }
                    }
                }
            }
            var da: Tensor?
            var db: Tensor?
            if op == .mul {
                if args.wanted[0] { da = Broadcast.reduce(product { g, _, y in g * y }, to: a.shape) }
                if args.wanted[1] { db = Broadcast.reduce(product { g, x, _ in g * x }, to: b.shape) }
            } else {
                if args.wanted[0] { da = Broadcast.reduce(product { g, _, y in g / y }, to: a.shape) }
                if args.wanted[1] { db = Broadcast.reduce(product { g, x, y in -g * x / (y * y) }, to: b.shape) }
            }
            return [da, db]
        }
    }
}

/// A value fixed when the model is made (an ONNX Constant or a non-trainable initializer): a node
/// with no inputs, so it runs wherever its readers are placed and never takes a gradient.
public struct ConstantValue: Operation {
    public var value: Tensor
    public var kind: String { "constant" }
    public var inputCount: Int { 0 }
    public var backwardReadsInputs: Set<Int> { [] }

    public init(_ value: Tensor) { self.value = value }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] { [value.shape] }
    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] { [value] }
    public func backward(_ args: Backprop) -> [Tensor?] { [] }
}

/// A tensor of one value whose shape has the batch's size in one dimension: the zero initial state
/// an exporter computes from the input's shape (ConstantOfShape of [1, batch, hidden]). It reads the
/// batch's size from its input, the model's fed data, and nothing else of it.
public struct BatchSizedFill: Operation {
    public var value: Float
    /// The shape, with -1 where the batch's size goes.
    public var shape: [Int]
    public var kind: String { "batch_sized_fill" }
    public var inputCount: Int { 1 }
    public var nonDifferentiableInputs: Set<Int> { [0] }
    public var backwardReadsInputs: Set<Int> { [] }

    public init(value: Float, shape: [Int]) {
        self.value = value
        self.shape = shape
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        guard let batch = inputShapes[0].first else { throw ShapeMismatch(kind, "the data \(inputShapes[0]) has no batch dimension") }
        return [shape.map { $0 == -1 ? batch : $0 }]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let out = shape.map { $0 == -1 ? inputs[0].shape[0] : $0 }
        return [Tensor(shape: out, data: [Float](repeating: value, count: out.reduce(1, *)))]
    }

    public func backward(_ args: Backprop) -> [Tensor?] { [nil] }
}
