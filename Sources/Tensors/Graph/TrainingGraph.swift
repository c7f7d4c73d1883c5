import Dispatch

/// A model's training step as one DAG: its forward nodes, a backward node per forward node on the
/// path to the loss, a sum node wherever gradients of one value meet, and an update node per
/// parameter. A parameter's read node, the sum of its gradients and its update share a colocation
/// group: the update writes the parameter where it is read.
///
/// Every node can run on its own given its input tensors (`execute`), so an executor can run any
/// subset in any order that respects the edges, with tensors received from elsewhere.
public final class TrainingGraph: @unchecked Sendable {
    public let model: Model
    public let optimizer: any Optimizer
    public private(set) var nodes: [Node]
    public let seed: UInt64
    private var indexByName: [String: Int] = [:]

    public init(model: Model, optimizer: any Optimizer, seed: UInt64 = 0) {
        self.model = model
        self.optimizer = optimizer
        self.seed = seed
        nodes = model.nodes
        buildBackward()
        for (index, node) in nodes.enumerated() { indexByName[node.name] = index }
    }

    public func index(of name: String) -> Int? { indexByName[name] }

    private func buildBackward() {
        let forwardCount = nodes.count
        // Values that depend on a parameter, and nodes the loss depends on.
        var dependsOnParameter = Set<ValueRef>()
        for (index, node) in nodes.enumerated() {
            switch node.action {
            case .read: dependsOnParameter.insert(ValueRef(node: index))
            case .forward(let op):
                let trainable = node.inputs.enumerated().contains {
                    !op.nonDifferentiableInputs.contains($0.offset) && dependsOnParameter.contains($0.element)
                }
                if trainable {
                    for port in 0..<op.differentiableOutputCount { dependsOnParameter.insert(ValueRef(node: index, port: port)) }
                }
            default: break
            }
        }
        var feedsLoss = Set([model.loss.node])
        for index in stride(from: forwardCount - 1, through: 0, by: -1) where feedsLoss.contains(index) {
            for input in nodes[index].inputs { feedsLoss.insert(input.node) }
        }

        var contributions: [ValueRef: [ValueRef]] = [:]
        // One gradient per value: the only contribution, or a sum node over all of them.
        func gradient(of value: ValueRef) -> ValueRef? {
            guard let parts = contributions[value], !parts.isEmpty else { return nil }
            if parts.count == 1 { return parts[0] }
            let name = "grad/" + nodes[value.node].name + ":\(value.port)"
            nodes.append(Node(name: name, action: .sum, inputs: parts, outputCount: 1,
                              colocation: nodes[value.node].colocation))
            return ValueRef(node: nodes.count - 1)
        }

        for index in stride(from: forwardCount - 1, through: 0, by: -1) where feedsLoss.contains(index) {
            let node = nodes[index]
            guard case .forward(let op) = node.action else { continue }
            let wanted = node.inputs.enumerated().map {
                !op.nonDifferentiableInputs.contains($0.offset) && dependsOnParameter.contains($0.element)
            }
            guard wanted.contains(true) else { continue }
            var gradientOutputs: [Int] = []
            var gradientInputs: [ValueRef] = []
            for port in 0..<op.differentiableOutputCount {
                if let g = gradient(of: ValueRef(node: index, port: port)) {
                    gradientOutputs.append(port)
                    gradientInputs.append(g)
                }
            }
            guard !gradientInputs.isEmpty || ValueRef(node: index) == model.loss else { continue }
            let readInputs = op.backwardReadsInputs.sorted()
            let readOutputs = op.backwardReadsOutputs.sorted()
            let gradientFor = wanted.indices.filter { wanted[$0] }
            let layout = BackwardLayout(forwardNode: index, readInputs: readInputs, readOutputs: readOutputs,
                                        gradientOutputs: gradientOutputs, gradientFor: gradientFor)
            let inputs = readInputs.map { node.inputs[$0] } + readOutputs.map { ValueRef(node: index, port: $0) }
                + gradientInputs
            let name = "bwd/" + node.name.dropFirst("fwd/".count)
            nodes.append(Node(name: name, action: .backward(op, layout), inputs: inputs, outputCount: gradientFor.count))
            for (port, input) in gradientFor.enumerated() {
                contributions[node.inputs[input], default: []].append(ValueRef(node: nodes.count - 1, port: port))
            }
        }

        for index in 0..<forwardCount {
            guard case .read(let parameter) = nodes[index].action,
                  let g = model.statistics[parameter] ?? gradient(of: ValueRef(node: index)) else { continue }
            nodes.append(Node(name: "update/" + parameter, action: .update(parameter: parameter), inputs: [g],
                              outputCount: 0, colocation: nodes[index].colocation))
        }
    }

