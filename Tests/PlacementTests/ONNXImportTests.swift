import Basics
import Foundation
import Testing
@testable import ONNXImport
@testable import Placement

private typealias B = ONNXBuild

/// x[N,3,8,8] -> Conv(4 filters 3x3, pad 1, bias) -> Relu -> MaxPool 2x2/2 -> Flatten -> Gemm(10, transB) -> Softmax.
private func tinyCNN() throws -> Data {
    try B.model(
        inputs: [B.value("x", ["N", 3, 8, 8])],
        initializers: [B.floats("W", [4, 3, 3, 3]), B.floats("b", [4]), B.floats("Wfc", [10, 64]), B.floats("bfc", [10])],
        nodes: [
            B.node("Conv", ["x", "W", "b"], ["c"], name: "conv", [B.attribute("kernel_shape", ints: [3, 3]), B.attribute("pads", ints: [1, 1, 1, 1])]),
            B.node("Relu", ["c"], ["r"], name: "relu"),
            B.node("MaxPool", ["r"], ["p"], name: "pool", [B.attribute("kernel_shape", ints: [2, 2]), B.attribute("strides", ints: [2, 2])]),
            B.node("Flatten", ["p"], ["f"], name: "flat"),
            B.node("Gemm", ["f", "Wfc", "bfc"], ["g"], name: "fc", [B.attribute("transB", int: 1)]),
            B.node("Softmax", ["g"], ["y"], name: "prob"),
        ],
        outputs: [B.value("y", ["N", 10])])
}

/// 1 GFLOP/s, 1 GB/s and 1 us per op: times in us are FLOPs / 1000 or bytes / 1000, plus 1.
private let unitCost = CostModel(flopsPerSecond: 1e9, memoryBytesPerSecond: 1e9, opOverheadMicros: 1)

private func node(_ graph: Graph, _ name: String) throws -> Node {
    try #require(graph.nodes.first { $0.name == name }, "no node \(name)")
}

private func hasEdge(_ graph: Graph, _ from: String, _ to: String, port: Int = 0) -> Bool {
    graph.edges.contains { graph.nodes[$0.source].name == from && graph.nodes[$0.destination].name == to && $0.port == port }
}

@Suite struct ONNXImportTests {
    @Test func tinyCNNShapesFLOPsAndTimes() throws {
        let result = try ONNXImporter(options: ONNXImportOptions(batch: 2, costModel: unitCost)).importModel(from: try tinyCNN(), name: "tiny")
        let graph = result.graph
        #expect(graph.nodes.map(\.name) == ["x", "conv", "relu", "pool", "flat", "fc", "prob"])
        #expect(result.forwardOps == 6 && result.batch == 2)
        // Shapes by hand: conv [2,4,8,8], pool [2,4,4,4], fc [2,10].
        #expect(try node(graph, "x").outputBytes == [2 * 3 * 8 * 8 * 4])
        #expect(try node(graph, "conv").outputBytes == [2 * 4 * 8 * 8 * 4])
        #expect(try node(graph, "relu").outputBytes == [2048])
        #expect(try node(graph, "pool").outputBytes == [2 * 4 * 4 * 4 * 4])
        #expect(try node(graph, "flat").outputBytes == [512])
        #expect(try node(graph, "fc").outputBytes == [80])
        // Parameters: conv 108 + 4 floats, fc 640 + 10.
        #expect(try node(graph, "conv").persistentBytes == 448)
        #expect(try node(graph, "fc").persistentBytes == 2600)
        // FLOPs: conv 512 outputs x (2*27 + 1) = 28160; relu 512; pool 4 x 128; fc 20 x (2*64 + 1) = 2580; softmax 5 x 20.
        #expect(result.forwardFlops == 28160 + 512 + 512 + 0 + 2580 + 100)
        // Roofline: conv is bound by FLOPs (28.16 us) rather than bytes (1536 + 432 + 16 + 2048 = 4032: 4.032 us).
        #expect(abs(try node(graph, "conv").computeMicros - 29.16) < 1e-9)
        #expect(abs(try node(graph, "relu").computeMicros - 5.096) < 1e-9)    // 4096 bytes
        #expect(abs(try node(graph, "pool").computeMicros - 3.56) < 1e-9)     // 2048 + 512 bytes
        #expect(try node(graph, "flat").computeMicros == 1)                   // a view
        #expect(abs(try node(graph, "fc").computeMicros - 4.192) < 1e-9)      // 512 + 2560 + 40 + 80 bytes
        #expect(abs(try node(graph, "prob").computeMicros - 1.16) < 1e-9)
        #expect(try node(graph, "x").computeMicros == 0)
        for (a, b) in [("x", "conv"), ("conv", "relu"), ("relu", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "prob")] {
            #expect(hasEdge(graph, a, b), "edge \(a) -> \(b)")
        }
        #expect(graph.edges.count == 6)
        #expect(graph.nodes.allSatisfy { $0.colocation == nil })
    }

