import Basics
import Foundation
import Placement

/// Turns an ONNX graph into a placement `Graph`: inference, constant folding, parameters, costs,
/// and for training the backward ops (see `ONNXImporter` for the model).
struct ONNXGraphBuilder {
    let options: ONNXImportOptions

    /// One op of the forward graph.
    private struct Forward {
        var name: String
        var opType: String
        /// Input tensor names by slot ("" for an absent optional input).
        var inputs: [String]
        var outputs: [String]
        var inferred: InferredOp
        /// Constants it reads first: its share of the parameters.
        var parameterBytes = 0
        /// The part of them that training updates (gradients and optimizer slots follow it).
        var trainableBytes = 0
        /// A model input rather than an op.
        var isInput: Bool
    }

    init(options: ONNXImportOptions) {
        self.options = options
    }

    mutating func build(_ onnx: Onnx_GraphProto, name: String) throws(GraphError) -> ONNXImportResult {
        var tensors = [String: TensorInfo]()
        var declared = [String: Onnx_ValueInfoProto]()
        for info in onnx.valueInfo + onnx.output where declared[info.name] == nil { declared[info.name] = info }

        var parameterBytes = 0
        for initializer in onnx.initializer {
            let info = try initializer.info()
            tensors[initializer.name] = info
            parameterBytes = saturatingSum(parameterBytes, info.bytes)
        }

        // Model inputs: the leading dimension is the batch.
        var forwards = [Forward]()
        var producer = [String: (node: Int, port: Int)]()
        var rewrite: BatchRewrite?
        for input in onnx.input where tensors[input.name] == nil {
            let info = try inputInfo(input, rewrite: &rewrite)
            tensors[input.name] = info
            producer[input.name] = (forwards.count, 0)
            forwards.append(Forward(name: input.name, opType: "Input", inputs: [], outputs: [input.name],
                                    inferred: InferredOp(outputs: [info], flops: 0, bytes: 0), isInput: true))
        }

        // ONNX lists nodes in topological order, but not every exporter does: order them by their inputs.
        let order = try topologicalOrder(onnx.node, known: Set(tensors.keys))
        var estimated = [String]()
        // Outputs of the fallback estimate, and the tensors computed from them: guesses.
        var estimatedTensors = Set<String>()
        var guessedTensors = Set<String>()
        var usedNames = Set(forwards.map(\.name))
        // Next suffix to try per repeated name, so that many nodes of one name stay linear.
        var nextSuffix = [String: Int]()
        for index in order {
            let node = onnx.node[index]
            let label = Self.label(node, index: index)
            let inputs = node.input.map { $0.isEmpty ? nil : tensors[$0] }
            let standard = node.domain.isEmpty || node.domain == "ai.onnx"
            var inferred: InferredOp
            var fellBack = false
            let attempt: Result<InferredOp, InferenceFailure> = standard
                ? Result { () throws(InferenceFailure) in
                    try ShapeInference.infer(node.opType, inputs: inputs, outputCount: node.output.count,
                                             attributes: Attributes(node), rewrite: rewrite)
                }
                : .failure(.unsupported)
            switch attempt {
            case .success(let value):
                inferred = value
            case .failure(let failure):
                let qualified = standard ? node.opType : node.domain + "." + node.opType
                let estimating = options.unknownOps == .estimate
                switch failure {
                case .invalid(let reason):
                    // Inputs computed from an estimate may not fit: the guess is carried on, not blamed here.
                    guard estimating && node.input.contains(where: { guessedTensors.contains($0) }) else {
                        throw .invalidValue("ONNX node \"\(label)\" (\(node.opType)): \(reason)")
                    }
                case .dataDependent(let reason):
                    guard estimating else {
                        throw .invalidValue("ONNX node \"\(label)\" (\(node.opType)): \(reason), and its output shape depends on it (--unknown-ops=estimate gives it a fallback estimate)")
                    }
                case .unsupported:
                    guard estimating else {
                        throw .invalidValue("ONNX node \"\(label)\": op type \"\(qualified)\" is not supported by shape inference (--unknown-ops=estimate gives it a fallback estimate)")
                    }
                }
                inferred = try estimate(node, inputs: inputs, declared: declared, label: label)
                fellBack = true
                estimatedTensors.formUnion(node.output.filter { !$0.isEmpty })
                estimated.append("\(qualified) (\(label))")
            }
            if fellBack || node.input.contains(where: { guessedTensors.contains($0) }) {
                guessedTensors.formUnion(node.output.filter { !$0.isEmpty })
            }
            let present = node.input.filter { !$0.isEmpty }
            // Computed once, not every step: ops on constants only (and ops without inputs), and
            // Shape and Size, which depend only on static shapes.
            let folded = node.opType == "Shape" || node.opType == "Size" || present.allSatisfy { tensors[$0]?.isConstant == true }
            for (port, output) in node.output.enumerated() where !output.isEmpty {
                var info = port < inferred.outputs.count ? inferred.outputs[port] : TensorInfo(shape: [0], elementType: ElementType.float)
                info.isConstant = folded
                tensors[output] = info
                if folded {
                    parameterBytes = saturatingSum(parameterBytes, info.bytes)
                } else {
                    producer[output] = (forwards.count, port)
                }
            }
            if folded { continue }
            var unique = label
            var suffix = nextSuffix[label, default: 2]
            while usedNames.contains(unique) {
                unique = "\(label)#\(suffix)"
                suffix += 1
            }
            nextSuffix[label] = suffix
            usedNames.insert(unique)
            while inferred.outputs.count < node.output.count { inferred.outputs.append(TensorInfo(shape: [0], elementType: ElementType.float)) }
            inferred.outputs = Array(inferred.outputs.prefix(node.output.count))
            forwards.append(Forward(name: unique, opType: node.opType, inputs: Array(node.input), outputs: Array(node.output),
                                    inferred: inferred, isInput: false))
        }

        // Parameters: the constants each node reads, counted once on the first node that reads
        // one; the readers of a shared constant are colocated.
        // Each group is named after its earliest node, so the smaller root survives every merge.
        var labels = UnionFind<Int>(count: forwards.count)
        var owner = [String: Int]()
        for (i, forward) in forwards.enumerated() where !forward.isInput {
            for (slot, tensor) in forward.inputs.enumerated() where !tensor.isEmpty {
                guard let info = tensors[tensor], info.isConstant else { continue }
                if let first = owner[tensor] {
                    let (a, b) = (labels.find(first), labels.find(i))
                    labels.merge(max(a, b), into: min(a, b))
                    continue
                }
                owner[tensor] = i
                forwards[i].parameterBytes = saturatingSum(forwards[i].parameterBytes, info.bytes)
                // Running statistics of batch normalization are state, not trained.
                let statistic = forward.opType == "BatchNormalization" && slot >= 3
                if info.isFloatingPoint && !statistic { forwards[i].trainableBytes = saturatingSum(forwards[i].trainableBytes, info.bytes) }
            }
        }

        let cost = options.costModel
        var nodes = [Node]()
        var edges = [Edge]()
        nodes.reserveCapacity(forwards.count * (options.training ? 2 : 1) + 1)
        var groupSize = [Int: Int]()
        for i in forwards.indices { groupSize[labels.find(i), default: 0] += 1 }
        func colocation(_ i: Int) -> String? {
            let root = labels.find(i)
            guard options.training || groupSize[root, default: 0] > 1 else { return nil }
            return forwards[root].name
        }
        var flops = 0.0
        for (i, forward) in forwards.enumerated() {
            flops += forward.inferred.flops
            nodes.append(Node(name: forward.name,
                              computeMicros: forward.isInput ? 0 : cost.micros(flops: forward.inferred.flops, bytes: forward.inferred.bytes),
                              persistentBytes: forward.parameterBytes, temporaryBytes: 0,
                              outputBytes: forward.inferred.outputs.map(\.bytes),
                              colocation: forward.isInput ? nil : colocation(i), kind: forward.opType))
        }
        var seen = Set<[Int]>()
        func connect(_ source: Int, _ port: Int, _ destination: Int) {
            guard seen.insert([source, port, destination]).inserted else { return }
            edges.append(Edge(source: source, destination: destination, port: port))
        }
        var consumers = [String: [(node: Int, slot: Int)]]()
        for (i, forward) in forwards.enumerated() {
            for (slot, tensor) in forward.inputs.enumerated() where !tensor.isEmpty {
                guard let (source, port) = producer[tensor] else { continue }
                connect(source, port, i)
                consumers[tensor, default: []].append((i, slot))
            }
        }

        if options.training {
            try addBackward(forwards: forwards, producer: producer, consumers: consumers, outputs: onnx.output.map(\.name),
                            tensors: tensors, nodes: &nodes, names: &usedNames, colocation: colocation, connect: connect)
        }

        let graph = try Graph(name: name, nodes: nodes, edges: edges)
        var sized = [String: ONNXTensor](minimumCapacity: tensors.count)
        for (name, info) in tensors {
            sized[name] = ONNXTensor(shape: info.shape, elementType: info.elementType, bytes: info.bytes,
                                     estimated: estimatedTensors.contains(name))
        }
        return ONNXImportResult(graph: graph, forwardOps: forwards.filter { !$0.isInput }.count, estimatedOps: estimated,
                                parameterBytes: parameterBytes, batch: rewrite?.batch, forwardFlops: flops,
                                tensors: sized)
    }

