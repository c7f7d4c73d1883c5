import Foundation
@testable import ONNXImport
@testable import Placement

/// Builders for small ONNX models, from the generated protobuf types.
enum ONNXBuild {
    /// A dimension: a number, or a symbol such as "N".
    enum Dim: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
        case value(Int64), symbol(String)
        init(integerLiteral value: Int64) { self = .value(value) }
        init(stringLiteral value: String) { self = .symbol(value) }
    }

    static func value(_ name: String, _ dims: [Dim], type: Int32 = 1) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = type
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { dim in
            var d = Onnx_TensorShapeProto.Dimension()
            switch dim {
            case .value(let v): d.dimValue = v
            case .symbol(let s): d.dimParam = s
            }
            return d
        }
        tensorType.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensorType
        info.type = type
        return info
    }

    static func floats(_ name: String, _ dims: [Int64]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dims = dims
        tensor.dataType = 1
        // Values only for small tensors: shapes are what import reads (and a test may give impossible ones).
        let count = dims.reduce(1, *)
        if count >= 0 && count <= 4096 { tensor.floatData = [Float](repeating: 0.5, count: Int(count)) }
        return tensor
    }

    static func int64s(_ name: String, _ values: [Int64]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dims = [Int64(values.count)]
        tensor.dataType = 7
        tensor.int64Data = values
        return tensor
    }

    static func attribute(_ name: String, ints: [Int64]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = ints
        return a
    }

    static func attribute(_ name: String, int: Int64) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = int
        return a
    }

    static func attribute(_ name: String, string: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(string.utf8)
        return a
    }

    static func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "",
                     _ attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var node = Onnx_NodeProto()
        node.opType = op
        node.input = inputs
        node.output = outputs
        node.name = name
        node.attribute = attributes
        return node
    }

    static func model(inputs: [Onnx_ValueInfoProto], initializers: [Onnx_TensorProto] = [], nodes: [Onnx_NodeProto],
                      outputs: [Onnx_ValueInfoProto], valueInfo: [Onnx_ValueInfoProto] = []) throws -> Data {
        var graph = Onnx_GraphProto()
        graph.name = "test"
        graph.input = inputs
        graph.initializer = initializers
        graph.node = nodes
        graph.output = outputs
        graph.valueInfo = valueInfo
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 13
        model.opsetImport = [opset]
        model.graph = graph
        return try ONNXImporter.encode(model)
    }

    /// Shape inference of one op on inputs of the given shapes (float, not constant).
    static func infer(_ op: String, _ shapes: [[Int]?], outputs: Int = 1, constants: [Int: [Int64]] = [:],
                      _ attributes: [Onnx_AttributeProto] = [], rewrite: BatchRewrite? = nil) throws -> InferredOp {
        let inputs: [TensorInfo?] = shapes.enumerated().map { i, shape in
            guard let shape else { return nil }
            if let values = constants[i] { return TensorInfo(shape: shape, elementType: 7, values: values, isConstant: true) }
            return TensorInfo(shape: shape, elementType: 1)
        }
        let node = node(op, [], [], attributes)
        return try ShapeInference.infer(op, inputs: inputs, outputCount: outputs, attributes: Attributes(node), rewrite: rewrite)
    }
}

extension InferenceFailure: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unsupported: return "unsupported"
        case .invalid(let reason), .dataDependent(let reason): return reason
        }
    }
}

/// The light models of the `onnx` package (`pip install onnx`), or nil when it is not installed.
let lightModels: URL? = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import onnx, os; print(os.path.dirname(onnx.__file__))"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    let root = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    let url = URL(fileURLWithPath: root).appendingPathComponent("backend/test/data/light")
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
}()

let lightModelNames = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
                       "shufflenet", "squeezenet", "vgg19", "zfnet512"]
