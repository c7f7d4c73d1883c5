/// Window geometry shared by the pooling ops: square windows over each plane of NCHW input.
struct PoolWindow {
    var kernel: Int
    var stride: Int
    var padding: Int

    func outputShape(_ x: [Int]) -> [Int] {
        do { return try checkedOutputShape(x, kind: "pooling") } catch { preconditionFailure(error.description) }
    }

    func checkedOutputShape(_ x: [Int], kind: String) throws(ShapeMismatch) -> [Int] {
        guard x.count == 4 else { throw ShapeMismatch(kind, "expects NCHW input, got \(x)") }
        let outH = (x[2] + 2 * padding - kernel) / stride + 1
        let outW = (x[3] + 2 * padding - kernel) / stride + 1
        guard outH > 0, outW > 0 else { throw ShapeMismatch(kind, "window \(kernel) larger than padded input \(x)") }
        return [x[0], x[1], outH, outW]
    }

    /// Calls `body(output, plane, rows, columns)` for every output element with the plane offset and
    /// the rows and columns of its window that lie inside the image.
    @inline(__always)
    func forEachWindow(_ x: [Int], _ body: (Int, _ plane: Int, _ rows: Range<Int>, _ columns: Range<Int>) -> Void) {
        let out = outputShape(x)
        let (planes, height, width, outH, outW) = (x[0] * x[1], x[2], x[3], out[2], out[3])
        let (kernel, stride, padding) = (kernel, stride, padding)
        var o = 0
        for plane in 0..<planes {
            for oh in 0..<outH {
                let top = oh * stride - padding
                let rows = max(0, top)..<min(height, top + kernel)
                for ow in 0..<outW {
                    let left = ow * stride - padding
                    body(o, plane * height * width, rows, max(0, left)..<min(width, left + kernel))
                    o += 1
                }
            }
        }
    }
}

/// Maximum over each window (padding never wins). Backward finds each window's first maximum again
/// from the input rather than keeping argmax indices.
public struct MaxPool2D: Operation {
    var window: PoolWindow
    public var kind: String { "max_pool" }
    public var inputCount: Int { 1 }

    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) {
        window = PoolWindow(kernel: kernel, stride: stride ?? kernel, padding: padding)
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        [try window.checkedOutputShape(inputShapes[0], kind: kind)]
    }

    @inline(__always)
    private func argmax(_ xp: UnsafePointer<Float>, _ width: Int, _ plane: Int,
                        _ rows: Range<Int>, _ columns: Range<Int>) -> Int {
        var best = plane + rows.lowerBound * width + columns.lowerBound
        var top = xp[best]
        for r in rows {
            let row = plane + r * width
            for c in columns where xp[row + c] > top {
                best = row + c
                top = xp[best]
            }
        }
        return best
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        let width = x.shape[3]
        return [x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: window.outputShape(x.shape)) { out in
                let (xp, out) = (xp.baseAddress!, out.baseAddress!)
                window.forEachWindow(x.shape) { o, plane, rows, columns in
                    out[o] = xp[argmax(xp, width, plane, rows, columns)]
                }
            }
        }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let x = args.input(0)
        var dx = Tensor(zeros: x.shape)
        let width = x.shape[3]
        x.data.withUnsafeBufferPointer { xp in
            dy.data.withUnsafeBufferPointer { gp in
                dx.data.withUnsafeMutableBufferPointer { dp in
                    let (xp, gp, dp) = (xp.baseAddress!, gp.baseAddress!, dp.baseAddress!)
                    window.forEachWindow(x.shape) { o, plane, rows, columns in
                        dp[argmax(xp, width, plane, rows, columns)] += gp[o]
                    }
                }
            }
        }
        return [dx]
    }
}

/// Mean over each window, dividing by the full window size (padding counts as zeros). The input's
/// shape travels to backward as a small second output, so backward never needs the input itself.
public struct AvgPool2D: Operation {
    var window: PoolWindow
    public var kind: String { "avg_pool" }
    public var inputCount: Int { 1 }
    public var outputCount: Int { 2 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) {
        window = PoolWindow(kernel: kernel, stride: stride ?? kernel, padding: padding)
    }

    /// The pooled planes, and the input's shape as a tensor of its rank for backward.
    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        [try window.checkedOutputShape(inputShapes[0], kind: kind), [inputShapes[0].count]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        let scale = 1 / Float(window.kernel * window.kernel)
        let y = x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: window.outputShape(x.shape)) { out in
                window.forEachWindow(x.shape) { o, plane, rows, columns in
                    var sum: Float = 0
                    for r in rows { for c in columns { sum += xp[plane + r * x.shape[3] + c] } }
                    out[o] = sum * scale
                }
            }
        }
        return [y, shapeTensor(x.shape)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        let shape = shapeFrom(args.output(1))
        let scale = 1 / Float(window.kernel * window.kernel)
        var dx = Tensor(zeros: shape)
        dy.data.withUnsafeBufferPointer { gp in
            dx.data.withUnsafeMutableBufferPointer { dp in
                window.forEachWindow(shape) { o, plane, rows, columns in
                    let share = gp[o] * scale
                    for r in rows { for c in columns { dp[plane + r * shape[3] + c] += share } }
                }
            }
        }
        return [dx]
    }
}

/// A shape as a small tensor, so it can travel between nodes like any other value.
func shapeTensor(_ shape: [Int]) -> Tensor {
    Tensor(shape: [shape.count], data: shape.map { Float($0) })
}

func shapeFrom(_ tensor: Tensor) -> [Int] {
    tensor.data.map { Int($0) }
}
