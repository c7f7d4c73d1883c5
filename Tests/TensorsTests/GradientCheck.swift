import Basics
import Testing
@testable import Tensors

/// Seeded tensors for tests.
struct TestData {
    var random: SplitMix64

    init(seed: UInt64 = 7) { random = SplitMix64(seed: seed) }

    mutating func uniform(_ shape: [Int], _ low: Float = -1, _ high: Float = 1) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in low + (high - low) * random.nextUnitFloat() })
    }

    /// Values at least `gap` away from zero (ReLU's kink) on either side.
    mutating func awayFromZero(_ shape: [Int], gap: Float = 0.1) -> Tensor {
        uniform(shape).mapped { $0 >= 0 ? $0 + gap : $0 - gap }
    }

    /// A shuffled grid of distinct values `spacing` apart (max pooling's choice stays put under small nudges).
    mutating func distinct(_ shape: [Int], spacing: Float = 0.05) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, data: random.permutation(count).map { Float($0 - count / 2) * spacing })
    }

    mutating func indices(_ shape: [Int], below bound: Int) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in Float(random.nextIndex(below: bound)) })
    }
}

/// ||a - b|| / max(||a||, ||b||), computed in Double (0 when both vanish).
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    var difference = 0.0, normA = 0.0, normB = 0.0
    for (x, y) in zip(a, b) {
        difference += (x - y) * (x - y)
        normA += x * x
        normB += y * y
    }
    let scale = max(normA, normB).squareRoot()
    return scale < 1e-12 ? difference.squareRoot() : difference.squareRoot() / scale
}

/// Checks an op's backward against central finite differences of L = sum over differentiable
/// outputs of <output, R> with fixed random R. Backward gets only the tensors it declares it reads,
/// so a wrong declaration fails here too.
func checkGradients(_ op: any Operation, _ inputs: [Tensor], context: ExecutionContext = ExecutionContext(),
                    epsilon: Float = 1e-2, tolerance: Double = 1e-3, sourceLocation: SourceLocation = #_sourceLocation) {
    var data = TestData(seed: 99)
    let outputs = op.forward(inputs, context: context)
    #expect(outputs.count == op.outputCount, sourceLocation: sourceLocation)
    let projections = outputs.prefix(op.differentiableOutputCount).map { data.uniform($0.shape) }

    func objective(_ inputs: [Tensor]) -> Double {
        let outputs = op.forward(inputs, context: context)
        var total = 0.0
        for (output, projection) in zip(outputs, projections) {
            for (o, r) in zip(output.data, projection.data) { total += Double(o) * Double(r) }
        }
        return total
    }

    let wanted = inputs.indices.map { !op.nonDifferentiableInputs.contains($0) }
    let args = Backprop(
        inputs: inputs.indices.map { op.backwardReadsInputs.contains($0) ? inputs[$0] : nil },
        outputs: outputs.indices.map { op.backwardReadsOutputs.contains($0) ? outputs[$0] : nil },
        gradients: projections, wanted: wanted)
    let analytic = op.backward(args)
    #expect(analytic.count == inputs.count, sourceLocation: sourceLocation)

    for (index, input) in inputs.enumerated() where wanted[index] {
        guard let gradient = analytic[index] else {
            Issue.record("\(op.kind): no gradient for input \(index)", sourceLocation: sourceLocation)
            continue
        }
        #expect(gradient.shape == input.shape, "\(op.kind) input \(index)", sourceLocation: sourceLocation)
        var numeric: [Double] = []
        for element in 0..<input.count {
            var nudged = inputs
            nudged[index].data[element] = input.data[element] + epsilon
            let up = objective(nudged)
            nudged[index].data[element] = input.data[element] - epsilon
            let down = objective(nudged)
            numeric.append((up - down) / (2 * Double(epsilon)))
        }
        let error = relativeError(gradient.data.map(Double.init), numeric)
        #expect(error < tolerance, "\(op.kind) input \(index): relative error \(error)", sourceLocation: sourceLocation)
    }
}
