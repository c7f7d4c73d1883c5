import Foundation

/// The ops a transformer encoder exported to ONNX is made of, besides matrix products: axes permuted
/// (heads moved beside the batch), softmax over the keys, layer normalization, GELU, and a mean over
/// the sequence.

/// Permutes the axes: output dimension i is input dimension `permutation[i]` (ONNX Transpose).
public struct Transpose: Operation {
    public var permutation: [Int]
    public var kind: String { "transpose" }
    public var inputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }

    public init(_ permutation: [Int]) { self.permutation = permutation }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        guard permutation.sorted() == Array(0..<x.count) else { throw ShapeMismatch(kind, "permutation \(permutation) of \(x)") }
        return [permutation.map { x[$0] }]
    }

    /// Moves `x` (of `shape`) along `permutation`.
    static func permute(_ x: Tensor, _ permutation: [Int]) -> Tensor {
        let shape = x.shape
        let out = permutation.map { shape[$0] }
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        let sourceStrides = permutation.map { strides[$0] }
        return x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: out) { o in
                guard !out.isEmpty else { if o.count == 1 { o[0] = xp[0] }; return }
                let rank = out.count
                let inner = out[rank - 1]
                let innerStride = sourceStrides[rank - 1]
                var index = [Int](repeating: 0, count: rank)
                var base = 0
                var position = 0
                while position < o.count {
                    for k in 0..<inner { o[position + k] = xp[base + k * innerStride] }
                    position += inner
                    var d = rank - 2
                    while d >= 0 {
                        index[d] += 1
                        base += sourceStrides[d]
                        if index[d] < out[d] { break }
                        base -= sourceStrides[d] * out[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        [Self.permute(inputs[0], permutation)]
    }

    /// The gradient moves back by the inverse permutation.
    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        var inverse = [Int](repeating: 0, count: permutation.count)
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return [Self.permute(dy, inverse)]
    }
}

/// Views a tensor as [outer, size along axis, inner] (the last axis: inner 1).
private func around(_ shape: [Int], axis: Int) -> (outer: Int, size: Int, inner: Int) {
    (shape.prefix(axis).reduce(1, *), shape[axis], shape.dropFirst(axis + 1).reduce(1, *))
}

/// exp(x) / sum exp(x) along one axis (ONNX Softmax, opset 13 and later).
public struct Softmax: Operation {
    public var axis: Int
    public var kind: String { "softmax" }
    public var inputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [0] }

    /// `axis` counts from the end when negative.
    public init(axis: Int = -1) { self.axis = axis }

    private func resolved(_ rank: Int) -> Int { axis < 0 ? axis + rank : axis }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        guard (0..<x.count).contains(resolved(x.count)) else { throw ShapeMismatch(kind, "axis \(axis) of \(x)") }
        return [x]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        let (outer, size, inner) = around(x.shape, axis: resolved(x.shape.count))
        return [x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: x.shape) { out in
                for o in 0..<outer {
                    for i in 0..<inner {
                        let base = o * size * inner + i
                        var top = -Float.infinity
                        for s in 0..<size { top = max(top, xp[base + s * inner]) }
                        var sum: Float = 0
                        for s in 0..<size {
                            let e = expf(xp[base + s * inner] - top)
                            out[base + s * inner] = e
                            sum += e
                        }
                        let scale = 1 / sum
                        for s in 0..<size { out[base + s * inner] *= scale }
                    }
                }
            }
        }]
    }

    /// dx = y (dy - sum(dy y)) along the axis.
    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let y = args.output(0)
        let (outer, size, inner) = around(y.shape, axis: resolved(y.shape.count))
        return [y.data.withUnsafeBufferPointer { yp in
            dy.data.withUnsafeBufferPointer { g in
                Tensor(shape: y.shape) { out in
                    for o in 0..<outer {
                        for i in 0..<inner {
                            let base = o * size * inner + i
                            var dot: Float = 0
                            for s in 0..<size { dot += g[base + s * inner] * yp[base + s * inner] }
                            for s in 0..<size { out[base + s * inner] = yp[base + s * inner] * (g[base + s * inner] - dot) }
                        }
                    }
                }
            }
        }]
    }
}

/// Layer normalization over the trailing axes from `axis` (ONNX LayerNormalization, PyTorch's
/// `nn.LayerNorm`): each row is normalised by its own mean and (biased) variance, then scaled and
/// shifted. Inputs: x, scale, bias (the bias optional). Outputs: y, then the row means and
/// 1/sqrt(variance + epsilon), shaped x.shape[:axis] + [1, ...], as ONNX defines them (backward reads them).
public struct LayerNormalization: Operation {
    public var axis: Int
    public var epsilon: Float
    public var hasBias: Bool
    public var kind: String { "layer_norm" }
    public var inputCount: Int { hasBias ? 3 : 2 }
    public var outputCount: Int { 3 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [0, 1] }
    public var backwardReadsOutputs: Set<Int> { [1, 2] }