    @Test func tinyCNNTrainingGraph() throws {
        let options = ONNXImportOptions(batch: 2, training: true, optimizer: .adam, costModel: unitCost)
        let graph = try ONNXImporter(options: options).importModel(from: try tinyCNN(), name: "tiny").graph
        #expect(graph.nodes.count == 14)
        // conv/grad: 2 x 28160 FLOPs; 2 x 4032 bytes + Adam's update (3 + 2*2) x 448 bytes.
        let convGrad = try node(graph, "conv/grad")
        #expect(abs(convGrad.computeMicros - 57.32) < 1e-9)
        #expect(convGrad.persistentBytes == 3 * 448)           // gradient + two moments
        #expect(convGrad.outputBytes == [])                      // no gradient for the model input
        let conv = try node(graph, "conv")
        #expect(convGrad.colocation != nil && convGrad.colocation == conv.colocation)
        let fcGrad = try node(graph, "fc/grad")
        #expect(abs(fcGrad.computeMicros - 25.584) < 1e-9)     // 5160 FLOPs vs 6384 + 7 x 2600 bytes
        #expect(fcGrad.persistentBytes == 7800)
        #expect(fcGrad.outputBytes == [512])
        #expect(abs(try node(graph, "relu/grad").computeMicros - 9.192) < 1e-9)
        #expect(try node(graph, "relu/grad").outputBytes == [2048])
        #expect(try node(graph, "loss").outputBytes == [80])
        // Gradients flow back; saved activations feed the backward ops.
        for (a, b) in [("prob", "loss"), ("loss", "prob/grad"), ("prob/grad", "fc/grad"), ("fc/grad", "flat/grad"),
                       ("flat/grad", "pool/grad"), ("pool/grad", "relu/grad"), ("relu/grad", "conv/grad"),
                       ("x", "conv/grad"), ("relu", "relu/grad"), ("relu", "pool/grad"), ("pool", "pool/grad"),
                       ("flat", "fc/grad"), ("prob", "prob/grad")] {
            #expect(hasEdge(graph, a, b), "edge \(a) -> \(b)")
        }
        for forward in ["conv", "relu", "pool", "flat", "fc", "prob"] {
            #expect(try node(graph, forward).colocation == (try node(graph, forward + "/grad")).colocation)
        }
        // Every plan keeps each backward op with its forward op and fits the simulated memory.
        let planner = Planner(graph: graph, link: testLink, options: PreprocessingOptions(coPlacement: false))
        for algorithm in Algorithm.concrete {
            let plan = try planner.plan(algorithm, devices: devices(2)).get()
            checkSchedule(plan, limits: [ample, ample], colocation: true, "tiny \(algorithm.rawValue)")
        }
    }

    @Test func optimizerStateSizes() throws {
        for (optimizer, slots) in [(OptimizerKind.sgd, 0), (.momentum, 1), (.adam, 2), (.rmsprop, 1)] {
            let graph = try ONNXImporter(options: ONNXImportOptions(batch: 1, training: true, optimizer: optimizer))
                .importModel(from: try tinyCNN(), name: "tiny").graph
            #expect(try node(graph, "fc/grad").persistentBytes == (1 + slots) * 2600)
        }
    }

    @Test func batchDefaultsAndErrors() throws {
        let one = try ONNXImporter().importModel(from: try tinyCNN(), name: "tiny")
        #expect(one.batch == 1 && one.graph.nodes[0].outputBytes == [3 * 8 * 8 * 4])
        let data = try B.model(inputs: [B.value("x", ["N", "C", 4])], nodes: [B.node("Relu", ["x"], ["y"])], outputs: [B.value("y", ["N", "C", 4])])
        #expect(throws: GraphError.self) { try ONNXImporter().importModel(from: data, name: "m") }
        do { _ = try ONNXImporter().importModel(from: data, name: "m") } catch {
            #expect(error.description.contains("dimension 1 is symbolic (\"C\")"))
        }
    }

