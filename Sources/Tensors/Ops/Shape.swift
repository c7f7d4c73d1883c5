/// The same elements under a new shape; -1 stands for whatever the other dimensions leave, so
/// `Reshape([-1, 3136])` flattens a batch of feature maps.
public struct Reshape: Operation {
    public var target: [Int]
    public var kind: String { "reshape" }
    public var inputCount: Int { 1 }
    public var outputCount: Int { 2 }  // the result and the input's shape
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init(_ target: [Int]) { self.target = target }

    /// [batch, everything else].
    public static func flatten() -> Reshape { Reshape([0, -1]) }

    /// The result's shape, and the input's shape as a tensor of its rank for backward.
    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        let count = x.reduce(1, *)
        guard target.indices.allSatisfy({ target[$0] != 0 || $0 < x.count }), target.filter({ $0 == -1 }).count <= 1 else {
            throw ShapeMismatch(kind, "cannot reshape \(x) to \(target)")
        }
        // 0 keeps the input's dimension at that position.
        var shape = target.enumerated().map { $0.element == 0 ? x[$0.offset] : $0.element }
        // A product that overflows, or a negative size other than -1, fits no input.
        var known = 1
        for dimension in shape where dimension != -1 {
            let (product, overflow) = known.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else { throw ShapeMismatch(kind, "cannot reshape \(x) to \(target)") }
            known = product
        }
        if let free = shape.firstIndex(of: -1) { shape[free] = count / max(1, known) }
        guard shape.reduce(1, *) == count else { throw ShapeMismatch(kind, "cannot reshape \(x) to \(target)") }
        return [shape, [x.count]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        // Shapes were checked when the graph's shapes were inferred.
        let shape = try! outputShapes([x.shape])[0]
        return [x.reshaped(shape), shapeTensor(x.shape)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        return [dy.reshaped(shapeFrom(args.output(1)))]
    }
}

/// Views a tensor as [outer, size along axis, inner] for block copies along one axis.
private func blocks(_ shape: [Int], axis: Int) -> (outer: Int, inner: Int) {
    (shape.prefix(axis).reduce(1, *), shape.dropFirst(axis + 1).reduce(1, *))
}

/// Copies pieces laid side by side along an axis into one tensor, or back out of it.
private func stitch(pieces: [Int], axis: Int, outer: Int, inner: Int,
                    _ copy: (_ piece: Int, _ pieceOffset: Int, _ joinedOffset: Int, _ length: Int) -> Void) {
    let total = pieces.reduce(0, +)
    for o in 0..<outer {
        var start = 0
        for (p, size) in pieces.enumerated() {
            copy(p, o * size * inner, (o * total + start) * inner, size * inner)
            start += size
        }
    }
}

/// Joins tensors along an axis. Their sizes along it go to backward as a small second output.
public struct Concat: Operation {
    public var axis: Int
    public var inputCount: Int
    public var kind: String { "concat" }
    public var outputCount: Int { 2 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init(axis: Int, inputCount: Int) {
        self.axis = axis
        self.inputCount = inputCount
    }

    /// The joined tensor, and each input's size along the axis for backward.
    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        var shape = inputShapes[0]
        guard axis < shape.count else { throw ShapeMismatch(kind, "axis \(axis) of \(shape)") }
        for other in inputShapes.dropFirst() {
            var expected = shape
            guard other.count == shape.count, axis < other.count else { throw ShapeMismatch(kind, "\(other) does not fit \(shape)") }
            expected[axis] = other[axis]
            guard other == expected else { throw ShapeMismatch(kind, "\(other) does not fit \(shape)") }
        }
        shape[axis] = inputShapes.reduce(0) { $0 + $1[axis] }
        return [shape, [inputShapes.count]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let sizes = inputs.map { $0.shape[axis] }
        var shape = inputs[0].shape
        shape[axis] = sizes.reduce(0, +)
        let (outer, inner) = blocks(shape, axis: axis)
        for x in inputs {
            precondition(blocks(x.shape, axis: axis) == (outer, inner), "concat: \(x.shape) does not fit \(shape)")
        }
        var joined = Tensor(zeros: shape)
        joined.data.withUnsafeMutableBufferPointer { out in
            stitch(pieces: sizes, axis: axis, outer: outer, inner: inner) { p, from, to, length in
                inputs[p].data.withUnsafeBufferPointer { src in
                    for i in 0..<length { out[to + i] = src[from + i] }
                }
            }
        }
        return [joined, Tensor(shape: [sizes.count], data: sizes.map { Float($0) })]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return Array(repeating: nil, count: inputCount) }
        return split(dy, sizes: shapeFrom(args.output(1)), axis: axis).enumerated().map {
            args.wanted[$0.offset] ? $0.element : nil
        }
    }
}

/// Cuts a tensor along an axis into pieces of the given sizes.
public struct Split: Operation {
    public var axis: Int
    public var sizes: [Int]
    public var kind: String { "split" }
    public var inputCount: Int { 1 }
    public var outputCount: Int { sizes.count }
    public var backwardReadsInputs: Set<Int> { [] }

    public init(axis: Int, sizes: [Int]) {
        self.axis = axis
        self.sizes = sizes
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        guard axis < x.count, x[axis] == sizes.reduce(0, +) else { throw ShapeMismatch(kind, "\(sizes) do not add up to \(x)") }
        return sizes.map { size in
            var shape = x
            shape[axis] = size
            return shape
        }
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        precondition(inputs[0].shape[axis] == sizes.reduce(0, +), "split: \(sizes) do not add up to \(inputs[0].shape)")
        return split(inputs[0], sizes: sizes, axis: axis)
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard args.wanted[0], let known = args.gradients.first(where: { $0 != nil }) ?? nil else { return [nil] }
        // Pieces nothing depended on contribute zeros.
        let pieces = args.gradients.enumerated().map { index, gradient -> Tensor in
            if let gradient { return gradient }
            var shape = known.shape
            shape[axis] = sizes[index]
            return Tensor(zeros: shape)
        }
        return [Concat(axis: axis, inputCount: pieces.count).forward(pieces, context: ExecutionContext())[0]]
    }
}

func split(_ x: Tensor, sizes: [Int], axis: Int) -> [Tensor] {
    let (outer, inner) = blocks(x.shape, axis: axis)
    var pieces = sizes.map { size -> Tensor in
        var shape = x.shape
        shape[axis] = size
        return Tensor(zeros: shape)
    }
    x.data.withUnsafeBufferPointer { src in
        stitch(pieces: sizes, axis: axis, outer: outer, inner: inner) { p, to, from, length in
            pieces[p].data.withUnsafeMutableBufferPointer { out in
                for i in 0..<length { out[to + i] = src[from + i] }
            }
        }
    }
    return pieces
}