    public init(axis: Int = -1, epsilon: Float = 1e-5, hasBias: Bool = true) {
        self.axis = axis
        self.epsilon = epsilon
        self.hasBias = hasBias
    }

    private func resolved(_ rank: Int) -> Int { axis < 0 ? axis + rank : axis }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        let a = resolved(x.count)
        guard (0..<x.count).contains(a) else { throw ShapeMismatch(kind, "axis \(axis) of \(x)") }
        let width = x.dropFirst(a).reduce(1, *)
        for i in 1..<inputCount where inputShapes[i].reduce(1, *) != width {
            throw ShapeMismatch(kind, "\(i == 1 ? "scale" : "bias") \(inputShapes[i]) does not fit rows of \(width)")
        }
        let statistics = Array(x.prefix(a)) + Array(repeating: 1, count: x.count - a)
        return [x, statistics, statistics]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        let shapes = try! outputShapes(inputs.map(\.shape))
        let width = x.shape.dropFirst(resolved(x.shape.count)).reduce(1, *)
        let rows = x.count / max(1, width)
        var means = [Float](repeating: 0, count: rows)
        var inverses = [Float](repeating: 0, count: rows)
        let scale = inputs[1].data
        let bias = hasBias ? inputs[2].data : [Float](repeating: 0, count: width)
        let y = x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: x.shape) { out in
                for r in 0..<rows {
                    let base = r * width
                    var sum = 0.0
                    for j in 0..<width { sum += Double(xp[base + j]) }
                    let mean = sum / Double(width)
                    var squares = 0.0
                    for j in 0..<width { let d = Double(xp[base + j]) - mean; squares += d * d }
                    let inverse = Float(1 / (squares / Double(width) + Double(epsilon)).squareRoot())
                    let m = Float(mean)
                    means[r] = m
                    inverses[r] = inverse
                    for j in 0..<width { out[base + j] = (xp[base + j] - m) * inverse * scale[j] + bias[j] }
                }
            }
        }
        return [y, Tensor(shape: shapes[1], data: means), Tensor(shape: shapes[2], data: inverses)]
    }

    /// With x̂ = (x - mean) σ⁻¹ and g = dy scale: dx = σ⁻¹ (g - mean(g) - x̂ mean(g x̂)) per row;
    /// dscale = Σ dy x̂ and dbias = Σ dy over the rows.
    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return Array(repeating: nil, count: inputCount) }
        let (x, scale, means, inverses) = (args.input(0), args.input(1).data, args.output(1).data, args.output(2).data)
        let width = scale.count
        let rows = x.count / max(1, width)
        var dscale = [Double](repeating: 0, count: width)
        var dbias = [Double](repeating: 0, count: width)
        var dx: Tensor?
        x.data.withUnsafeBufferPointer { xp in
            dy.data.withUnsafeBufferPointer { g in
                let gradient = Tensor(shape: x.shape) { out in
                    for r in 0..<rows {
                        let base = r * width
                        let (m, s) = (means[r], inverses[r])
                        var (meanG, meanGX) = (Float(0), Float(0))
                        for j in 0..<width {
                            let normalized = (xp[base + j] - m) * s
                            let gj = g[base + j] * scale[j]
                            meanG += gj
                            meanGX += gj * normalized
                            dscale[j] += Double(g[base + j] * normalized)
                            dbias[j] += Double(g[base + j])
                        }
                        meanG /= Float(width)
                        meanGX /= Float(width)
                        for j in 0..<width {
                            let normalized = (xp[base + j] - m) * s
                            out[base + j] = s * (g[base + j] * scale[j] - meanG - normalized * meanGX)
                        }
                    }
                }
                if args.wanted[0] { dx = gradient }
            }
        }
        var gradients: [Tensor?] = [dx, args.wanted[1] ? Tensor(shape: args.input(1).shape, data: dscale.map { Float($0) }) : nil]
        if hasBias { gradients.append(args.wanted[2] ? Tensor(shape: [width], data: dbias.map { Float($0) }) : nil) }
        return gradients
    }
}

/// GELU, x Φ(x) with Φ the standard normal's distribution function (ONNX Gelu, PyTorch's default),
/// or its tanh approximation.
public struct GELU: Operation {
    public var tanhApproximation: Bool
    public var kind: String { "gelu" }
    public var inputCount: Int { 1 }

