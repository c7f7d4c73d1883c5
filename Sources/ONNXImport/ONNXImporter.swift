import Basics
import Foundation
import Placement
import SwiftProtobuf

/// What to do with an op shape inference does not know, or whose output shape it cannot know.
public enum UnknownOpPolicy: String, CaseIterable, Sendable {
    /// Reject the model, naming the op (the default: a silent guess could misplace a model).
    case reject
    /// Give it the fallback estimate (see `ONNXImporter`) and list it in a warning.
    case estimate
}

public struct ONNXImportOptions: Sendable, Hashable {
    /// The batch dimension (leading dimension of the model's inputs); nil keeps what the model
    /// fixes and makes a symbolic batch 1.
    public var batch: Int?
    /// Add the backward op of every forward op, with gradients and optimizer state.
    public var training: Bool
    public var optimizer: OptimizerKind
    public var unknownOps: UnknownOpPolicy
    public var costModel: CostModel

    public init(batch: Int? = nil, training: Bool = false, optimizer: OptimizerKind = .sgd,
                unknownOps: UnknownOpPolicy = .reject, costModel: CostModel = .default) {
        self.batch = batch
        self.training = training
        self.optimizer = optimizer
        self.unknownOps = unknownOps
        self.costModel = costModel
    }
}

/// A model read from ONNX, with what the reader should be told.
public struct ONNXImportResult: Sendable {
    public var graph: Graph
    /// Ops of the forward graph (after constant folding), inputs not counted.
    public var forwardOps: Int
    /// Ops given the fallback estimate, as `OpType (node name)`.
    public var estimatedOps: [String]
    /// Bytes of all parameters and constants.
    public var parameterBytes: Int
    /// The batch size used.
    public var batch: Int?
    /// Total forward FLOPs of one step.
    public var forwardFlops: Double
    /// Every tensor the model names (inputs, initializers, the outputs of every op, folded ones
    /// included), as import sized it: what the graph's bytes come from, so that shape inference
    /// can be checked against another implementation of the specification.
    public var tensors: [String: ONNXTensor]
}

/// The shape and element type import gives one tensor of an ONNX model.
public struct ONNXTensor: Sendable, Hashable {
    public var shape: [Int]
    /// ONNX `TensorProto.DataType` code.
    public var elementType: Int32
    /// Bytes of the tensor: elements x bits per element / 8, rounded up (sub-byte types are packed).
    public var bytes: Int
    /// Sized by the fallback estimate (`UnknownOpPolicy.estimate`) rather than by shape inference.
    public var estimated: Bool
}

/// Reads an ONNX model (a protobuf `ModelProto`) into a placement graph.
///
/// Every ONNX node becomes a graph node, except what is computed once rather than every step:
/// initializers, `Constant`, and any op whose inputs are all constant (the light models build
/// their weights with `ConstantOfShape`). Constants a node reads are its parameters
/// (`persistent_bytes`); nodes that read the same parameter are colocated. The model's inputs
/// become nodes of their own (zero time) so that their memory is counted.
///
/// Shapes come from shape inference (`ShapeInference`), times from the cost model
/// (`CostModel`). An op shape inference does not know, or whose output shape depends on contents
/// it does not know (a Reshape target computed at run time), is rejected, or with
/// `UnknownOpPolicy.estimate` given a fallback: each output takes the shape the model declares
/// for it in `value_info` or the graph's outputs, else the shape of the op's first input; one
/// FLOP per output element; its inputs and outputs as memory traffic.
///
/// With `training`, every forward op `f` gets a backward op `f/grad` colocated with it that
/// receives the gradients of `f`'s outputs from the backward ops of its consumers (and from a
/// `loss` op for the model's outputs), reads the forward tensors the op's gradient needs (so they
/// stay in memory until then), sends the gradients of `f`'s inputs, and holds the gradients and
/// optimizer slots of `f`'s trainable parameters. Its time is the forward FLOPs times
/// `InferredOp.backwardFactor` and twice the forward memory traffic, plus the optimizer update:
/// (3 + 2 * slots) * parameter bytes of traffic.
public struct ONNXImporter: GraphImporter {
    public var options: ONNXImportOptions

    public init(options: ONNXImportOptions = ONNXImportOptions()) {
        self.options = options
    }

    public var formatName: String { "onnx" }
    public var formatSummary: String { "an ONNX model (protobuf ModelProto)" }
    public var isJSON: Bool { false }

