import Foundation
import TestSupport
import Testing

private let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures")

/// `light_resnet50.onnx` of `pip install onnx`, or nil.
private let lightResNet: URL? = {
    guard let result = try? run("/usr/bin/env",
                                ["python3", "-c", "import onnx, os; print(os.path.dirname(onnx.__file__))"]),
          result.status == 0 else { return nil }
    let url = URL(fileURLWithPath: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        .appendingPathComponent("backend/test/data/light/light_resnet50.onnx")
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
}()

@Suite struct ONNXPlaceCLITests {
    @Test func placesAnONNXModelForInferenceAndTraining() throws {
        let model = fixtures.appendingPathComponent("tiny-cnn.onnx").path
        let inference = try fedbaechi(["place", model, "--devices", "2", "--memory", "1GiB", "--batch", "8"])
        #expect(inference.status == 0, "stderr: \(inference.stderr)")
        #expect(inference.stdout.contains("tiny-cnn (onnx, batch 8, inference, 6 forward ops): 7 ops"))
        let folder = try makeTemporaryFolder("onnx")
        let plan = folder.appendingPathComponent("plan.json").path
        let training = try fedbaechi(["place", model, "--devices", "2", "--memory", "1GiB", "--batch", "8", "--training",
                                      "--optimizer", "adam", "--output", plan])
        #expect(training.status == 0, "stderr: \(training.stderr)")
        #expect(training.stdout.contains("training with adam") && training.stdout.contains("14 ops"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as? [String: Any])
        let placement = try #require(json["placement"] as? [String: Int])
        #expect(placement.count == 14)
        for op in ["conv", "relu", "pool", "flat", "fc", "prob"] { #expect(placement[op] == placement[op + "/grad"], "\(op) and its gradient") }
    }

    @Test func detectsByContentNotName() throws {
        let folder = try makeTemporaryFolder("onnx")
        let renamed = folder.appendingPathComponent("model.bin")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("tiny-cnn.onnx"), to: renamed)
        let result = try fedbaechi(["place", renamed.path, "--devices", "1", "--memory", "1GiB"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("(onnx,"))
        let garbage = folder.appendingPathComponent("broken.onnx")
        try Data([0x08, 0x07, 0x3A, 0xFF, 0xFF, 0x13, 0x00, 0x99]).write(to: garbage)
        let rejected = try fedbaechi(["place", garbage.path, "--devices", "1", "--memory", "1GiB"])
        #expect(rejected.status == 2)
        // Named .onnx: read as ONNX, and called a damaged model.
        #expect(rejected.stderr.contains("not a valid ONNX model"), "stderr: \(rejected.stderr)")
        #expect(rejected.stderr.split(separator: "\n").count == 1)
    }

    @Test func unknownOpsAreNamedOrEstimated() throws {
        let model = fixtures.appendingPathComponent("unknown-op.onnx").path
        let rejected = try fedbaechi(["place", model, "--devices", "2", "--memory", "1GiB"])
        #expect(rejected.status == 2)
        #expect(rejected.stderr.contains("ONNX node \"mystery\": op type \"Foo\" is not supported"), "stderr: \(rejected.stderr)")
        let estimated = try fedbaechi(["place", model, "--devices", "2", "--memory", "1GiB", "--unknown-ops=estimate"])
        #expect(estimated.status == 0, "stderr: \(estimated.stderr)")
        #expect(estimated.stderr.contains("warning: 1 op(s) given the fallback estimate") && estimated.stderr.contains("Foo (mystery)"))
    }

    @Test func onnxOptionsAreCheckedAndOnlyForONNX() throws {
        let model = fixtures.appendingPathComponent("tiny-cnn.onnx").path
        for arguments in [["--optimizer", "rmsprop"], ["--unknown-ops", "guess"], ["--batch", "0"], ["--optimizer", "adam"]] {
            let result = try fedbaechi(["place", model, "--devices", "1", "--memory", "1GiB"] + arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
        }
        let json = try fedbaechi(["place", fixtures.appendingPathComponent("fig1.json").path, "--devices", "2", "--memory", "1GiB", "--training"])
        #expect(json.status == 2 && json.stderr.contains("apply to ONNX models"))
    }

    @Test func calibrateWritesADeviceFilePlaceReads() throws {
        let folder = try makeTemporaryFolder("onnx")
        let device = folder.appendingPathComponent("device.json").path
        let calibrate = try fedbaechi(["calibrate", "--output", device, "--repeats", "3", "--size", "128", "--bandwidth-bytes", "4MiB"])
        #expect(calibrate.status == 0, "stderr: \(calibrate.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: device))) as? [String: Any])
        let cost = try #require(json["cost_model"] as? [String: Double])
        #expect((cost["flops_per_second"] ?? 0) > 1e6 && (cost["memory_bytes_per_second"] ?? 0) > 1e6 && (cost["op_overhead_us"] ?? -1) >= 0)
        let model = fixtures.appendingPathComponent("tiny-cnn.onnx").path
        let placed = try fedbaechi(["place", model, "--devices", "2", "--memory", "1GiB", "--cost-model", device, "--output", "-"])
        #expect(placed.status == 0, "stderr: \(placed.stderr)")
        // Slower rates give a longer step: the file is really read.
        let slow = folder.appendingPathComponent("slow.json").path
        try Data(#"{"cost_model": {"flops_per_second": 1e6, "memory_bytes_per_second": 1e6, "op_overhead_us": 100}}"#.utf8)
            .write(to: URL(fileURLWithPath: slow))
        let slowPlan = try fedbaechi(["place", model, "--devices", "1", "--memory", "1GiB", "--cost-model", slow, "--output", "-"])
        let fastPlan = try fedbaechi(["place", model, "--devices", "1", "--memory", "1GiB", "--output", "-"])
        func makespan(_ text: String) throws -> Double {
            let plan = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            return try #require(plan["makespan_us"] as? Double)
        }
        let (slowStep, fastStep) = (try makespan(slowPlan.stdout), try makespan(fastPlan.stdout))
        #expect(slowStep > 100 * fastStep)
        // A devices file may carry the cost model too.
        let devices = folder.appendingPathComponent("devices.json").path
        try Data(#"{"devices": [{"memory": "1GiB"}], "cost_model": {"flops_per_second": 1e6}}"#.utf8).write(to: URL(fileURLWithPath: devices))
        let viaDevices = try fedbaechi(["place", model, "--devices-file", devices, "--output", "-"])
        #expect(viaDevices.status == 0, "stderr: \(viaDevices.stderr)")
        #expect(try makespan(viaDevices.stdout) > 10 * fastStep)
        let bad = folder.appendingPathComponent("bad.json").path
        try Data(#"{"cost_model": {"flops_per_second": -1}}"#.utf8).write(to: URL(fileURLWithPath: bad))
        let rejected = try fedbaechi(["place", model, "--devices", "1", "--memory", "1GiB", "--cost-model", bad])
        #expect(rejected.status == 2 && rejected.stderr.contains("flops_per_second must be a positive number"))
    }

    @Test func tooLittleMemoryNamesTheSmallestThatFits() throws {
        guard let lightResNet else {
            print("skipped: the onnx Python package is not installed (pip install onnx)")
            return
        }
        let result = try fedbaechi(["place", lightResNet.path, "--devices", "4", "--memory", "64MiB", "--batch", "32",
                                    "--training", "--algorithm", "m-etf"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("smallest found by search"), "stderr: \(result.stderr)")
    }
}
