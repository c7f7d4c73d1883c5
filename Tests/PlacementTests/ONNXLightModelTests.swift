import Foundation
import Testing
@testable import ONNXImport
@testable import Placement

/// The weightless "light" models the `onnx` package ships, imported and placed for inference and
/// training on 1 to 8 devices; every plan is checked from first principles (`checkSchedule`).
/// Skipped, with a message, when `pip install onnx` has not been run.
@Suite struct ONNXLightModelTests {
    static func load(_ name: String) throws -> Data? {
        guard let folder = lightModels else { return nil }
        return try Data(contentsOf: folder.appendingPathComponent("light_\(name).onnx"))
    }

    @Test(arguments: lightModelNames)
    func importsAndPlacesForInferenceAndTraining(model: String) throws {
        guard let data = try Self.load(model) else {
            print("skipped: the onnx Python package is not installed (pip install onnx) -- its light models are the test data")
            return
        }
        #expect(ONNXImporter.looksLikeModel(data))
        for training in [false, true] {
            let options = ONNXImportOptions(batch: 32, training: training, optimizer: .momentum)
            let result = try ONNXImporter(options: options).importModel(from: data, name: model)
            let graph = result.graph
            #expect(result.estimatedOps.isEmpty)
            // Inputs, forward ops, and for training a backward op per forward op and the loss.
            let inputs = graph.nodes.filter { $0.kind == "Input" }.count
            #expect(graph.nodes.count == inputs + result.forwardOps * (training ? 2 : 1) + (training ? 1 : 0), "\(model)")
            // The same file gives the same graph.
            let again = try ONNXImporter(options: options).importModel(from: data, name: model).graph
            #expect(again.nodes == graph.nodes && again.edges == graph.edges)

            let planner = Planner(graph: graph, link: .baechi, options: PreprocessingOptions(coPlacement: !training))
            let single = try planner.plan(.single, devices: devices(1)).get()
            let onePeak = single.simulation.peakMemoryBytes[0]
            for count in [1, 2, 4, 8] {
                // Ample memory, and a tight budget: half of one device's peak per device (or all of it on one device).
                let tight = max(planner.memoryLowerBound(), count == 1 ? onePeak : onePeak / 2)
                for memory in [ample, tight] {
                    for algorithm in Algorithm.concrete where algorithm != .single || count == 1 {
                        let label = "\(model) \(training ? "training" : "inference") \(algorithm.rawValue) \(count)x\(memory)"
                        switch planner.plan(algorithm, devices: devices(count, memory: memory)) {
                        case .success(let plan):
                            checkSchedule(plan, limits: Array(repeating: memory, count: count), colocation: true, label)
                        case .failure(let failure):
                            #expect(memory < ample, "\(label): fails with ample memory: \(failure)")
                            #expect(!failure.reason.isEmpty && !failure.reason.contains("\n"))
                        }
                    }
                }
            }
        }
    }

    /// Every op's output against the shapes the onnx package's own shape inference gives (batch 1,
    /// as the light models fix it): an independent implementation of the same specification.
    @Test func shapesMatchTheOnnxPackagesShapeInference() throws {
        guard let folder = lightModels else {
            print("skipped: the onnx Python package is not installed (pip install onnx)")
            return
        }
        let script = """
            import json, os, sys, onnx
            from onnx import shape_inference
            out = {}
            for name in sys.argv[2:]:
                model = shape_inference.infer_shapes(onnx.load(os.path.join(sys.argv[1], 'light_' + name + '.onnx')), data_prop=True)
                out[name] = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                             for v in list(model.graph.value_info) + list(model.graph.output)}
            print(json.dumps(out))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, folder.path] + lightModelNames
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let expected = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: [Int]]])
        for model in lightModelNames {
            let shapes = try #require(expected[model])
            let data = try #require(try Self.load(model))
            let graph = try ONNXImporter().importModel(from: data, name: model).graph
            var firstOutput = [String: String]()
            for node in try ONNXImporter.decode(data).graph.node { firstOutput[node.name] = node.output.first }
            var compared = 0
            for node in graph.nodes where node.kind != "Input" {
                guard let output = firstOutput[node.name], let dims = shapes[output] else { continue }
                #expect(node.outputBytes.first == dims.reduce(4, *), "\(model): \(node.name) (\(node.kind ?? "")) should be \(dims)")
                compared += 1
            }
            #expect(compared == graph.nodes.count - 1, "\(model): compared \(compared) of \(graph.nodes.count - 1) ops")
        }
    }

    /// Forward FLOPs against independent counts at batch 1 (multiply-adds x 2): ResNet-50 4.1 G
    /// multiply-adds and VGG-19 19.6 G as published; SqueezeNet 1.1 (the light model's first
    /// convolution is 3x3/2 with 64 filters) 0.352 G as published; AlexNet with its two groups at
    /// the light model's 224x224 input (not the 227 of the 0.72 G usually quoted), by hand:
    /// conv1 96*54*54*363 + conv2 256*26*26*1200 + conv3 384*12*12*2304 + conv4 384*12*12*1728
    /// + conv5 256*12*12*1728 + fc 9216*4096 + 4096*4096 + 4096*1000 = 0.6546 G. Our counts add the
    /// element-wise ops and biases, a few per cent.
    @Test func forwardFLOPsMatchPublishedCounts() throws {
        guard lightModels != nil else {
            print("skipped: the onnx Python package is not installed (pip install onnx)")
            return
        }
        let published: [(String, Double)] = [("resnet50", 4.1e9), ("vgg19", 19.6e9), ("bvlc_alexnet", 0.6546e9), ("squeezenet", 0.352e9)]
        for (model, multiplyAdds) in published {
            let data = try #require(try Self.load(model))
            let flops = try ONNXImporter().importModel(from: data, name: model).forwardFlops
            let ratio = flops / (2 * multiplyAdds)
            #expect(ratio > 0.97 && ratio < 1.06, "\(model): \(flops) FLOPs, \(ratio) x the published count")
        }
    }
}