    /// The backward ops, a `loss` op, and their edges (see `ONNXImporter`).
    private func addBackward(forwards: [Forward], producer: [String: (node: Int, port: Int)],
                             consumers: [String: [(node: Int, slot: Int)]], outputs: [String], tensors: [String: TensorInfo],
                             nodes: inout [Node], names: inout Set<String>, colocation: (Int) -> String?,
                             connect: (Int, Int, Int) -> Void) throws(GraphError) {
        let cost = options.costModel
        func unique(_ base: String) -> String {
            var name = base
            var suffix = 2
            while names.contains(name) { name = "\(base)#\(suffix)"; suffix += 1 }
            names.insert(name)
            return name
        }
        // The loss reads every model output produced by an op and sends back its gradient.
        let lossOutputs = outputs.filter { producer[$0].map { !forwards[$0.node].isInput } ?? false }
        var lossNode: Int?
        var lossPort = [String: Int]()
        if !lossOutputs.isEmpty {
            let bytes = lossOutputs.map { tensors[$0]?.bytes ?? 0 }
            let elements = lossOutputs.reduce(0.0) { $0 + Double(tensors[$1]?.elements ?? 0) }
            lossNode = nodes.count
            nodes.append(Node(name: unique("loss"), computeMicros: cost.micros(flops: 4 * elements, bytes: 2 * bytes.reduce(0.0) { $0 + Double($1) }),
                              outputBytes: bytes, kind: "Loss"))
            for (port, output) in lossOutputs.enumerated() {
                lossPort[output] = port
                let (source, sourcePort) = producer[output]!
                connect(source, sourcePort, lossNode!)
            }
        }

        // Backward ops in reverse order, so the ops a gradient comes from exist first.
        var backwardOf = [Int](repeating: -1, count: forwards.count)
        var gradientPort = [[String: Int]](repeating: [:], count: forwards.count)
        let slots = options.optimizer.stateSlots
        for i in forwards.indices.reversed() where !forwards[i].isInput {
            let forward = forwards[i]
            var incoming = [(node: Int, port: Int)]()
            for output in forward.outputs where !output.isEmpty {
                if let lossNode, let port = lossPort[output] { incoming.append((lossNode, port)) }
                for consumer in consumers[output] ?? [] {
                    let b = backwardOf[consumer.node]
                    if b >= 0, let port = gradientPort[consumer.node][output] { incoming.append((b, port)) }
                }
            }
            guard !incoming.isEmpty else { continue }   // nothing downstream reaches the loss
            var ports = [String: Int]()
            var portBytes = [Int]()
            for tensor in forward.inputs where !tensor.isEmpty && ports[tensor] == nil {
                guard let (source, _) = producer[tensor], !forwards[source].isInput else { continue }
                ports[tensor] = portBytes.count
                portBytes.append(tensors[tensor]?.bytes ?? 0)
            }
            gradientPort[i] = ports
            let inferred = forward.inferred
            let update = Double(3 + 2 * slots) * Double(forward.trainableBytes)
            // The forward node holds the weights; its gradient node the gradient and the optimizer state.
            let memory = ParameterMemory(weightBytes: forward.trainableBytes, stateSlots: slots)
            let b = nodes.count
            backwardOf[i] = b
            nodes.append(Node(name: unique(forward.name + "/grad"),
                              computeMicros: cost.micros(flops: inferred.flops * inferred.backwardFactor, bytes: 2 * inferred.bytes + update),
                              persistentBytes: forward.trainableBytes > Graph.maximumBytes ? forward.trainableBytes : memory.gradientBytes + memory.stateBytes,
                              temporaryBytes: 0,
                              outputBytes: portBytes, colocation: colocation(i), kind: forward.opType + "Grad"))
            for (source, port) in incoming { connect(source, port, b) }
            // The forward tensors the gradient reads stay alive until it has run.
            for slot in inferred.savedInputs where slot < forward.inputs.count {
                if let (source, port) = producer[forward.inputs[slot]] { connect(source, port, b) }
            }
            for port in inferred.savedOutputs where port < forward.outputs.count && !forward.outputs[port].isEmpty {
                connect(i, port, b)
            }
        }
    }

