import Basics
import Foundation

/// Mean over rows of -log softmax(logits)[label]: logits are [rows, classes], labels [rows] hold
/// class indices. The loss is the root of backpropagation, so a missing output gradient means 1.
public struct SoftmaxCrossEntropy: Operation {
    public var kind: String { "softmax_cross_entropy" }
    public var inputCount: Int { 2 }
    public var nonDifferentiableInputs: Set<Int> { [1] }

    public init() {}

    /// The mean loss, a scalar.
    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (logits, labels) = (inputShapes[0], inputShapes[1])
        let classes = logits.last ?? 1
        guard classes > 0, logits.reduce(1, *) / classes == labels.reduce(1, *) else {
            throw ShapeMismatch(kind, "labels \(labels) do not fit logits \(logits)")
        }
        return [[]]
    }

    /// Softmax of each row times `scale`, and the summed loss in Double (the mean of many rows stays
    /// accurate). Eight classes at a time: the exponentials dominate the op.
    static func softmax(_ logits: Tensor, labels: Tensor, scale: Float = 1) -> (probabilities: Tensor, loss: Double) {
        let classes = logits.shape.last ?? 1
        let rowCount = rows(logits, columns: classes)
        precondition(labels.count == rowCount, "softmax_cross_entropy: \(labels.count) labels for \(rowCount) rows")
        var loss = 0.0
        let probabilities = logits.data.withUnsafeBufferPointer { lp in
            labels.data.withUnsafeBufferPointer { yp in
                Tensor(shape: [rowCount, classes]) { out in
                    for r in 0..<rowCount {
                        let row = lp.baseAddress! + r * classes
                        let o = out.baseAddress! + r * classes
                        var topLanes = Lanes(repeating: -.infinity)
                        var top = -Float.infinity
                        forEachVector(classes, { i in topLanes = pointwiseMax(topLanes, row.vector(i)) },
                                      scalar: { i in top = max(top, row[i]) })
                        top = max(top, topLanes.max())
                        let shift = Lanes(repeating: top)
                        var sumLanes = Lanes()
                        var sum: Float = 0
                        forEachVector(classes, { i in
                            let e = exponential(row.vector(i) - shift)
                            o.setVector(e, i)
                            sumLanes += e
                        }, scalar: { i in
                            let e = exponential(Lanes(repeating: row[i] - top))[0]
                            o[i] = e
                            sum += e
                        })
                        sum = sumLanes.orderedSum + sum
                        let label = Int(yp[r])
                        precondition(label >= 0 && label < classes, "label \(label) outside 0..<\(classes)")
                        loss += Double(logf(sum) + top - row[label])
                        let factor = scale / sum
                        let lanes = Lanes(repeating: factor)
                        forEachVector(classes, { i in o.setVector(o.vector(i) * lanes, i) }, scalar: { i in o[i] *= factor })
                    }
                }
            }
        }
        return (probabilities, loss)
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (probabilities, loss) = Self.softmax(inputs[0], labels: inputs[1])
        return [Tensor(scalar: Float(loss / Double(max(1, probabilities.shape[0]))))]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard args.wanted[0] else { return [nil, nil] }
        let (logits, labels) = (args.input(0), args.input(1))
        let classes = logits.shape.last ?? 1
        let rowCount = rows(logits, columns: classes)
        // (softmax - onehot(label)) * scale, the scale folded into the softmax's normalisation.
        let scale = (args.gradients[0]?.data[0] ?? 1) / Float(max(1, rowCount))
        var (gradient, _) = Self.softmax(logits, labels: labels, scale: scale)
        labels.data.withUnsafeBufferPointer { yp in
            gradient.data.withUnsafeMutableBufferPointer { g in
                for r in 0..<rowCount { g[r * classes + Int(yp[r])] -= scale }
            }
        }
        return [gradient.reshaped(logits.shape), nil]
    }
}

/// Rows of a [vocabulary, dimension] table picked by token ids: ids of shape S give S + [dimension].
public struct Embedding: Operation {
    public var vocabulary: Int
    public var kind: String { "embedding" }
    public var inputCount: Int { 2 }
    public var nonDifferentiableInputs: Set<Int> { [0] }
    public var backwardReadsInputs: Set<Int> { [0] }

    public init(vocabulary: Int) { self.vocabulary = vocabulary }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (ids, table) = (inputShapes[0], inputShapes[1])
        guard table.count == 2, table[0] == vocabulary else {
            throw ShapeMismatch(kind, "table \(table) is not [\(vocabulary), dimension]")
        }
        return [ids + [table[1]]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (ids, table) = (inputs[0], inputs[1])
        let dimension = table.shape[1]
        return [ids.data.withUnsafeBufferPointer { ip in
            table.data.withUnsafeBufferPointer { tp in
                Tensor(shape: ids.shape + [dimension]) { out in
                    for (i, id) in ip.enumerated() {
                        let row = Int(id)
                        precondition(row >= 0 && row < vocabulary, "token id \(row) outside the vocabulary")
                        for d in 0..<dimension { out[i * dimension + d] = tp[row * dimension + d] }
                    }
                }
            }
        }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[1] else { return [nil, nil] }
        let ids = args.input(0)
        let dimension = dy.count / max(1, ids.count)
        var table = Tensor(zeros: [vocabulary, dimension])
        ids.data.withUnsafeBufferPointer { ip in
            dy.data.withUnsafeBufferPointer { gp in
                table.data.withUnsafeMutableBufferPointer { tp in
                    for (i, id) in ip.enumerated() {
                        let row = Int(id) * dimension
                        for d in 0..<dimension { tp[row + d] += gp[i * dimension + d] }
                    }
                }
            }
        }
        return [nil, table]
    }
}

/// Inverted dropout: in training each element is kept with probability 1 - rate and scaled by
/// 1 / (1 - rate). The mask comes from (seed, node name, step), and is a second output so backward
/// can run anywhere.
public struct Dropout: Operation {
    public var rate: Float
    public var kind: String { "dropout" }
    public var inputCount: Int { 1 }
    public var outputCount: Int { 2 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init(rate: Float) { self.rate = rate }

    /// The result and its mask.
    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] { [inputShapes[0], inputShapes[0]] }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let x = inputs[0]
        guard context.training, rate > 0 else { return [x, Tensor(shape: x.shape, data: Array(repeating: 1, count: x.count))] }
        var random = SplitMix64(seed: context.seed, stream: "dropout/" + context.nodeName, index: context.step)
        let keep = 1 - rate
        let mask = Tensor(shape: x.shape) { m in
            for i in 0..<m.count { m[i] = random.nextUnitFloat() < keep ? 1 / keep : 0 }
        }
        return [x.zipped(mask, *), mask]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        return [dy.zipped(args.output(1), *)]
    }
}