    /// Runs node `index` on its input tensors (in `nodes[index].inputs` order) and returns its outputs.
    /// Input nodes are not executed: their values are fed.
    public func execute(_ index: Int, inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let node = nodes[index]
        var context = context
        context.nodeName = node.name
        switch node.action {
        case .feed:
            preconditionFailure("\(node.name) is fed, not executed")
        case .read(let parameter):
            guard let value = model.parameters.tensor(parameter) else { preconditionFailure("no parameter \(parameter)") }
            return [value]
        case .forward(let op):
            return op.forward(inputs, context: context)
        case .backward(let op, let layout):
            let forward = nodes[layout.forwardNode]
            var args = Backprop(inputs: Array(repeating: nil, count: op.inputCount),
                                outputs: Array(repeating: nil, count: op.outputCount),
                                gradients: Array(repeating: nil, count: op.differentiableOutputCount),
                                wanted: Array(repeating: false, count: forward.inputs.count))
            var position = 0
            for i in layout.readInputs { args.inputs[i] = inputs[position]; position += 1 }
            for o in layout.readOutputs { args.outputs[o] = inputs[position]; position += 1 }
            for o in layout.gradientOutputs { args.gradients[o] = inputs[position]; position += 1 }
            for i in layout.gradientFor { args.wanted[i] = true }
            let gradients = op.backward(args)
            return layout.gradientFor.map { i in
                guard let g = gradients[i] else { preconditionFailure("\(node.name) gave no gradient for input \(i)") }
                return g
            }
        case .sum:
            var total = inputs[0]
            for other in inputs.dropFirst() { accumulate(&total, other) }
            return [total]
        case .update(let parameter):
            model.parameters.update(parameter, gradient: inputs[0], optimizer: optimizer)
            return []
        }
    }

    /// Runs `order` (a valid order of some nodes), reading inputs from and writing outputs to `values`,
    /// which holds the fed and received tensors. Values not in `keep` are dropped after their last
    /// reader in `order` ran.
    /// `timing`, when given, hears each node's index and its run time in nanoseconds right after it runs
    /// (the per-op breakdown of `fedbaechi profile --time-steps`).
    public func run(_ order: [Int], values: inout [ValueRef: Tensor], context: ExecutionContext,
                    keep: Set<ValueRef>? = nil, timing: ((Int, UInt64) -> Void)? = nil) {
        var remainingReads: [ValueRef: Int] = [:]
        if keep != nil {
            for index in order { for input in Set(nodes[index].inputs) { remainingReads[input, default: 0] += 1 } }
        }
        for index in order {
            let node = nodes[index]
            let inputs = node.inputs.map { ref -> Tensor in
                guard let value = values[ref] else { preconditionFailure("\(node.name) runs before its input \(nodes[ref.node].name):\(ref.port)") }
                return value
            }
            let start = timing == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let outputs = execute(index, inputs: inputs, context: context)
            timing?(index, DispatchTime.now().uptimeNanoseconds - start)
            for (port, output) in outputs.enumerated() {
                values[ValueRef(node: index, port: port)] = output
            }
            if let keep {
                for input in Set(node.inputs) {
                    remainingReads[input]! -= 1
                    if remainingReads[input] == 0 && !keep.contains(input) { values[input] = nil }
                }
            }
        }
    }

    /// Every node except inputs in a valid order: index order, except that each update runs right
    /// after its gradient is computed, while that gradient is still in cache.
    public var executionOrder: [Int] {
        var updatesAfter: [Int: [Int]] = [:]
        for index in nodes.indices where nodes[index].role == .update {
            updatesAfter[nodes[index].inputs[0].node, default: []].append(index)
        }
        return nodes.indices.filter { nodes[$0].role != .input && nodes[$0].role != .update }
            .flatMap { [$0] + (updatesAfter[$0] ?? []) }
    }

    /// The nodes `targets` depend on (inputs excluded), in index order.
    public func ancestors(of targets: [ValueRef]) -> [Int] {
        var needed = Set(targets.map(\.node))
        for index in stride(from: nodes.count - 1, through: 0, by: -1) where needed.contains(index) {
            for input in nodes[index].inputs { needed.insert(input.node) }
        }
        return needed.sorted().filter { nodes[$0].role != .input }
    }

    /// Fed values by name into the value map.
    public func feedValues(_ feeds: [String: Tensor]) -> [ValueRef: Tensor] {
        var values: [ValueRef: Tensor] = [:]
        for (name, tensor) in feeds {
            guard let index = model.feeds[name] else { preconditionFailure("model \(model.name) has no input \(name)") }
            values[ValueRef(node: index)] = tensor
        }
        return values
    }

    /// One training step on a batch: forward, backward and update. Returns the batch's loss.
    /// `timing` as for `run`.
    @discardableResult
    public func step(_ feeds: [String: Tensor], step: UInt64, timing: ((Int, UInt64) -> Void)? = nil) -> Float {
        var values = feedValues(feeds)
        run(executionOrder, values: &values, context: ExecutionContext(training: true, step: step, seed: seed),
            keep: [model.loss], timing: timing)
        return values[model.loss]?.data[0] ?? .nan
    }

    /// Forward only, in inference mode (no dropout): the requested values for a batch.
    public func infer(_ feeds: [String: Tensor], outputs: [ValueRef]) -> [Tensor] {
        var values = feedValues(feeds)
        run(ancestors(of: outputs), values: &values, context: ExecutionContext(training: false, seed: seed),
            keep: Set(outputs))
        return outputs.map { values[$0]! }
    }
}
