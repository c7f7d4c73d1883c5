import Basics

/// A training graph whose shapes do not fit: the node, and the op's reason.
public struct ShapeInferenceError: UserFacingError {
    public var node: String
    public var mismatch: ShapeMismatch
    public var exitStatus: ExitStatus { .badInput }
    public var description: String { "shape inference at \(node): \(mismatch)" }
}

extension TrainingGraph {
    /// The shape of every node output ([node][port] -> shape) when the inputs are fed with
    /// `feeds`' shapes, by inference over the graph: no value is computed and no parameter needs to be
    /// held, so a rank plans a model it could never hold whole.
    public func inferShapes(feeds: [String: [Int]]) throws(ShapeInferenceError) -> [[[Int]]] {
        let feedName = Dictionary(uniqueKeysWithValues: model.feeds.map { ($0.value, $0.key) })
        var shapes: [[[Int]]] = []
        shapes.reserveCapacity(nodes.count)
        for (index, node) in nodes.enumerated() {
            let inputShapes = node.inputs.map { shapes[$0.node][$0.port] }
            do throws(ShapeMismatch) {
                switch node.action {
                case .feed:
                    guard let name = feedName[index], let shape = feeds[name] else {
                        throw ShapeMismatch("input", "no shape given for \(node.name)")
                    }
                    shapes.append([shape])
                case .read(let parameter):
                    guard let declaration = model.parameters.declaration(parameter) else {
                        throw ShapeMismatch("parameter", "\(parameter) is not declared")
                    }
                    shapes.append([declaration.shape])
                case .forward(let op):
                    let outputs = try op.outputShapes(inputShapes)
                    guard outputs.count == node.outputCount else {
                        throw ShapeMismatch(op.kind, "gave \(outputs.count) output shapes for \(node.outputCount) outputs")
                    }
                    shapes.append(outputs)
                case .backward(_, let layout):
                    // The gradient of a forward input has that input's shape.
                    let forwardInputs = nodes[layout.forwardNode].inputs
                    shapes.append(layout.gradientFor.map { shapes[forwardInputs[$0].node][forwardInputs[$0].port] })
                case .sum:
                    guard Set(inputShapes).count == 1 else { throw ShapeMismatch("sum", "gradients of shapes \(inputShapes)") }
                    shapes.append([inputShapes[0]])
                case .update:
                    shapes.append([])
                }
            } catch {
                throw ShapeInferenceError(node: node.name, mismatch: error)
            }
        }
        return shapes
    }
}
