import Basics
import Foundation
import Testing
@testable import ONNXImport
import Runtime
import Tensors
import TestSupport

func readModel(_ url: URL, loss: ONNXLoss = .crossEntropy) throws -> ONNXTrainableModel {
    try ONNXTrainableModel.read(try Data(contentsOf: url), name: url.deletingPathExtension().lastPathComponent, loss: loss)
}

/// The largest difference relative to the largest magnitude of the truth (1 when that is below 1).
func worstDifference(_ ours: [Float], _ truth: [Float]) -> Float {
    let scale = max(1, truth.map(abs).max() ?? 1)
    return zip(ours, truth).map { abs($0 - $1) }.max().map { $0 / scale } ?? .infinity
}

@Suite struct ONNXTrainingTests {
    static let opCases = ["add", "sub", "mul", "div", "relu", "sigmoid", "tanh", "gemm-00", "gemm-01", "matmul-2d-weight",
                          "matmul-batched", "conv", "conv-stride", "conv-same", "maxpool", "averagepool", "globalaveragepool",
                          "batchnormalization", "flatten-1", "flatten-2", "reshape-computed", "reshape-sliced", "reshape-slice-to-end",
                          "gather-embedding", "dropout", "transpose", "softmax", "softmax-opset11", "softmax-opset11-axis2",
                          "layernormalization", "gelu", "gelu-tanh",
                          "erf", "reducemean", "unsqueeze-squeeze", "gather-select", "slice", "concat", "gru", "gru-lbr", "gru-bidirectional", "gru-reverse-batch-first",
                          "lstm", "lstm-full", "lstm-states", "lstm-batch-first", "lstm-last-states"]