    @Test func fixedBatchIsRewrittenWithReshapeTargets() throws {
        // An exporter's fixed batch of 1, with a Reshape to [1, 48] as the light models have.
        let data = try B.model(
            inputs: [B.value("x", [1, 3, 4, 4])],
            initializers: [B.int64s("shape", [1, 48])],
            nodes: [B.node("Reshape", ["x", "shape"], ["y"], name: "flatten")],
            outputs: [B.value("y", [1, 48])])
        let graph = try ONNXImporter(options: ONNXImportOptions(batch: 32)).importModel(from: data, name: "m").graph
        #expect(try node(graph, "flatten").outputBytes == [32 * 48 * 4])
    }

    @Test func unknownOpIsNamedOrEstimated() throws {
        let data = try B.model(
            inputs: [B.value("x", [2, 8])],
            nodes: [B.node("Relu", ["x"], ["r"], name: "relu"), B.node("Foo", ["r"], ["y"], name: "mystery")],
            outputs: [B.value("y", [2, 5])])
        do {
            _ = try ONNXImporter().importModel(from: data, name: "m")
            Issue.record("an unknown op was accepted")
        } catch {
            #expect(error.description == "ONNX node \"mystery\": op type \"Foo\" is not supported by shape inference (--unknown-ops=estimate gives it a fallback estimate)")
        }
        let result = try ONNXImporter(options: ONNXImportOptions(unknownOps: .estimate, costModel: unitCost)).importModel(from: data, name: "m")
        #expect(result.estimatedOps == ["Foo (mystery)"])
        let mystery = try node(result.graph, "mystery")
        #expect(mystery.outputBytes == [40])                                  // the declared [2, 5]
        #expect(abs(mystery.computeMicros - (1 + (64 + 40) / 1000.0)) < 1e-12) // bytes bound: 64 read, 40 written
        // Without a declared shape the first input's is taken.
        let undeclared = try B.model(inputs: [B.value("x", [2, 8])], nodes: [B.node("Bar", ["x"], ["y"], name: "b")], outputs: [])
        let estimated = try ONNXImporter(options: ONNXImportOptions(unknownOps: .estimate)).importModel(from: undeclared, name: "m")
        #expect(try node(estimated.graph, "b").outputBytes == [64])
    }

    @Test func dataDependentShapeIsNamedOrEstimated() throws {
        // The Reshape target comes from the model's input, not from a constant: nothing says how big y is.
        let data = try B.model(
            inputs: [B.value("x", [2, 8]), B.value("target", [2], type: 7)],
            nodes: [B.node("Reshape", ["x", "target"], ["y"], name: "r")],
            outputs: [B.value("y", [4, 4])])
        do {
            _ = try ONNXImporter().importModel(from: data, name: "m")
            Issue.record("a data-dependent shape was accepted")
        } catch {
            #expect(error.description == "ONNX node \"r\" (Reshape): input 1 (shape) is not a constant, and its output shape depends on it (--unknown-ops=estimate gives it a fallback estimate)")
        }
        let result = try ONNXImporter(options: ONNXImportOptions(unknownOps: .estimate)).importModel(from: data, name: "m")
        #expect(result.estimatedOps == ["Reshape (r)"])
        #expect(result.tensors["y"] == ONNXTensor(shape: [4, 4], elementType: 1, bytes: 64, estimated: true))
    }

    @Test func estimateKeepsADeclaredScalarAndType() throws {
        // Det of a matrix is a scalar; its declared output has a shape without dimensions.
        let data = try B.model(
            inputs: [B.value("x", [3, 3])],
            nodes: [B.node("Det", ["x"], ["d"], name: "det"), B.node("Foo", ["x"], ["n"], name: "foo")],
            outputs: [B.value("d", []), B.value("n", ["k"], type: 7)])
        let result = try ONNXImporter(options: ONNXImportOptions(unknownOps: .estimate)).importModel(from: data, name: "m")
        #expect(result.tensors["d"]?.shape == [])
        #expect(try node(result.graph, "det").outputBytes == [4])
        // An unknown dimension: the first input's shape, with the declared int64 type.
        #expect(result.tensors["n"] == ONNXTensor(shape: [3, 3], elementType: 7, bytes: 72, estimated: true))
    }