    public init(tanhApproximation: Bool = false) { self.tanhApproximation = tanhApproximation }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] { [inputShapes[0]] }

    static let c = Float((2 / Double.pi).squareRoot())

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        if tanhApproximation {
            return [inputs[0].mapped { x in 0.5 * x * (1 + tanhf(GELU.c * (x + 0.044715 * x * x * x))) }]
        }
        return [inputs[0].mapped { x in 0.5 * x * (1 + erff(x / Float(2).squareRoot())) }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let x = args.input(0)
        if tanhApproximation {
            return [dy.zipped(x) { g, x in
                let inner = GELU.c * (x + 0.044715 * x * x * x)
                let t = tanhf(inner)
                return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU.c * (1 + 3 * 0.044715 * x * x))
            }]
        }
        return [dy.zipped(x) { g, x in
            let cdf = 0.5 * (1 + erff(x / Float(2).squareRoot()))
            let pdf = expf(-0.5 * x * x) / Float(2 * Double.pi).squareRoot()
            return g * (cdf + x * pdf)
        }]
    }
}

/// The error function, elementwise (how PyTorch's exporter spells exact GELU before opset 20).
public struct Erf: Operation {
    public var kind: String { "erf" }
    public var inputCount: Int { 1 }

    public init() {}

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] { [inputShapes[0]] }
    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] { [inputs[0].mapped { erff($0) }] }

    /// d erf(x) = 2/√π exp(-x²).
    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let scale = Float(2 / Double.pi.squareRoot())
        return [dy.zipped(args.input(0)) { g, x in g * scale * expf(-x * x) }]
    }
}

