import Basics
import Foundation
import SwiftProtobuf
import Tensors

/// What `train --model model.onnx` minimises.
public enum ONNXLoss: String, CaseIterable, Sendable {
    /// Cross-entropy over the output's last axis against integer labels of its other dimensions.
    case crossEntropy = "cross-entropy"
    /// Mean squared error against float targets of the output's shape.
    case mse
}

/// An ONNX model that fedbaechi can train: its graph translated into the tensor engine's ops, its
/// initializers as the initial weights, a loss on one output, and the way back out (`exported`).
///
/// The model must have one input fed from the data (the others are initializers), whose first
/// dimension is the batch; the output trained is the first graph output or the one named.
public struct ONNXTrainableModel: ModelRecipe {
    /// The file's name without its extension: how runs and reports name the model.
    public let name: String
    public let task: SupervisedTask
    /// Whether the input holds integer ids (token ids of an embedding) rather than features.
    public let inputIsInteger: Bool
    /// Ids the input may hold, 0 to idLimit - 1, when it indexes an embedding's table of idLimit rows
    /// (the smallest, when several), directly or through ops that only move or retype its elements
    /// (Cast, Reshape, Transpose, Slice, ...): data outside it is refused when read.
    public var idLimit: Int? {
        let graph = proto.graph
        let rowsOfTable = Dictionary(graph.initializer.compactMap { t in t.dims.first.map { (t.name, Int(clamping: $0)) } },
                                     uniquingKeysWith: { _, last in last })
        let moving: Set<String> = ["Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Expand", "Tile"]
        var ids: Set<String> = [task.input]
        var tables: [Int] = []
        for node in graph.node where node.input.contains(where: ids.contains) {
            if node.opType == "Gather", node.input.count == 2, ids.contains(node.input[1]), let rows = rowsOfTable[node.input[0]] {
                tables.append(rows)
            } else if moving.contains(node.opType), ids.contains(node.input[0]) {
                ids.formUnion(node.output.prefix(1))
            }
        }
        return tables.min()
    }
    /// The version of the standard operator set the model imports (the newest, when it names several).
    var opset: Int {
        proto.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }.map { Int(clamping: $0.version) }.max() ?? 13
    }
    /// The model without the bytes of its large float initializers, which `stored` locates.
    let proto: Onnx_ModelProto
    let stored: [String: StoredBytes]
    let outputName: String

    /// Sequences are the model's own business: synthetic inputs have the input's shape.
    public var steps: Int { 1 }

    /// The feed of the labels or targets, a name no ONNX value takes.
    static let targetFeed = "target"

    /// Reads and checks the model in the file at `path`: every node is translated once here, so a model
    /// that cannot be trained is refused before any rank starts.
    ///
    /// The large weights stay in the file (inside it, or in external data files beside it, as PyTorch's
    /// dynamo-based exporter writes them): each rank reads those of the parameters it holds when it
    /// builds its part of the model, so no rank ever holds them all (`StoredWeights`).
    public static func read(path: String, output: String? = nil, loss: ONNXLoss = .crossEntropy) throws(ONNXTrainingError) -> ONNXTrainableModel {
        let url = URL(fileURLWithPath: path)
        var (proto, stored) = try StoredWeights.decode(path: path)
        try loadExternalData(&proto.graph, directory: url.deletingLastPathComponent().path, stored: &stored)
        return try read(proto, stored: stored, name: url.deletingPathExtension().lastPathComponent, output: output, loss: loss)
    }

    /// Reads and checks a model held in memory (its weights with it).
    public static func read(_ data: Data, name: String, output: String? = nil, loss: ONNXLoss = .crossEntropy) throws(ONNXTrainingError) -> ONNXTrainableModel {
        guard data.count <= ONNXImporter.maximumFileBytes else { throw ONNXTrainingError("the ONNX file is larger than 4 GiB") }
        var proto: Onnx_ModelProto
        do { proto = try Onnx_ModelProto(serializedBytes: data) } catch {
            throw ONNXTrainingError("not a valid ONNX model: its bytes do not decode as an ONNX ModelProto")
        }
        var stored: [String: StoredBytes] = [:]
        try loadExternalData(&proto.graph, directory: nil, stored: &stored)
        return try read(proto, stored: stored, name: name, output: output, loss: loss)
    }

    private static func read(_ proto: Onnx_ModelProto, stored: [String: StoredBytes], name: String, output: String?,
                             loss: ONNXLoss) throws(ONNXTrainingError) -> ONNXTrainableModel {
        guard proto.hasGraph, !proto.graph.output.isEmpty else { throw ONNXTrainingError("the ONNX model has no graph or no output") }
        let graph = proto.graph
        let initializerNames = Set(graph.initializer.map(\.name))
        let fed = graph.input.filter { !initializerNames.contains($0.name) }
        guard fed.count == 1, let input = fed.first else {
            throw ONNXTrainingError("the model has \(fed.count) inputs fed from data (\(fed.map(\.name).joined(separator: ", "))); one is trained")
        }
        let dims = input.type.tensorType.shape.dim
        guard input.type.tensorType.hasShape, dims.count >= 1 else {
            throw ONNXTrainingError("input \"\(input.name)\" declares no shape; export it with its shape (the first dimension is the batch)")
        }
        var exampleShape: [Int] = []
        for (i, dim) in dims.enumerated().dropFirst() {
            guard case .dimValue(let value) = dim.value, value > 0 else {
                throw ONNXTrainingError("input \"\(input.name)\" has no fixed size in dimension \(i) (only the first, the batch, may vary)")
            }
            exampleShape.append(Int(value))
        }
        let elementType = input.type.tensorType.elemType
        guard [1, 6, 7].contains(elementType) else {
            throw ONNXTrainingError("input \"\(input.name)\" has ONNX element type \(elementType); float, int32 and int64 inputs are trained")
        }
        let outputName = output ?? graph.output[0].name
        guard graph.output.contains(where: { $0.name == outputName }) || graph.node.contains(where: { $0.output.contains(outputName) }) else {
            throw ONNXTrainingError("the model has no output \"\(outputName)\" (its outputs: \(graph.output.map(\.name).joined(separator: ", ")))")
        }
        var model = ONNXTrainableModel(
            name: name, task: SupervisedTask(input: input.name, inputShape: exampleShape, target: targetFeed, targetShape: [],
                                             objective: .meanSquaredError),
            inputIsInteger: elementType != 1, proto: proto, stored: stored, outputName: outputName)
        // A first translation finds the output's shape and so the task.
        let outputShape = try model.translate(seed: 0, holding: .none, task: nil).outputShape
        switch loss {
        case .crossEntropy:
            guard outputShape.count >= 2, let classes = outputShape.last, classes >= 2 else {
                throw ONNXTrainingError("output \"\(outputName)\" has shape \(outputShape): cross-entropy needs scores over at least 2 classes in its last axis")
            }
            model = model.with(SupervisedTask(input: input.name, inputShape: exampleShape, target: targetFeed,
                                              targetShape: Array(outputShape.dropFirst().dropLast()), objective: .crossEntropy(classes: classes)))
        case .mse:
            model = model.with(SupervisedTask(input: input.name, inputShape: exampleShape, target: targetFeed,
                                              targetShape: Array(outputShape.dropFirst()), objective: .meanSquaredError))
        }
        _ = try model.translate(seed: 0, holding: .none, task: model.task)
        return model
    }

    /// Resolves initializers kept in files beside the model. A location must be a relative path inside
    /// the model's directory, as ONNX's own loader requires. Float and double tensors stay in their
    /// files (`stored`), read by the rank that holds them; other tensors (shape constants, ids) are read now.
    static func loadExternalData(_ graph: inout Onnx_GraphProto, directory: String?, stored: inout [String: StoredBytes]) throws(ONNXTrainingError) {
        var sizes: [String: Int] = [:]
        for (index, tensor) in graph.initializer.enumerated() where tensor.dataLocation == .external {
            let entries = Dictionary(tensor.externalData.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
            guard let location = entries["location"], !location.isEmpty else {
                throw ONNXTrainingError("tensor \"\(tensor.name)\" keeps its data in an external file that it does not name")
            }
            guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
                throw ONNXTrainingError("tensor \"\(tensor.name)\" names its data file \"\(location)\" outside the model's directory")
            }
            guard let directory else {
                throw ONNXTrainingError("tensor \"\(tensor.name)\" keeps its data in \"\(location)\", and the model's directory is not known")
            }
            let path = directory + "/" + location
            if sizes[path] == nil {
                var status = stat()
                guard stat(path, &status) == 0 else {
                    throw ONNXTrainingError("tensor \"\(tensor.name)\" keeps its data in \(path), which cannot be read: \(String(cString: strerror(errno)))")
                }
                guard (status.st_mode & S_IFMT) == S_IFREG else {
                    throw ONNXTrainingError("tensor \"\(tensor.name)\" keeps its data in \(path), which is not a regular file")
                }
                sizes[path] = Int(status.st_size)
            }
            let size = sizes[path]!
            let offset = Int(entries["offset"] ?? "0") ?? -1
            let length = entries["length"].map { Int($0) ?? -1 } ?? (size - max(0, offset))
            guard offset >= 0, length >= 0, offset <= size, length <= size - offset else {
                throw ONNXTrainingError("tensor \"\(tensor.name)\" claims bytes \(entries["offset"] ?? "0")+\(entries["length"] ?? "?") of \(path), which holds \(size)")
            }
            let bytes = StoredBytes(path: path, offset: offset, length: length)
            var loaded = tensor
            loaded.externalData = []
            loaded.dataLocation = .default
            if tensor.dataType == 1 || tensor.dataType == 11 {
                stored[tensor.name] = bytes
            } else {
                loaded.rawData = try bytes.read()
            }
            graph.initializer[index] = loaded
        }
    }

    private func with(_ task: SupervisedTask) -> ONNXTrainableModel {
        ONNXTrainableModel(name: name, task: task, inputIsInteger: inputIsInteger, proto: proto, stored: stored, outputName: outputName)
    }

    private init(name: String, task: SupervisedTask, inputIsInteger: Bool, proto: Onnx_ModelProto, stored: [String: StoredBytes],
                 outputName: String) {
        self.name = name
        self.task = task
        self.inputIsInteger = inputIsInteger
        self.proto = proto
        self.stored = stored
        self.outputName = outputName
    }

    /// The trainable model. `seed` seeds dropout; the initial weights are the file's.
    public func build(seed: UInt64, holding: ParameterHolding = .all) -> Model {
        // `read` translated the same graph without error.
        do { return try translate(seed: seed, holding: holding, task: task).model! } catch {
            preconditionFailure("a model read without error fails to translate: \(error)")
        }
    }

    private func translate(seed: UInt64, holding: ParameterHolding, task: SupervisedTask?) throws(ONNXTrainingError) -> (model: Model?, outputShape: [Int]) {
        let builder = GraphBuilder(name: name, seed: seed, holding: holding)
        var translator = ONNXTranslator(graph: proto.graph, opset: opset, stored: stored, builder: builder)
        let batch = ONNXTranslator.batches
        let input = builder.input(self.task.input)
        translator.values[self.task.input] = .runtime(input, shapes: batch.map { [$0] + self.task.inputShape })
        translator.dataInput = input
        if inputIsInteger { translator.integerValued.insert(self.task.input) }
        for (index, node) in proto.graph.node.enumerated() { try translator.translate(node, index: index) }
        guard case .runtime(let prediction, let shapes) = translator.values[outputName] else {
            throw ONNXTrainingError("output \"\(outputName)\" is not computed from the input")
        }
        guard shapes[0].first == batch[0], shapes[1].first == batch[1] else {
            throw ONNXTrainingError("output \"\(outputName)\" has shape \(shapes[0]) at batch \(batch[0]): its first dimension is not the batch")
        }
        guard let task else { return (nil, shapes[0]) }
        let target = builder.input(task.target)
        let lossOp: any Tensors.Operation = task.objective == .meanSquaredError ? MeanSquaredError() : SoftmaxCrossEntropy()
        let loss = builder(lossOp, prediction, target, name: "loss")
        return (builder.build(task: .supervised(task), loss: loss, prediction: prediction), shapes[0])
    }

    /// The model file with `parameters`' values in place of the initializers they train, set for
    /// inference: BatchNormalization in inference mode, Dropout off.
    public func exported(parameters: [String: [Float]]) throws(ONNXTrainingError) -> Data {
        var model = proto
        for (i, initializer) in model.graph.initializer.enumerated() {
            guard let values = parameters[initializer.name] else {
                // An initializer no op trains, whose bytes stayed in the file: back in place.
                if let bytes = stored[initializer.name] { model.graph.initializer[i].rawData = try bytes.read() }
                continue
            }
            var tensor = initializer
            guard values.count == tensor.dims.reduce(1, { $0 * Int($1) }) else {
                throw ONNXTrainingError("parameter \(initializer.name) has \(values.count) values, not \(tensor.dims)")
            }
            tensor.floatData = []
            tensor.doubleData = []
            var raw = Data(capacity: values.count * (tensor.dataType == 11 ? 8 : 4))
            for value in values {
                if tensor.dataType == 11 {
                    withUnsafeBytes(of: Double(value).bitPattern.littleEndian) { raw.append(contentsOf: $0) }
                } else {
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { raw.append(contentsOf: $0) }
                }
            }
            tensor.rawData = raw
            model.graph.initializer[i] = tensor
        }
        var inferenceOnly: [String] = []
        for (i, node) in model.graph.node.enumerated() {
            if node.opType == "BatchNormalization" {
                var node = node
                node.attribute.removeAll { $0.name == "training_mode" }
                inferenceOnly += node.output.dropFirst()
                node.output = Array(node.output.prefix(1))
                model.graph.node[i] = node
            } else if node.opType == "Dropout", node.input.count > 2, !node.input[2].isEmpty {
                var node = node
                node.input[2] = ""
                model.graph.node[i] = node
            }
        }
        model.graph.output.removeAll { inferenceOnly.contains($0.name) }
        do { return try model.serializedBytes() } catch { throw ONNXTrainingError("the trained model could not be encoded: \(error)") }
    }
}