    public func recognizes(_ data: Data) -> Bool { ONNXImporter.looksLikeModel(data) }

    public func importGraph(from data: Data, name: String) throws(GraphError) -> Graph {
        try importModel(from: data, name: name).graph
    }

    /// Largest model file and node count read: far above any real model, below what would
    /// exhaust memory.
    static let maximumFileBytes = 4 << 30
    static let maximumNodes = 5_000_000

    /// The top-level fields of `ModelProto` (field number -> wire type): ir_version, producer,
    /// domain, model_version, doc_string, graph, opset_import, metadata, training_info, functions,
    /// configuration.
    private static let modelFields: [UInt64: UInt64] = [1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2]

    /// A cheap check by content: the first fields (up to 64 KiB) are well-formed `ModelProto`
    /// fields with the right wire types, and an IR version or a graph is among them. JSON cannot
    /// pass (`{` would be field 15 with a group wire type).
    public static func looksLikeModel(_ data: Data) -> Bool {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
            let bytes = raw.bindMemory(to: UInt8.self)
            var i = 0
            func varint() -> UInt64? {
                var value: UInt64 = 0
                var shift: UInt64 = 0
                while i < bytes.count, shift < 64 {
                    let byte = bytes[i]
                    i += 1
                    value |= UInt64(byte & 0x7F) << shift
                    if byte & 0x80 == 0 { return value }
                    shift += 7
                }
                return nil
            }
            var sawKey = false
            while i < bytes.count && i < 1 << 16 {
                guard let key = varint() else { return false }
                let field = key >> 3, wire = key & 7
                guard let expected = modelFields[field], expected == wire else { return false }
                if field == 1 || field == 7 { sawKey = true }
                if wire == 0 {
                    guard varint() != nil else { return false }
                } else {
                    guard let length = varint(), length <= UInt64(bytes.count - i) else { return false }
                    i += Int(length)
                }
            }
            return sawKey
        }
    }

    public func importModel(from data: Data, name: String) throws(GraphError) -> ONNXImportResult {
        guard data.count <= ONNXImporter.maximumFileBytes else { throw .invalidValue("the ONNX file is larger than 4 GiB") }
        let model: Onnx_ModelProto
        do { model = try Onnx_ModelProto(serializedBytes: data) } catch {
            throw .malformed("not a valid ONNX model: its bytes do not decode as an ONNX ModelProto (a damaged or truncated file, or not ONNX)")
        }
        guard model.hasGraph else { throw .malformed("the ONNX model has no graph") }
        guard model.graph.node.count <= ONNXImporter.maximumNodes else {
            throw .invalidValue("the ONNX graph has \(model.graph.node.count) nodes, more than \(ONNXImporter.maximumNodes)")
        }
        var builder = ONNXGraphBuilder(options: options)
        // The file name, not graph.name: exporters write names like "torch_jit" or "main_graph".
        do { return try builder.build(model.graph, name: name) } catch {
            throw ONNXImporter.oneLine(error)
        }
    }

    /// Messages quote names from the file, which may hold line breaks or control characters:
    /// they are shown escaped so that an error stays one line.
    static func oneLine(_ error: GraphError) -> GraphError {
        func clean(_ text: String) -> String {
            var out = ""
            for scalar in text.unicodeScalars {
                if scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}" {
                    out += scalar.escaped(asASCII: true)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        switch error {
        case .notJSON(let text): return .notJSON(clean(text))
        case .unrecognizedFormat(let text): return .unrecognizedFormat(clean(text))
        case .malformed(let text): return .malformed(clean(text))
        case .duplicateName(let name): return .duplicateName(clean(name))
        case .unknownNode(let edge, let name): return .unknownNode(edge: edge, name: clean(name))
        case .invalidValue(let text): return .invalidValue(clean(text))
        case .cycle(let names): return .cycle(names.map(clean))
        case .empty: return .empty
        case .tooLarge(let text): return .tooLarge(clean(text))
        }
    }
}

extension ONNXImporter {
    /// The protobuf encoding of `model`, for tests and tools that build models in Swift.
    static func encode(_ model: Onnx_ModelProto) throws -> Data {
        try model.serializedBytes()
    }

    static func decode(_ data: Data) throws -> Onnx_ModelProto {
        try Onnx_ModelProto(serializedBytes: data)
    }
}