    /// Shape of a model input, with `--batch` applied to its leading dimension.
    private func inputInfo(_ input: Onnx_ValueInfoProto, rewrite: inout BatchRewrite?) throws(GraphError) -> TensorInfo {
        guard input.type.tensorType.hasShape else {
            throw .invalidValue("ONNX input \"\(input.name)\" has no tensor shape (sequence, map and shapeless inputs are not supported)")
        }
        let dims = input.type.tensorType.shape.dim
        var shape = [Int]()
        let batchParameter = dims.first.flatMap { $0.dimParam.isEmpty ? nil : $0.dimParam }
        for (i, dim) in dims.enumerated() {
            let known: Bool
            if case .dimValue = dim.value { known = true } else { known = false }
            if i == 0 {
                // The first input fixes what the batch is; another input whose leading dimension
                // is a different fixed size (a lookup table, a scale) keeps it.
                let fixed = known ? Int(clamping: dim.dimValue) : nil
                if let existing = rewrite {
                    shape.append(fixed == nil || fixed == existing.original ? existing.batch : fixed!)
                } else {
                    let batch = options.batch ?? fixed ?? 1
                    rewrite = BatchRewrite(original: fixed, batch: batch)
                    shape.append(batch)
                }
            } else if known {
                shape.append(Int(clamping: dim.dimValue))
            } else if let batchParameter, dim.dimParam == batchParameter, let rewrite {
                shape.append(rewrite.batch)
            } else {
                let symbol = dim.dimParam.isEmpty ? "unnamed" : "\"\(dim.dimParam)\""
                throw .invalidValue("ONNX input \"\(input.name)\": dimension \(i) is symbolic (\(symbol)); only the leading (batch) dimension may be, and --batch sets it")
            }
        }
        guard ShapeCheck.elements(shape) != nil else { throw .invalidValue("ONNX input \"\(input.name)\" has an impossible shape \(shape)") }
        let type = input.type.tensorType.elemType
        return TensorInfo(shape: shape, elementType: type == 0 ? ElementType.float : type)
    }