    /// Every op's forward, translated from a one-node model, against onnxruntime on random inputs
    /// (inference mode: batch normalization by its running statistics, no dropout).
    @Test(arguments: opCases)
    func forwardMatchesOnnxruntime(_ name: String) throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("ops/\(name).onnx"), loss: .mse)
        let arrays = try NumPyArchive.read(path: cases.appendingPathComponent("ops/\(name).npz").path)
        let (x, y) = (arrays["x"]!, arrays["y"]!)
        let built = model.build(seed: 1)
        let graph = TrainingGraph(model: built, optimizer: SGD(learningRate: 0.1, momentum: 0), seed: 1)
        let features = x.dtype.isInteger ? try x.integers().map(Float.init) : x.floats()
        let output = graph.infer([model.task.input: Tensor(shape: x.shape, data: features)], outputs: [built.prediction])[0]
        #expect(output.shape == y.shape, "\(name): shape \(output.shape), onnxruntime \(y.shape)")
        #expect(worstDifference(output.data, y.floats()) < 1e-5, "\(name): outputs differ from onnxruntime's")
    }

    /// A one-layer transformer encoder (embeddings, attention as MatMul/Transpose/Softmax/Reshape, layer
    /// normalization, GELU by Erf) gives onnxruntime's logits, then learns its task.
    @Test func transformerEncoderMatchesOnnxruntimeAndLearns() throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("transformer.onnx"))
        #expect(model.inputIsInteger)
        let trainer = Trainer(model: model.build(seed: 2), optimizer: Adam(learningRate: 0.003), seed: 2)
        let reference = try NumPyArchive.read(path: cases.appendingPathComponent("transformer-logits.npz").path)
        let tokens = Tensor(shape: reference["x"]!.shape, data: try reference["x"]!.integers().map(Float.init))
        let logits = trainer.graph.infer(["tokens": tokens], outputs: [trainer.model.prediction])[0]
        #expect(worstDifference(logits.data, reference["y"]!.floats()) < 1e-5)

        func examples(_ name: String) throws -> Examples {
            .images(try ModelFile(model: model, path: "").examples(cases.appendingPathComponent(name).path, limit: nil))
        }
        let (train, test) = (try examples("tokens-train.npz"), try examples("tokens-test.npz"))
        for epoch in 1...6 { trainer.trainEpoch(train, batchSize: 32, epoch: epoch) }
        let accuracy = trainer.evaluate(test).accuracy ?? 0
        #expect(accuracy > 0.9, "test accuracy \(accuracy) after 6 epochs")
    }

    /// An embedding + GRU language model as PyTorch exports it (time-major GRU, a zero initial state
    /// computed from the batch's size) gives onnxruntime's logits, then learns to count.
    @Test func gruLanguageModelMatchesOnnxruntimeAndLearns() throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("gru-lm.onnx"))
        #expect(model.task.targetShape == [6])
        let trainer = Trainer(model: model.build(seed: 2), optimizer: Adam(learningRate: 0.01), seed: 2)
        let reference = try NumPyArchive.read(path: cases.appendingPathComponent("gru-lm-logits.npz").path)
        let tokens = Tensor(shape: reference["x"]!.shape, data: try reference["x"]!.integers().map(Float.init))
        let logits = trainer.graph.infer(["tokens": tokens], outputs: [trainer.model.prediction])[0]
        #expect(logits.shape == reference["y"]!.shape)
        #expect(worstDifference(logits.data, reference["y"]!.floats()) < 1e-5)

        func examples(_ name: String) throws -> Examples {
            .images(try ModelFile(model: model, path: "").examples(cases.appendingPathComponent(name).path, limit: nil))
        }
        let (train, test) = (try examples("lm-train.npz"), try examples("lm-test.npz"))
        for epoch in 1...4 { trainer.trainEpoch(train, batchSize: 32, epoch: epoch) }
        let accuracy = trainer.evaluate(test).accuracy ?? 0
        #expect(accuracy > 0.9, "next-token accuracy \(accuracy) after 4 epochs")
    }

    /// Three steps of plain SGD on the mlp (Gemm, Relu, Gemm) against the same steps in NumPy (float64).
    @Test func trainingStepsMatchNumPy() throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("mlp.onnx"))
        let data = try NumPyArchive.read(path: cases.appendingPathComponent("train.npz").path)
        let reference = try NumPyArchive.read(path: cases.appendingPathComponent("mlp-reference.npz").path)
        let trainer = Trainer(model: model.build(seed: 1), optimizer: SGD(learningRate: 0.1, momentum: 0), seed: 1)
        let (x, y) = (data["x"]!.floats(), try data["y"]!.integers())
        var losses: [Float] = []
        for step in 0..<3 {
            let rows = (step * 8)..<((step + 1) * 8)
            let feeds = ["input": Tensor(shape: [8, 20], data: Array(x[(rows.lowerBound * 20)..<(rows.upperBound * 20)])),
                         "target": Tensor(shape: [8], data: y[rows].map(Float.init))]
            losses.append(trainer.graph.step(feeds, step: UInt64(step)))
        }
        let expectedLosses = reference["losses"]!.floats()
        for (ours, truth) in zip(losses, expectedLosses) { #expect(abs(ours - truth) < 1e-5) }
        for (name, key) in [("fc1.weight", "w1"), ("fc1.bias", "b1"), ("fc2.weight", "w2"), ("fc2.bias", "b2")] {
            let ours = trainer.model.parameters.values(of: name)!
            #expect(worstDifference(ours, reference[key]!.floats()) < 1e-5, "\(name) after three steps")
        }
    }

    /// The reshape target of `x.view(x.size(0), -1)` holds at any batch: shapes inferred at two other
    /// batch sizes equal those of real steps.
    @Test(arguments: [1, 5])
    func computedShapesHoldAtEveryBatch(_ batch: Int) throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("cnn.onnx"))
        let graph = TrainingGraph(model: model.build(seed: 1), optimizer: SGD(learningRate: 0.1, momentum: 0), seed: 1)
        let feeds = ["input": Tensor(zeros: [batch, 1, 8, 8]), "target": Tensor(zeros: [batch])]
        let inferred = try graph.inferShapes(feeds: feeds.mapValues(\.shape))
        #expect(inferred == executedShapes(graph, feeds: feeds))
    }

    /// Batch normalization's running statistics move as PyTorch's: after a step, running = 0.9 running +
    /// 0.1 batch statistic (unbiased variance), and nothing else changes them.
    @Test func runningStatisticsFoldInTheBatch() throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("cnn.onnx"))
        let built = model.build(seed: 1)
        let graph = TrainingGraph(model: built, optimizer: SGD(learningRate: 0, momentum: 0), seed: 1)
        var data = SplitMix64(seed: 3)
        let x = Tensor(shape: [4, 1, 8, 8], data: (0..<256).map { _ in data.nextUnitFloat() })
        // The batch's statistics of conv1's output (its bias added), computed by inference up to it.
        guard let conv = graph.nodes.firstIndex(where: { $0.name == "fwd//conv1/Conv" }) else {
            Issue.record("no conv1 node among \(graph.nodes.map(\.name).prefix(8))")
            return
        }
        let c1 = graph.infer(["input": x], outputs: [ValueRef(node: conv)])[0]
        var means = [Double](repeating: 0, count: 4)
        var variances = [Double](repeating: 0, count: 4)
        for ch in 0..<4 {
            let values = (0..<4).flatMap { n in (0..<64).map { Double(c1.data[(n * 4 + ch) * 64 + $0]) } }
            let mean = values.reduce(0, +) / Double(values.count)
            means[ch] = mean
            variances[ch] = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
        }
        graph.step(["input": x, "target": Tensor(zeros: [4])], step: 0)
        let runningMean = built.parameters.values(of: "bn1.running_mean")!
        let runningVar = built.parameters.values(of: "bn1.running_var")!
        for ch in 0..<4 {
            #expect(abs(Double(runningMean[ch]) - 0.1 * means[ch]) < 1e-5)
            #expect(abs(Double(runningVar[ch]) - (0.9 + 0.1 * variances[ch])) < 1e-5)
        }
    }

    /// Token ids are checked against the embedding they index, also when they reach it through ops
    /// that only move or retype them (an exporter's Cast to int64, an Identity).
    @Test func idsAreBoundedThroughCastAndIdentity() throws {
        guard let cases = onnxCases else { return }
        let direct = try readModel(cases.appendingPathComponent("transformer.onnx"))
        let rows = try #require(direct.idLimit)
        var model = try ONNXImporter.decode(try Data(contentsOf: cases.appendingPathComponent("transformer.onnx")))
        let gather = try #require(model.graph.node.firstIndex { $0.opType == "Gather" && $0.input.count == 2 && $0.input[1] == "tokens" })
        var cast = Onnx_NodeProto()
        cast.opType = "Cast"
        cast.input = ["tokens"]
        cast.output = ["tokens_int64"]
        var to = Onnx_AttributeProto()
        to.name = "to"
        to.type = .int
        to.i = 7
        cast.attribute = [to]
        var identity = Onnx_NodeProto()
        identity.opType = "Identity"
        identity.input = ["tokens_int64"]
        identity.output = ["tokens_moved"]
        model.graph.node[gather].input[1] = "tokens_moved"
        model.graph.node.insert(contentsOf: [cast, identity], at: 0)
        let indirect = try ONNXTrainableModel.read(try ONNXImporter.encode(model), name: "indirect")
        #expect(indirect.idLimit == rows)
    }

    @Test func modelsThatCannotBeTrainedAreRefusedNamingTheNode() throws {
        guard let cases = onnxCases else { return }
        var model = try ONNXImporter.decode(try Data(contentsOf: cases.appendingPathComponent("mlp.onnx")))
        model.graph.node[1].opType = "Celu"
        let error = #expect(throws: ONNXTrainingError.self) { try ONNXTrainableModel.read(try ONNXImporter.encode(model), name: "m") }
        #expect(error?.description.contains("node \"/relu/Relu\" (Celu)") == true)
        #expect(error?.description.contains("cannot be trained yet") == true)
        #expect(throws: ONNXTrainingError.self) { try ONNXTrainableModel.read(Data([1, 2, 3]), name: "garbage") }
    }
}