    @Test func nodesWithoutNameOrFirstOutputAreNamedByOpAndPosition() throws {
        // An RNN whose Y output is left out: its first output name is empty.
        let data = try B.model(
            inputs: [B.value("x", [5, 2, 3])],
            initializers: [B.floats("w", [1, 4, 3]), B.floats("r", [1, 4, 4])],
            nodes: [B.node("Relu", ["x"], ["a"]), B.node("RNN", ["a", "w", "r"], ["", "h"])],
            outputs: [B.value("h", [1, 2, 4])])
        let result = try ONNXImporter().importModel(from: data, name: "m")
        #expect(result.graph.nodes.map(\.name) == ["x", "a", "RNN_1"])
        #expect(result.tensors["h"]?.shape == [1, 2, 4])
    }

    @Test func constantsAreFoldedIntoParameters() throws {
        // The light models' pattern: weights from ConstantOfShape of a constant shape, read by a
        // node; a weight shared by two nodes colocates them.
        var value = B.floats("v", [1])
        value.name = ""
        var cos = B.node("ConstantOfShape", ["Wshape"], ["W"], name: "makeW")
        var attribute = Onnx_AttributeProto()
        attribute.name = "value"
        attribute.type = .tensor
        attribute.t = value
        cos.attribute = [attribute]
        let data = try B.model(
            inputs: [B.value("x", [2, 4])],
            initializers: [B.int64s("Wshape", [4, 4])],
            nodes: [cos, B.node("MatMul", ["x", "W"], ["h"], name: "mm1"), B.node("MatMul", ["h", "W"], ["y"], name: "mm2")],
            outputs: [B.value("y", [2, 4])])
        let result = try ONNXImporter().importModel(from: data, name: "m")
        #expect(result.graph.nodes.map(\.name) == ["x", "mm1", "mm2"])
        #expect(try node(result.graph, "mm1").persistentBytes == 64)
        #expect(try node(result.graph, "mm2").persistentBytes == 0)
        let (mm1, mm2) = (try node(result.graph, "mm1"), try node(result.graph, "mm2"))
        #expect(mm1.colocation == "mm1" && mm2.colocation == "mm1")
        #expect(result.forwardFlops == 2 * (2 * 4 * 4 * 2))
    }

    @Test func malformedInputIsRejectedNotCrashed() throws {
        #expect(!ONNXImporter.looksLikeModel(Data("{\"nodes\": []}".utf8)))
        #expect(!ONNXImporter.looksLikeModel(Data("not json at all".utf8)))
        #expect(!ONNXImporter.looksLikeModel(Data()))
        let good = try tinyCNN()
        #expect(ONNXImporter.looksLikeModel(good))
        // Truncated and random bytes: errors, never a crash.
        var random = SplitMix64(seed: 7)
        for length in [1, 7, 100, good.count / 2, good.count - 1] {
            let cut = good.prefix(length)
            #expect(throws: GraphError.self) { try ONNXImporter().importModel(from: Data(cut), name: "cut") }
            let noise = Data((0..<length).map { _ in UInt8(random.below(256)) })
            _ = ONNXImporter.looksLikeModel(noise)
            #expect(throws: GraphError.self) { try ONNXImporter().importModel(from: noise, name: "noise") }
        }
        // Absurd and negative dimensions.
        let huge = try B.model(inputs: [B.value("x", [.value(1 << 40), .value(1 << 40)])], nodes: [B.node("Relu", ["x"], ["y"])], outputs: [])
        #expect(throws: GraphError.self) { try ONNXImporter().importModel(from: huge, name: "huge") }
        let negative = try B.model(inputs: [B.value("x", [2, 2])], initializers: [B.floats("w", [2, -2])],
                                   nodes: [B.node("MatMul", ["x", "w"], ["y"])], outputs: [])
        #expect(throws: GraphError.self) { try ONNXImporter().importModel(from: negative, name: "neg") }
        let blowUp = try B.model(inputs: [B.value("x", [.value(1 << 20), .value(1 << 20)])],
                                 initializers: [B.floats("w", [1 << 20, 1])],
                                 nodes: [B.node("MatMul", ["x", "w"], ["y"])], outputs: [])
        #expect(throws: GraphError.self) { try ONNXImporter().importModel(from: blowUp, name: "big") }
        let cyclic = try B.model(inputs: [B.value("x", [2])], nodes: [B.node("Add", ["x", "b"], ["a"], name: "first"),
                                                                    B.node("Relu", ["a"], ["b"], name: "second")], outputs: [])
        do { _ = try ONNXImporter().importModel(from: cyclic, name: "c"); Issue.record("a cycle was accepted") } catch {
            #expect(error.description.hasPrefix("the ONNX graph has a cycle: node \"first\""))
        }
        let dangling = try B.model(inputs: [B.value("x", [2])], nodes: [B.node("Add", ["x", "nowhere"], ["y"], name: "add")], outputs: [])
        do { _ = try ONNXImporter().importModel(from: dangling, name: "d") } catch {
            #expect(error.description.contains("\"nowhere\""))
        }
    }