    /// What a node is called: its name, else its first output's, else `<OpType>_<index>` (its
    /// position in the file): never empty, as a graph node's name must not be. Repeats get `#2`, ...
    static func label(_ node: Onnx_NodeProto, index: Int) -> String {
        if !node.name.isEmpty { return node.name }
        if let first = node.output.first, !first.isEmpty { return first }
        return "\(node.opType.isEmpty ? "node" : node.opType)_\(index)"
    }

    /// The documented fallback for an op shape inference does not know.
    private func estimate(_ node: Onnx_NodeProto, inputs: [TensorInfo?], declared: [String: Onnx_ValueInfoProto], label: String) throws(GraphError) -> InferredOp {
        let first = inputs.compactMap { $0 }.first
        var outputs = [TensorInfo]()
        for output in node.output {
            // A declared shape counts when every dimension is a number; a declared shape without
            // dimensions is a scalar (rank 0), and a declaration without a shape says nothing.
            let tensorType = declared[output].flatMap { $0.type.tensorType.hasShape ? $0.type.tensorType : nil }
            let dims = tensorType?.shape.dim ?? []
            let fixed = tensorType != nil && dims.allSatisfy { if case .dimValue(let v) = $0.value { return v >= 0 } else { return false } }
            let shape = dims.map { Int(clamping: $0.dimValue) }
            let declaredType = declared[output]?.type.tensorType.elemType ?? 0
            if fixed, ShapeCheck.elements(shape) != nil {
                outputs.append(TensorInfo(shape: shape, elementType: declaredType == 0 ? ElementType.float : declaredType))
            } else if let first {
                outputs.append(TensorInfo(shape: first.shape, elementType: declaredType == 0 ? first.elementType : declaredType))
            } else {
                throw .invalidValue("ONNX node \"\(label)\": op type \"\(node.opType)\" is not supported, and with no inputs and no declared output shape it cannot be estimated")
            }
        }
        let flops = outputs.reduce(0.0) { $0 + Double($1.elements) }
        let bytes = inputs.compactMap { $0 }.reduce(0.0) { $0 + Double($1.bytes) } + outputs.reduce(0.0) { $0 + Double($1.bytes) }
        return InferredOp(outputs: outputs, flops: flops, bytes: bytes, backwardFactor: 1,
                          savedInputs: Array(inputs.indices), savedOutputs: [])
    }

