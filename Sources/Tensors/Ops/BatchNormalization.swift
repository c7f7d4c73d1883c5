import Foundation

/// Batch normalization over the channels (dimension 1) of [N, C, ...] input, as PyTorch's
/// `BatchNorm` in `train()` and `eval()` modes.
///
/// In training each channel is normalised by the batch's own mean and (biased) variance, and the
/// batch mean and unbiased variance are outputs: the model's update nodes fold them into the running
/// statistics (`ParameterRole.runningAverage`), so the statistics move where their parameters live,
/// like any other update. In inference the running statistics normalise.
///
/// Inputs: x, scale, bias, running mean, running variance. Outputs: y, the batch mean, the batch's
/// unbiased variance, and 1/sqrt(variance + epsilon) (saved for backward).
public struct BatchNormalization: Operation {
    public var epsilon: Float
    public var kind: String { "batch_norm" }
    public var inputCount: Int { 5 }
    public var outputCount: Int { 4 }
    public var differentiableOutputCount: Int { 1 }
    public var nonDifferentiableInputs: Set<Int> { [3, 4] }
    public var backwardReadsInputs: Set<Int> { [0, 1] }
    public var backwardReadsOutputs: Set<Int> { [1, 3] }

    public init(epsilon: Float = 1e-5) { self.epsilon = epsilon }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let x = inputShapes[0]
        guard x.count >= 2 else { throw ShapeMismatch(kind, "input \(x) has no channel dimension") }
        for (i, name) in [(1, "scale"), (2, "bias"), (3, "running mean"), (4, "running variance")] where inputShapes[i] != [x[1]] {
            throw ShapeMismatch(kind, "\(name) \(inputShapes[i]) does not fit \(x[1]) channels")
        }
        return [x, [x[1]], [x[1]], [x[1]]]
    }

    /// (images, channels, values per channel and image).
    private func layout(_ x: [Int]) -> (n: Int, c: Int, inner: Int) {
        (x[0], x[1], x.dropFirst(2).reduce(1, *))
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (x, scale, bias) = (inputs[0], inputs[1], inputs[2])
        let (n, c, inner) = layout(x.shape)
        var mean = [Float](repeating: 0, count: c)
        var variance = [Float](repeating: 0, count: c)
        var unbiased = [Float](repeating: 0, count: c)
        let count = n * inner
        x.data.withUnsafeBufferPointer { xp in
            if context.training {
                // Per channel: mean, then the mean squared deviation, summed in Double.
                for ch in 0..<c {
                    var sum = 0.0
                    for image in 0..<n {
                        let base = (image * c + ch) * inner
                        for j in 0..<inner { sum += Double(xp[base + j]) }
                    }
                    let m = sum / Double(max(1, count))
                    var squares = 0.0
                    for image in 0..<n {
                        let base = (image * c + ch) * inner
                        for j in 0..<inner { let d = Double(xp[base + j]) - m; squares += d * d }
                    }
                    mean[ch] = Float(m)
                    variance[ch] = Float(squares / Double(max(1, count)))
                    unbiased[ch] = Float(squares / Double(max(1, count - 1)))
                }
            } else {
                mean = inputs[3].data
                variance = inputs[4].data
                unbiased = inputs[4].data
            }
        }
        let inverse = variance.map { 1 / ($0 + epsilon).squareRoot() }
        let y = x.data.withUnsafeBufferPointer { xp in
            Tensor(shape: x.shape) { out in
                for image in 0..<n {
                    for ch in 0..<c {
                        let base = (image * c + ch) * inner
                        let (m, factor, shift) = (mean[ch], scale.data[ch] * inverse[ch], bias.data[ch])
                        for j in 0..<inner { out[base + j] = (xp[base + j] - m) * factor + shift }
                    }
                }
            }
        }
        return [y, Tensor(shape: [c], data: mean), Tensor(shape: [c], data: unbiased), Tensor(shape: [c], data: inverse)]
    }

    /// With x̂ = (x - mean) / σ: dbias = Σ dy, dscale = Σ dy x̂, and
    /// dx = scale / (σ M) (M dy - dbias - x̂ dscale) over the M values of a channel.
    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return Array(repeating: nil, count: 5) }
        let (x, scale, mean, inverse) = (args.input(0), args.input(1), args.output(1), args.output(3))
        let (n, c, inner) = layout(x.shape)
        let count = Float(n * inner)
        var dbias = [Float](repeating: 0, count: c)
        var dscale = [Float](repeating: 0, count: c)
        x.data.withUnsafeBufferPointer { xp in
            dy.data.withUnsafeBufferPointer { g in
                for ch in 0..<c {
                    var (sum, weighted) = (0.0, 0.0)
                    let (m, s) = (mean.data[ch], inverse.data[ch])
                    for image in 0..<n {
                        let base = (image * c + ch) * inner
                        for j in 0..<inner {
                            sum += Double(g[base + j])
                            weighted += Double(g[base + j] * (xp[base + j] - m) * s)
                        }
                    }
                    dbias[ch] = Float(sum)
                    dscale[ch] = Float(weighted)
                }
            }
        }
        var dx: Tensor?
        if args.wanted[0] {
            dx = x.data.withUnsafeBufferPointer { xp in
                dy.data.withUnsafeBufferPointer { g in
                    Tensor(shape: x.shape) { out in
                        for image in 0..<n {
                            for ch in 0..<c {
                                let base = (image * c + ch) * inner
                                let (m, s) = (mean.data[ch], inverse.data[ch])
                                let factor = scale.data[ch] * s / count
                                for j in 0..<inner {
                                    let normalized = (xp[base + j] - m) * s
                                    out[base + j] = factor * (count * g[base + j] - dbias[ch] - normalized * dscale[ch])
                                }
                            }
                        }
                    }
                }
            }
        }
        return [dx, args.wanted[1] ? Tensor(shape: [c], data: dscale) : nil,
                args.wanted[2] ? Tensor(shape: [c], data: dbias) : nil, nil, nil]
    }
}

/// Mean over every element of (prediction - target)^2, as PyTorch's `mse_loss`: the loss of
/// `--loss mse` against float targets of the prediction's shape.
public struct MeanSquaredError: Operation {
    public var kind: String { "mean_squared_error" }
    public var inputCount: Int { 2 }
    public var nonDifferentiableInputs: Set<Int> { [1] }

    public init() {}

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        guard inputShapes[0].reduce(1, *) == inputShapes[1].reduce(1, *) else {
            throw ShapeMismatch(kind, "targets \(inputShapes[1]) do not fit predictions \(inputShapes[0])")
        }
        return [[]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        var sum = 0.0
        inputs[0].data.withUnsafeBufferPointer { p in
            inputs[1].data.withUnsafeBufferPointer { t in
                for i in 0..<p.count { let d = Double(p[i] - t[i]); sum += d * d }
            }
        }
        return [Tensor(scalar: Float(sum / Double(max(1, inputs[0].count))))]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard args.wanted[0] else { return [nil, nil] }
        let (p, t) = (args.input(0), args.input(1))
        let scale = 2 * (args.gradients[0]?.data[0] ?? 1) / Float(max(1, p.count))
        return [p.data.withUnsafeBufferPointer { pp in
            t.data.withUnsafeBufferPointer { tp in
                Tensor(shape: p.shape) { out in for i in 0..<out.count { out[i] = scale * (pp[i] - tp[i]) } }
            }
        }, nil]
    }
}