    /// Damaged copies of a valid model (a few bytes changed): each either imports or is rejected
    /// with an error; a trap would end the test run.
    @Test func mutatedModelsNeverTrap() throws {
        let good = try tinyCNN()
        var random = SplitMix64(seed: 2024)
        var rejected = 0
        for _ in 0..<400 {
            var bytes = [UInt8](good)
            for _ in 0..<random.between(1, 4) {
                let at = random.below(bytes.count)
                bytes[at] = random.below(3) == 0 ? 0xFF : UInt8(random.below(256))
            }
            for training in [false, true] {
                do {
                    _ = try ONNXImporter(options: ONNXImportOptions(batch: 2, training: training, unknownOps: .estimate))
                        .importModel(from: Data(bytes), name: "mutated")
                } catch {
                    rejected += 1
                    #expect(!error.description.isEmpty && !error.description.contains("\n"))
                }
            }
        }
        #expect(rejected > 0)
    }

    @Test func contentDetectionAmongImporters() throws {
        let importers = GraphImporters.all + [ONNXImporter()]
        #expect(try GraphImporters.importer(for: try tinyCNN(), among: importers).formatName == "onnx")
        do { _ = try GraphImporters.importer(for: Data([0xFF, 0x00, 0x13]), among: importers) } catch {
            #expect(error.description == "not JSON: the file does not start with { or [, and it is not an ONNX model (protobuf ModelProto)")
        }
    }
}

@Suite struct ShapeInferenceTests {
    private func shape(_ op: InferredOp, _ i: Int = 0) -> [Int] { op.outputs[i].shape }

    @Test func convolutions() throws {
        // Group 2, stride 2, dilation 2: window extent 5, (11 - 5) / 2 + 1 = 4.
        let conv = try B.infer("Conv", [[1, 4, 11, 11], [6, 2, 3, 3]], [B.attribute("group", int: 2),
                               B.attribute("strides", ints: [2, 2]), B.attribute("dilations", ints: [2, 2])])
        #expect(shape(conv) == [1, 6, 4, 4])
        #expect(conv.flops == 96 * 2 * 2 * 9)
        let same = try B.infer("Conv", [[1, 1, 7, 7], [1, 1, 3, 3]], [B.attribute("auto_pad", string: "SAME_UPPER"), B.attribute("strides", ints: [2, 2])])
        #expect(shape(same) == [1, 1, 4, 4])
        #expect(throws: InferenceFailure.self) { try B.infer("Conv", [[1, 3, 8, 8], [4, 2, 3, 3]]) }
    }