    /// Kahn's algorithm over tensor names, stable in file order; names the first node whose input nothing produces.
    private func topologicalOrder(_ nodes: [Onnx_NodeProto], known: Set<String>) throws(GraphError) -> [Int] {
        var producedBy = [String: Int]()
        for (i, node) in nodes.enumerated() {
            for output in node.output where !output.isEmpty {
                if producedBy[output] != nil || known.contains(output) {
                    throw .invalidValue("ONNX tensor \"\(output)\" is produced twice")
                }
                producedBy[output] = i
            }
        }
        var waiting = [Int](repeating: 0, count: nodes.count)
        var dependents = [[Int]](repeating: [], count: nodes.count)
        for (i, node) in nodes.enumerated() {
            for input in Set(node.input) where !input.isEmpty && !known.contains(input) {
                guard let source = producedBy[input] else {
                    let label = Self.label(node, index: i)
                    throw .invalidValue("ONNX node \"\(label)\" (\(node.opType)) reads \"\(input)\", which no node, input or initializer provides")
                }
                waiting[i] += 1
                dependents[source].append(i)
            }
        }
        // The ready node listed first in the file runs first.
        var ready = MinHeap<Int>()
        for i in nodes.indices where waiting[i] == 0 { ready.push(i) }
        var order = [Int]()
        order.reserveCapacity(nodes.count)
        while let i = ready.pop() {
            order.append(i)
            for j in dependents[i] {
                waiting[j] -= 1
                if waiting[j] == 0 { ready.push(j) }
            }
        }
        guard order.count == nodes.count else {
            let stuck = nodes.indices.first { waiting[$0] > 0 }!
            let label = Self.label(nodes[stuck], index: stuck)
            throw .invalidValue("the ONNX graph has a cycle: node \"\(label)\" (\(nodes[stuck].opType)) depends on its own output")
        }
        return order
    }
}

/// A sum that stops at Int.max / 2 instead of trapping: a model may declare tensors of up to 1 TiB
/// each without their data, and Graph rejects any node above 1 TiB with a message.
func saturatingSum(_ a: Int, _ b: Int) -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow || sum > Int.max / 2 ? Int.max / 2 : sum
}