/// The way out: a trained model written back to ONNX gives, in onnxruntime, the outputs fedbaechi
/// gives (inference mode: batch normalization by the running statistics it learned).
@Suite struct ONNXExportTests {
    /// A weight shared through Identity stays one parameter: the export gives onnxruntime what was trained.
    @Test func sharedWeightsTrainAsOne() throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("shared.onnx"))
        let built = model.build(seed: 1)
        #expect(built.parameters.declaredNames.sorted() == ["b", "b3", "w1", "w2", "w3"])
        let trainer = Trainer(model: built, optimizer: Adam(learningRate: 0.05), seed: 1)
        let train = try NumPyArchive.read(path: cases.appendingPathComponent("train.npz").path)
        let x = Tensor(shape: train["x"]!.shape, data: train["x"]!.floats())
        trainer.trainEpoch(.images(LabeledImages(images: x, labels: Tensor(shape: train["y"]!.shape, data: try train["y"]!.integers().map(Float.init)))),
                           batchSize: 32, epoch: 1)
        #expect(trainer.model.parameters.values(of: "b") != [Float](repeating: 0.1, count: 8))
        let ours = trainer.graph.infer(["input": x], outputs: [trainer.model.prediction])[0]
        #expect(try Self.onnxruntimeDifference(model, trainer, input: "input", x: x, ours: ours) < 1e-4)
    }

    /// onnxruntime's outputs on `x` for `model` exported with `trainer`'s parameters, against `ours`:
    /// the largest difference relative to the largest output.
    static func onnxruntimeDifference(_ model: ONNXTrainableModel, _ trainer: Trainer, input: String, x: Tensor, ours: Tensor) throws -> Double {
        let folder = try makeTemporaryFolder("onnx-export")
        defer { try? FileManager.default.removeItem(at: folder) }
        try model.exported(parameters: trainer.model.parameters.state.values).write(to: folder.appendingPathComponent("trained.onnx"))
        try NumPyArchive.write(["x": NumPyArray(shape: x.shape, floats: x.data), "y": NumPyArray(shape: ours.shape, floats: ours.data)],
                               to: folder.appendingPathComponent("ours.npz").path)
        let script = """
            import sys, numpy as np, onnxruntime as ort
            folder, name = sys.argv[1], sys.argv[2]
            data = np.load(folder + "/ours.npz")
            session = ort.InferenceSession(folder + "/trained.onnx", providers=["CPUExecutionProvider"])
            theirs = session.run(None, {name: data["x"]})[0]
            print(float(np.abs(theirs - data["y"]).max() / max(1.0, np.abs(theirs).max())))
            """
        let result = try run("/usr/bin/env", ["python3", "-c", script, folder.path, input], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        return Double(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .infinity
    }

    @Test func exportedModelMatchesOnnxruntime() throws {
        guard let cases = onnxCases else { return }
        let model = try readModel(cases.appendingPathComponent("cnn.onnx"))
        let trainer = Trainer(model: model.build(seed: 4), optimizer: Adam(learningRate: 0.01), seed: 4)
        let train = try NumPyArchive.read(path: cases.appendingPathComponent("images-train.npz").path)
        let test = try NumPyArchive.read(path: cases.appendingPathComponent("images-test.npz").path)
        let images = LabeledImages(images: Tensor(shape: train["x"]!.shape, data: train["x"]!.floats().map { $0 / 255 }),
                                   labels: Tensor(shape: train["y"]!.shape, data: try train["y"]!.integers().map(Float.init)))
        trainer.trainEpoch(.images(images), batchSize: 32, epoch: 1)
        let x = Tensor(shape: test["x"]!.shape, data: test["x"]!.floats().map { $0 / 255 })
        let ours = trainer.graph.infer(["input": x], outputs: [trainer.model.prediction])[0]

        let difference = try ONNXExportTests.onnxruntimeDifference(model, trainer, input: "input", x: x, ours: ours)
        #expect(difference < 1e-4, "onnxruntime on the exported model differs by \(difference)")
        // Training moved the weights and the running statistics that the export carries.
        #expect(trainer.model.parameters.values(of: "bn1.running_mean") != [0, 0, 0, 0])
    }
}

/// An ONNX CNN on Fashion-MNIST converted to .npz reaches the zoo lenet's accuracy band: the zoo's
/// lenet at the same widths, trained in the same run on the same examples.
@Suite struct ONNXFashionMNISTTests {
    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func onnxCNNReachesTheZooLenetsAccuracy() throws {
        guard let cases = onnxCases else { return }
        let folder = try makeTemporaryFolder("fashion-npz")
        defer { try? FileManager.default.removeItem(at: folder) }
        // The Debian package's IDX files converted to .npz as a user would (float32 images, int64 labels).
        let convert = """
            import gzip, sys, numpy as np
            source, target = sys.argv[1], sys.argv[2]
            def idx(name):
                with gzip.open(source + "/" + name + ".gz") as f:
                    data = f.read()
                dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
                return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)
            for split, prefix, count in [("train", "train", 2048), ("test", "t10k", 1000)]:
                # Standardised as the zoo's loader does (torchvision's Normalize((0.2860,), (0.3530,))).
                x = ((idx(prefix + "-images-idx3-ubyte")[:count].reshape(-1, 1, 28, 28) / 255 - 0.2860) / 0.3530).astype(np.float32)
                y = idx(prefix + "-labels-idx1-ubyte")[:count].astype(np.int64)
                np.savez(target + "/" + split + ".npz", x=x, y=y)
            """
        let converted = try run("/usr/bin/env", ["python3", "-c", convert, KnownDataset.fashionMNIST.defaultDirectory, folder.path])
        #expect(converted.status == 0, "\(converted.stderr)")
        let model = try readModel(cases.appendingPathComponent("fashion-cnn.onnx"))
        let file = ModelFile(model: model, path: "fashion-cnn.onnx")
        let (train, test) = (try file.examples(folder.appendingPathComponent("train.npz").path, limit: nil),
                             try file.examples(folder.appendingPathComponent("test.npz").path, limit: nil))
        let onnx = Trainer(model: model.build(seed: 5), optimizer: Adam(learningRate: 0.002), seed: 5)
        for epoch in 1...2 { onnx.trainEpoch(.images(train), batchSize: 32, epoch: epoch) }
        let onnxAccuracy = onnx.evaluate(.images(test)).accuracy ?? 0

        var spec = ModelSpec(kind: .lenet)
        spec.lenet = (8, 16, 64)
        let data = try FashionMNIST.load(trainLimit: 2048, testLimit: 1000)
        let zoo = Trainer(model: spec.build(seed: 5), optimizer: Adam(learningRate: 0.002), seed: 5)
        for epoch in 1...2 { zoo.trainEpoch(.images(data.train), batchSize: 32, epoch: epoch) }
        let zooAccuracy = zoo.evaluate(.images(data.test)).accuracy ?? 0
        #expect(zooAccuracy > 0.65, "the zoo lenet reached \(zooAccuracy)")
        print("Fashion-MNIST, 2048 examples, 2 epochs: ONNX CNN \(onnxAccuracy), zoo lenet \(zooAccuracy)")
        #expect(abs(onnxAccuracy - zooAccuracy) < 0.06, "ONNX CNN \(onnxAccuracy), zoo lenet \(zooAccuracy)")
    }
}
