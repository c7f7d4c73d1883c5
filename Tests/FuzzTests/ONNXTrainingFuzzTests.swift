import Foundation
@testable import ONNXImport
import Tensors
import TestSupport
import Testing

/// The reader of models to train, fed damaged files: the walk over the protocol-buffer fields that
/// leaves large weights in the file, the external-data references, and the translation behind them.
/// Every input is either refused with one line or read; a model read is built holding every parameter,
/// so the weights left in the file are read back too.
@Suite struct ONNXTrainingFuzzTests {
    /// A Gemm model whose weight (128 x 128 floats, 64 KiB) stays in the file, and a bias that does not.
    static func wideGemm(external: String? = nil) -> Data {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        var graph = Onnx_GraphProto()
        graph.name = "g"
        func tensor(_ name: String, _ dims: [Int64], _ count: Int) -> Onnx_TensorProto {
            var t = Onnx_TensorProto()
            t.name = name
            t.dims = dims
            t.dataType = 1
            var raw = Data()
            for i in 0..<count { withUnsafeBytes(of: (Float(i % 17) * 0.01).bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
            t.rawData = raw
            return t
        }
        var weight = tensor("fc.weight", [128, 128], 128 * 128)
        if let external {
            weight.rawData = Data()
            weight.dataLocation = .external
            weight.externalData = [("location", external), ("offset", "0"), ("length", "65536")].map {
                var entry = Onnx_StringStringEntryProto()
                entry.key = $0.0
                entry.value = $0.1
                return entry
            }
        }
        graph.initializer = [weight, tensor("fc.bias", [128], 128)]
        var node = Onnx_NodeProto()
        node.opType = "Gemm"
        node.input = ["x", "fc.weight", "fc.bias"]
        node.output = ["logits"]
        var transB = Onnx_AttributeProto()
        transB.name = "transB"
        transB.type = .int
        transB.i = 1
        node.attribute = [transB]
        graph.node = [node]
        func value(_ name: String, _ dims: [Int64?]) -> Onnx_ValueInfoProto {
            var info = Onnx_ValueInfoProto()
            info.name = name
            var type = Onnx_TypeProto.Tensor()
            type.elemType = 1
            var shape = Onnx_TensorShapeProto()
            shape.dim = dims.map { size in
                var dim = Onnx_TensorShapeProto.Dimension()
                if let size { dim.dimValue = size } else { dim.dimParam = "batch" }
                return dim
            }
            type.shape = shape
            info.type.tensorType = type
            return info
        }
        graph.input = [value("x", [nil, 128])]
        graph.output = [value("logits", [nil, 128])]
        model.graph = graph
        return (try? model.serializedBytes()) ?? Data()
    }

    @Test func damagedModelFilesAreRefusedWithOneLineOrRead() throws {
        let folder = try makeTemporaryFolder("onnx-training-fuzz")
        defer { try? FileManager.default.removeItem(at: folder) }
        // The external weights every external-data mutant points into.
        try Data(count: 65536 + 512).write(to: folder.appendingPathComponent("weights.bin"))
        let seeds = [Self.wideGemm(), Self.wideGemm(external: "weights.bin"), GraphSeeds.fixture("tiny-cnn.onnx")]
        try #require(seeds.allSatisfy { !$0.isEmpty })
        // The seeds themselves are read, their large weight left in the file.
        for (index, seed) in seeds.prefix(2).enumerated() {
            let path = folder.appendingPathComponent("seed\(index).onnx").path
            try seed.write(to: URL(fileURLWithPath: path))
            let model = try ONNXTrainableModel.read(path: path)
            #expect(model.stored.keys.sorted() == ["fc.weight"], "seed \(index) keeps \(model.stored.keys.sorted()) in the file")
            let built = model.build(seed: 1)
            #expect(built.parameters.values(of: "fc.weight")?.count == 128 * 128)
        }
        let seed: UInt64 = FuzzBudget.seed
        var mutator = Mutator(seed: seed, seeds: seeds, tokens: ["location", "offset", "length", "weights.bin", "../weights.bin", "/etc/passwd"])
        let path = folder.appendingPathComponent("mutant.onnx").path
        let report = try fuzz("ONNX model to train", mutator: &mutator, count: max(1, FuzzBudget.inputs / 4), seed: seed) { input in
            try Data(input).write(to: URL(fileURLWithPath: path))
            do throws(ONNXTrainingError) {
                // Every parameter's values are in the file (checked when read), so building is bounded by its size.
                _ = try ONNXTrainableModel.read(path: path).build(seed: 1)
                return .accepted
            } catch {
                return .rejected(error.description)
            }
        }
        #expect(report.inputs > 0)
    }
}