    @Test func pooling() throws {
        let k3s2: [Onnx_AttributeProto] = [B.attribute("kernel_shape", ints: [3, 3]), B.attribute("strides", ints: [2, 2])]
        #expect(shape(try B.infer("MaxPool", [[1, 1, 6, 6]], k3s2)) == [1, 1, 2, 2])
        #expect(shape(try B.infer("AveragePool", [[1, 1, 6, 6]], k3s2 + [B.attribute("ceil_mode", int: 1)])) == [1, 1, 3, 3])
        // Padded, ceil: (4 + 2 - 2) / 2 + 1 = 3 windows, starting at -1, 1 and 3.
        let padded = [B.attribute("kernel_shape", ints: [2]), B.attribute("strides", ints: [2]), B.attribute("pads", ints: [1, 1]),
                      B.attribute("ceil_mode", int: 1)]
        #expect(shape(try B.infer("MaxPool", [[1, 1, 4]], padded)) == [1, 1, 3])
        // ceil((3 + 1 - 1) / 2) + 1 = 3, but the third window would start at 4, inside the end
        // padding: dropped, 2 windows, as PyTorch and the onnx package's reference evaluator
        // compute (its shape inference says 3).
        let late = [B.attribute("kernel_shape", ints: [1]), B.attribute("strides", ints: [2]), B.attribute("pads", ints: [0, 1]),
                    B.attribute("ceil_mode", int: 1)]
        #expect(shape(try B.infer("MaxPool", [[1, 1, 3]], late)) == [1, 1, 2])
        let pool = try B.infer("MaxPool", [[2, 3, 8, 8]], [B.attribute("kernel_shape", ints: [2, 2]), B.attribute("strides", ints: [2, 2])])
        #expect(pool.flops == 4 * 2 * 3 * 16)
        let global = try B.infer("GlobalAveragePool", [[2, 8, 7, 7]])
        #expect(shape(global) == [2, 8, 1, 1])
        #expect(global.flops == 2 * 8 * 49)
    }

    @Test func matrixProducts() throws {
        let batched = try B.infer("MatMul", [[2, 1, 3, 4], [5, 4, 6]])
        #expect(shape(batched) == [2, 5, 3, 6] && batched.flops == 2 * 4 * 10 * 3 * 6)
        #expect(shape(try B.infer("MatMul", [[4], [4, 6]])) == [6])
        let gemm = try B.infer("Gemm", [[4, 3], [4, 5]], [B.attribute("transA", int: 1)])
        #expect(shape(gemm) == [3, 5] && gemm.flops == 2 * 4 * 15 && gemm.backwardFactor == 2)
        #expect(throws: InferenceFailure.self) { try B.infer("Gemm", [[4, 3], [4, 5]]) }
    }

    @Test func normalisationAndActivations() throws {
        let bn = try B.infer("BatchNormalization", [[2, 3, 4, 4], [3], [3], [3], [3]])
        #expect(shape(bn) == [2, 3, 4, 4] && bn.flops == 2 * 96)
        let lrn = try B.infer("LRN", [[1, 2, 3, 3]], [B.attribute("size", int: 5)])
        #expect(lrn.flops == 13 * 18)
        let relu = try B.infer("Relu", [[3, 5]])
        #expect(shape(relu) == [3, 5] && relu.flops == 15 && relu.bytes == 120 && relu.savedOutputs == [0])
        let softmax = try B.infer("Softmax", [[2, 10]])
        #expect(softmax.flops == 100)
        let dropout = try B.infer("Dropout", [[2, 3]], outputs: 2)
        #expect(dropout.outputs.count == 2 && dropout.outputs[1].elementType == ElementType.bool)
    }

    @Test func broadcastingElementwise() throws {
        #expect(shape(try B.infer("Add", [[2, 3, 4], [4]])) == [2, 3, 4])
        #expect(shape(try B.infer("Mul", [[2, 1, 4], [3, 1]])) == [2, 3, 4])
        #expect(throws: InferenceFailure.self) { try B.infer("Add", [[2, 3], [4]]) }
        let sum = try B.infer("Sum", [[2, 2], [2, 2], [2, 2]])
        #expect(sum.flops == 2 * 4)
    }