/// The mean over some axes (ONNX ReduceMean), keeping them as size 1 or dropping them.
public struct ReduceMean: Operation {
    public var axes: [Int]
    public var keepDimensions: Bool
    public var kind: String { "reduce_mean" }
    public var inputCount: Int { 1 }
    /// The input's shape travels to backward as a small second output.
    public var outputCount: Int { 2 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init(axes: [Int], keepDimensions: Bool = true) {
        self.axes = axes
        self.keepDimensions = keepDimensions
    }

    private func reduced(_ rank: Int) -> Set<Int> {
        axes.isEmpty ? Set(0..<rank) : Set(axes.map { $0 < 0 ? $0 + rank : $0 })
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        let set = reduced(x.count)
        guard set.allSatisfy({ (0..<x.count).contains($0) }) else { throw ShapeMismatch(kind, "axes \(axes) of \(x)") }
        let kept = x.indices.compactMap { set.contains($0) ? (keepDimensions ? 1 : nil) : x[$0] }
        return [kept, [x.count]]
    }

    /// The reduced axes' shape with ones: the mean broadcasts back over it.
    private func keptShape(_ x: [Int]) -> [Int] {
        let set = reduced(x.count)
        return x.indices.map { set.contains($0) ? 1 : x[$0] }
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        let kept = keptShape(x.shape)
        let count = Float(x.count / max(1, kept.reduce(1, *)))
        let sums = Broadcast.reduce(x, to: kept)
        let shape = try! outputShapes([x.shape])[0]
        return [Tensor(shape: shape, data: sums.data.map { $0 / count }), shapeTensor(x.shape)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let shape = shapeFrom(args.output(1))
        let kept = keptShape(shape)
        let scale = 1 / Float(shape.reduce(1, *) / max(1, kept.reduce(1, *)))
        let g = dy.reshaped(kept)
        return [g.data.withUnsafeBufferPointer { gp in
            Tensor(shape: shape) { out in
                Broadcast.forEach(shape, kept, shape) { o, i, _ in out[o] = gp[i] * scale }
            }
        }]
    }
}

/// Elements at fixed indices along one axis (ONNX Gather with indices known when the model is read):
/// how an exporter picks q, k and v out of one packed projection. Backward adds the gradient back at
/// the indices it came from. The input's shape travels to backward as a small second output.
public struct Select: Operation {
    public var axis: Int
    public var indices: [Int]
    /// The indices' shape ([] for one index, which drops the axis).
    public var indicesShape: [Int]
    public var kind: String { "select" }
    public var inputCount: Int { 1 }
    public var outputCount: Int { 2 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init(axis: Int, indices: [Int], indicesShape: [Int]) {
        self.axis = axis
        self.indices = indices
        self.indicesShape = indicesShape
    }

    private func resolved(_ x: [Int]) throws(ShapeMismatch) -> (axis: Int, indices: [Int]) {
        let a = axis < 0 ? axis + x.count : axis
        guard (0..<x.count).contains(a) else { throw ShapeMismatch(kind, "axis \(axis) of \(x)") }
        let size = x[a]
        var resolved: [Int] = []
        for index in indices {
            let i = index < 0 ? index + size : index
            guard (0..<size).contains(i) else { throw ShapeMismatch(kind, "index \(index) outside \(size) along axis \(axis)") }
            resolved.append(i)
        }
        return (a, resolved)
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        let a = try resolved(x).axis
        return [Array(x.prefix(a)) + indicesShape + Array(x.dropFirst(a + 1)), [x.count]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        let (a, picked) = try! resolved(x.shape)
        let (outer, size, inner) = (x.shape.prefix(a).reduce(1, *), x.shape[a], x.shape.dropFirst(a + 1).reduce(1, *))
        let shape = try! outputShapes([x.shape])[0]
        let y = x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: shape) { out in
                var o = 0
                for block in 0..<outer {
                    for i in picked {
                        let base = (block * size + i) * inner
                        for j in 0..<inner { out[o + j] = xp[base + j] }
                        o += inner
                    }
                }
            }
        }
        return [y, shapeTensor(x.shape)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let shape = shapeFrom(args.output(1))
        let (a, picked) = try! resolved(shape)
        let (outer, size, inner) = (shape.prefix(a).reduce(1, *), shape[a], shape.dropFirst(a + 1).reduce(1, *))
        var dx = Tensor(zeros: shape)
        dx.data.withUnsafeMutableBufferPointer { out in
            dy.data.withUnsafeBufferPointer { g in
                var o = 0
                for block in 0..<outer {
                    for i in picked {
                        let base = (block * size + i) * inner
                        for j in 0..<inner { out[base + j] += g[o + j] }
                        o += inner
                    }
                }
            }
        }
        return [dx]
    }
}

/// A strided window of a tensor (ONNX Slice with starts, ends, axes and steps known when the model is
/// read; negative and out-of-range bounds resolved against the input's own shape, as ONNX does).
/// Backward writes the gradient back into the window of a zero tensor.
public struct StridedSlice: Operation {
    public var starts: [Int]
    public var ends: [Int]
    public var axes: [Int]
    public var steps: [Int]
    public var kind: String { "slice" }
    public var inputCount: Int { 1 }
    public var outputCount: Int { 2 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init(starts: [Int], ends: [Int], axes: [Int], steps: [Int]) {
        self.starts = starts
        self.ends = ends
        self.axes = axes
        self.steps = steps
    }

    /// Per dimension of `x`: first index, step and count.
    func windows(_ x: [Int]) throws(ShapeMismatch) -> [(start: Int, step: Int, count: Int)] {
        var windows = x.map { (start: 0, step: 1, count: $0) }
        for (k, rawAxis) in axes.enumerated() {
            let axis = rawAxis < 0 ? rawAxis + x.count : rawAxis
            guard (0..<x.count).contains(axis), steps[k] != 0 else { throw ShapeMismatch(kind, "axis \(rawAxis) or step \(steps[k]) of \(x)") }
            let size = x[axis]
            let step = steps[k]
            func clamp(_ v: Int, _ low: Int, _ high: Int) -> Int { min(max(v, low), high) }
            var start = starts[k] < 0 ? starts[k].addingReportingOverflow(size).partialValue : starts[k]
            var end = ends[k] < 0 ? ends[k].addingReportingOverflow(size).partialValue : ends[k]
            if step > 0 { start = clamp(start, 0, size); end = clamp(end, 0, size) } else { start = clamp(start, 0, size - 1); end = clamp(end, -1, size - 1) }
            let count = step > 0 ? max(0, (end - start + step - 1) / step) : max(0, (start - end - step - 1) / -step)
            windows[axis] = (start, step, count)
        }
        return windows
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
            throw ShapeMismatch(kind, "starts, ends, axes and steps differ in length")
        }
        return [try windows(inputShapes[0]).map(\.count), [inputShapes[0].count]]
    }

    /// Calls `body(output index, input index)` for every element of the window.
    private func forEach(_ x: [Int], _ body: (Int, Int) -> Void) {
        let windows = try! windows(x)
        let count = windows.reduce(1) { $0 * $1.count }
        guard count > 0 else { return }
        var strides = [Int](repeating: 1, count: x.count)
        for i in stride(from: x.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * x[i + 1] }
        var index = [Int](repeating: 0, count: x.count)
        for o in 0..<count {
            var source = 0
            for d in 0..<x.count { source += (windows[d].start + index[d] * windows[d].step) * strides[d] }
            body(o, source)
            var d = x.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < windows[d].count { break }
                index[d] = 0
                d -= 1
            }
        }
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        let shape = try! outputShapes([x.shape])[0]
        let y = x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: shape) { out in forEach(x.shape) { o, i in out[o] = xp[i] } }
        }
        return [y, shapeTensor(x.shape)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let shape = shapeFrom(args.output(1))
        var dx = Tensor(zeros: shape)
        dx.data.withUnsafeMutableBufferPointer { out in
            dy.data.withUnsafeBufferPointer { g in forEach(shape) { o, i in out[i] += g[o] } }
        }
        return [dx]
    }
}