    @Test func dataMovement() throws {
        #expect(shape(try B.infer("Concat", [[2, 3, 4], [2, 5, 4]], [B.attribute("axis", int: 1)])) == [2, 8, 4])
        #expect(throws: InferenceFailure.self) { try B.infer("Concat", [[2, 3, 4], [2, 5, 4]], [B.attribute("axis", int: -1)]) }
        let split = try B.infer("Split", [[6, 4]], outputs: 2, [B.attribute("split", ints: [2, 4])])
        #expect(split.outputs.map(\.shape) == [[2, 4], [4, 4]])
        #expect(try B.infer("Split", [[6, 4]], outputs: 3).outputs.map(\.shape) == [[2, 4], [2, 4], [2, 4]])
        #expect(shape(try B.infer("Transpose", [[1, 2, 3, 4]], [B.attribute("perm", ints: [0, 2, 1, 3])])) == [1, 3, 2, 4])
        #expect(shape(try B.infer("Transpose", [[1, 2, 3]])) == [3, 2, 1])
        #expect(shape(try B.infer("Flatten", [[2, 3, 4, 5]], [B.attribute("axis", int: 2)])) == [6, 20])
        #expect(shape(try B.infer("Squeeze", [[2, 1, 3]], [B.attribute("axes", ints: [1])])) == [2, 3])
        #expect(shape(try B.infer("Unsqueeze", [[3, 4], [2]], constants: [1: [0, 3]])) == [1, 3, 4, 1])
        #expect(shape(try B.infer("Pad", [[1, 1, 4, 4], [8]], constants: [1: [0, 0, 1, 1, 0, 0, 2, 2]])) == [1, 1, 7, 7])
        #expect(try B.infer("Reshape", [[2, 3, 4]], [B.attribute("shape", ints: [0, -1])]).bytes == 0)
    }

    @Test func absurdAttributesAreErrorsNotTraps() throws {
        let huge = Int64.max
        #expect(throws: InferenceFailure.self) { try B.infer("Conv", [[1, 2, 8, 8], [2, 1, 3, 3]], [B.attribute("group", int: huge)]) }
        #expect(throws: InferenceFailure.self) { try B.infer("Conv", [[1, 2, 8, 8], [2, 2, 3, 3]], [B.attribute("kernel_shape", ints: [huge, huge])]) }
        #expect(throws: InferenceFailure.self) {
            try B.infer("MaxPool", [[1, 1, 8, 8]], [B.attribute("kernel_shape", ints: [2, 2]), B.attribute("strides", ints: [huge, 1])])
        }
        #expect(throws: InferenceFailure.self) {
            try B.infer("MaxPool", [[1, 1, 8, 8]], [B.attribute("kernel_shape", ints: [2, 2]), B.attribute("pads", ints: [huge, huge, 0, 0])])
        }
        #expect(throws: InferenceFailure.self) { try B.infer("LRN", [[1, 2, 3, 3]], [B.attribute("size", int: huge)]) }
        #expect(throws: InferenceFailure.self) { try B.infer("Split", [[6, 4]], [B.attribute("num_outputs", int: huge)]) }
        #expect(throws: InferenceFailure.self) { try B.infer("Split", [[6, 4]], outputs: 2, [B.attribute("split", ints: [huge, 6 &- huge])]) }
        #expect(throws: InferenceFailure.self) { try B.infer("Pad", [[1, 4]], [B.attribute("pads", ints: [huge, huge, 0, 0])]) }
        #expect(throws: InferenceFailure.self) { try B.infer("Reshape", [[2, 3]], [B.attribute("shape", ints: [huge, -1])]) }
        #expect(throws: InferenceFailure.self) { try B.infer("Softmax", [[2, 3]], [B.attribute("axis", int: Int64.min)]) }
        #expect(throws: InferenceFailure.self) { try B.infer("Slice", [[8]], constants: [:], [B.attribute("starts", ints: [0]), B.attribute("ends", ints: [8]),
                                                                                          B.attribute("axes", ints: [0]), B.attribute("steps", ints: [huge])]) }
    }

    @Test func reshapeTargets() throws {
        #expect(try ShapeInference.reshape([2, 3, 4], [0, -1], allowZero: false, rewrite: nil) == [2, 12])
        #expect(try ShapeInference.reshape([2, 3, 4], [4, -1, 3], allowZero: false, rewrite: nil) == [4, 2, 3])
        #expect(throws: InferenceFailure.self) { try ShapeInference.reshape([2, 3, 4], [5, -1], allowZero: false, rewrite: nil) }
        #expect(throws: InferenceFailure.self) { try ShapeInference.reshape([2, 3, 4], [-1, -1], allowZero: false, rewrite: nil) }
        let rewrite = BatchRewrite(original: 1, batch: 32)
        #expect(try ShapeInference.reshape([32, 256, 6, 6], [1, 9216], allowZero: false, rewrite: rewrite) == [32, 9216])
        #expect(try ShapeInference.reshape([1000, 1024], [1000, 1024], allowZero: false, rewrite: rewrite) == [1000, 1024])
    }
}
