import Foundation
import Testing
import TestSupport

/// `train --model model.onnx` from the command line, in every mode, with the user's .npz data and the
/// trained model written back (`--export`).
@Suite(.serialized) struct ONNXTrainCLITests {
    /// The residual CNN of the fixtures, its data, and a folder for outputs.
    func setUp() throws -> (cases: URL, out: URL)? {
        guard let cases = onnxCases else { return nil }
        return (cases, try makeTemporaryFolder("onnx-train"))
    }

    func arguments(_ cases: URL, _ extra: [String]) -> [String] {
        ["--model", cases.appendingPathComponent("cnn.onnx").path,
         "--train-data", cases.appendingPathComponent("images-train.npz").path,
         "--test-data", cases.appendingPathComponent("images-test.npz").path, "--batch", "16", "--seed", "3"] + extra
    }

    /// Model-parallel training on 2 ranks writes the same bytes as training in one process.
    @Test(.enabled(if: mpirunPath != nil, "needs mpirun"))
    func modelParallelExportEqualsSingleProcess() throws {
        guard let (cases, out) = try setUp() else { return }
        defer { try? FileManager.default.removeItem(at: out) }
        let single = out.appendingPathComponent("single.onnx").path
        let parallel = out.appendingPathComponent("parallel.onnx").path
        let one = try fedbaechi(["train", "single"] + arguments(cases, ["--steps", "12", "--export", single]))
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("trained model written to \(single)"))
        let job = try run(mpirunPath!, ["--oversubscribe", "-np", "2", "-x", "OPENBLAS_NUM_THREADS=1", try #require(fedbaechiBinary).path,
                                        "train", "model-parallel", "--device-memory", "1MiB"] + arguments(cases, ["--steps", "12", "--export", parallel]),
                          timeout: 240)
        #expect(job.status == 0, "\(job.stderr)")
        // Both ranks hold parameters under 1 MiB each, and rank 0 gathered them for the export.
        #expect(job.stdout.contains("placement: m-sct on 2 ranks"))
        let (a, b) = (FileManager.default.contents(atPath: single), FileManager.default.contents(atPath: parallel))
        #expect(a != nil && a == b, "the model-parallel export differs from the single-process one")
    }

    /// A model file whose weights (111 MiB) are more than one rank's memory (80 MiB) trains on 4 ranks,
    /// each rank's resident memory as the operating system reports it within its limit plus the fixed
    /// overhead: no rank reads the weights it does not hold, whether they are inside the .onnx file or in
    /// an external data file. Before the weights were left in the file, every rank's peak held all of them.
    @Test(.enabled(if: mpirunPath != nil && fedbaechiBinary != nil, "needs mpirun and the built binary"))
    func aModelFileLargerThanOneRankTrainsWithinEachRanksMemory() throws {
        guard onnxCases != nil else { return }
        let folder = try makeTemporaryFolder("onnx-wide")
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/onnx_training_cases.py")
        let made = try run("/usr/bin/env", ["python3", script.path, folder.path, "wide"], timeout: 300)
        try #require(made.status == 0, "\(made.stderr)")
        let limit = 80 << 20
        var epochs: [String] = []
        for file in ["wide.onnx", "wide-external.onnx"] {
            let model = folder.appendingPathComponent(file).path
            let weights = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(file == "wide.onnx" ? file : "wide-external.data").path)[.size] as? Int
            #expect((weights ?? 0) > limit, "\(file): the weights are not larger than one rank's memory")
            let metrics = folder.appendingPathComponent(file + ".jsonl").path
            let job = try run(mpirunPath!, ["--oversubscribe", "-np", "4", "-x", "OPENBLAS_NUM_THREADS=1", try #require(fedbaechiBinary).path,
                                            "train", "model-parallel", "--model", model,
                                            "--train-data", folder.appendingPathComponent("wide-train.npz").path,
                                            "--test-data", folder.appendingPathComponent("wide-test.npz").path,
                                            "--batch", "32", "--steps", "1", "--optimizer", "sgd", "--device-memory", "80MiB", "--metrics", metrics],
                              timeout: 600)
            try #require(job.status == 0, "\(file): \(job.stderr)")
            epochs += job.stdout.split(separator: "\n").filter { $0.hasPrefix("epoch 1/1:") }.map { String($0.prefix { $0 != "(" }) }
            let summary = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
                .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .first { $0["kind"] as? String == "summary" }
            let overhead = try #require(summary?["fixed_overhead_bytes"] as? Int)
            let ranks = try #require(summary?["per_rank"] as? [[String: Any]])
            try #require(ranks.count == 4)
            for rank in ranks {
                let peak = try #require(rank["peak_rss_bytes"] as? Int)
                let data = rank["data_bytes"] as? Int ?? 0
                #expect(peak > 0 && peak <= limit + overhead + data,
                        "\(file), rank \(rank["rank"] ?? "?"): peak resident \(peak) above the limit \(limit) + overhead \(overhead) + data \(data)")
            }
        }
        // The weights read from inside the file and from the external file are the same weights.
        #expect(epochs.count == 2 && epochs[0] == epochs[1], "\(epochs)")
    }

    /// A resumed run of a model file (batch normalization's running statistics in the checkpoint)
    /// ends with the same model, byte for byte, as one that never stopped.
    @Test func resumedRunExportsTheSameModel() throws {
        guard let (cases, out) = try setUp() else { return }
        defer { try? FileManager.default.removeItem(at: out) }
        let (straight, resumed) = (out.appendingPathComponent("straight.onnx").path, out.appendingPathComponent("resumed.onnx").path)
        let checkpoints = out.appendingPathComponent("checkpoints").path
        let whole = try fedbaechi(["train", "single"] + arguments(cases, ["--steps", "40", "--export", straight]))
        #expect(whole.status == 0, "\(whole.stderr)")
        let first = try fedbaechi(["train", "single"] + arguments(cases, ["--steps", "25", "--checkpoint-dir", checkpoints, "--checkpoint-every", "10"]))
        #expect(first.status == 0, "\(first.stderr)")
        let rest = try fedbaechi(["train", "single"] + arguments(cases, ["--steps", "40", "--checkpoint-dir", checkpoints, "--resume", "--export", resumed]))
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(rest.stdout.contains("resuming from step 25"), "\(rest.stdout)")
        let (a, b) = (FileManager.default.contents(atPath: straight), FileManager.default.contents(atPath: resumed))
        #expect(a != nil && a == b, "the resumed run's model differs from the uninterrupted one's")
    }

    /// Federated sites that each read their own file: site 0's export scores in onnxruntime what the
    /// job reported as the global model's accuracy.
    @Test(.enabled(if: mpirunPath != nil, "needs mpirun"))
    func federatedSitesWithTheirOwnFiles() throws {
        guard let (cases, out) = try setUp() else { return }
        defer { try? FileManager.default.removeItem(at: out) }
        let sites = out.appendingPathComponent("sites")
        let split = """
            import sys, os, numpy as np
            d = np.load(sys.argv[1]); os.makedirs(sys.argv[2], exist_ok=True)
            for s in range(3): np.savez(os.path.join(sys.argv[2], "site-%d.npz" % s), x=d["x"][s::3], y=d["y"][s::3])
            """
        #expect(try run("/usr/bin/env", ["python3", "-c", split, cases.appendingPathComponent("images-train.npz").path, sites.path]).status == 0)
        let exported = out.appendingPathComponent("federated.onnx").path
        let metrics = out.appendingPathComponent("metrics.jsonl").path
        let job = try run(mpirunPath!, ["--oversubscribe", "-np", "3", "-x", "OPENBLAS_NUM_THREADS=1", try #require(fedbaechiBinary).path,
                                        "train", "federated", "--model", cases.appendingPathComponent("cnn.onnx").path,
                                        "--site-data", sites.path, "--test-data", cases.appendingPathComponent("images-test.npz").path,
                                        "--aggregation", "fedavg", "--rounds", "2", "--batch", "16", "--export", exported, "--metrics", metrics,
                                        "--log-every", "4"],
                          timeout: 240)
        #expect(job.status == 0, "\(job.stderr)")
        #expect(job.stdout.contains("3 sites with their own data"))
        let lines = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
        let last = try JSONSerialization.jsonObject(with: Data(lines.last { $0.contains("\"round\"") }!.utf8)) as? [String: Any]
        let reported = try #require(last?["global_accuracy"] as? Double)
        // --log-every 4: site 0's local steps (200 examples, batch 16: 12 a round), with their round.
        let steps = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.filter { $0["kind"] as? String == "step" }
        #expect(steps.compactMap { $0["step"] as? Int } == [4, 8, 12, 16, 20, 24])
        #expect(steps.compactMap { $0["round"] as? Int } == [1, 1, 1, 2, 2, 2])
        let score = """
            import sys, numpy as np, onnxruntime as ort
            d = np.load(sys.argv[2]); x = d["x"].astype(np.float32) / 255
            p = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
            print(float((p.argmax(1) == d["y"]).mean()))
            """
        let result = try run("/usr/bin/env", ["python3", "-c", score, exported, cases.appendingPathComponent("images-test.npz").path])
        #expect(abs((Double(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1) - reported) < 1e-9,
                "onnxruntime scores the export \(result.stdout), the job reported \(reported)")
    }

    /// The training controls end to end: `--no-shuffle` takes batches in file order, `--optimizer sgd` is
    /// plain SGD, and `--log-every 1` records each step's loss: the first three equal NumPy's.
    @Test func stepLossesInFileOrderMatchNumPy() throws {
        guard let (cases, out) = try setUp() else { return }
        defer { try? FileManager.default.removeItem(at: out) }
        let metrics = out.appendingPathComponent("steps.jsonl").path
        let result = try fedbaechi(["train", "single", "--model", cases.appendingPathComponent("mlp.onnx").path,
                                    "--train-data", cases.appendingPathComponent("train.npz").path,
                                    "--test-data", cases.appendingPathComponent("test.npz").path,
                                    "--no-shuffle", "--optimizer", "sgd", "--learning-rate", "0.1", "--batch", "8", "--steps", "3",
                                    "--log-every", "1", "--metrics", metrics])
        #expect(result.status == 0, "\(result.stderr)")
        let steps = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "step" }
        #expect(steps.compactMap { $0["step"] as? Int } == [1, 2, 3])
        let script = "import numpy as np, sys; print(' '.join(repr(float(v)) for v in np.load(sys.argv[1])['losses']))"
        let reference = try run("/usr/bin/env", ["python3", "-c", script, cases.appendingPathComponent("mlp-reference.npz").path])
        let expected = reference.stdout.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let losses = steps.compactMap { $0["loss"] as? Double }
        #expect(expected.count == 3 && losses.count == 3)
        for (ours, truth) in zip(losses, expected) { #expect(abs(ours - truth) < 1e-5, "loss \(ours), NumPy \(truth)") }
    }

    /// Arrays that do not fit the model, and a model that cannot be trained: one line, exit 2.
    @Test func badFilesGetOneLineNamingWhatIsWrong() throws {
        guard let (cases, out) = try setUp() else { return }
        defer { try? FileManager.default.removeItem(at: out) }
        let wrong = out.appendingPathComponent("wrong.npz").path
        let make = "import numpy as np, sys; np.savez(sys.argv[1], x=np.zeros((5, 1, 7, 8), np.float32), y=np.zeros(5, np.int64))"
        #expect(try run("/usr/bin/env", ["python3", "-c", make, wrong]).status == 0)
        var args = arguments(cases, ["--steps", "1"])
        args[args.firstIndex(of: "--train-data")! + 1] = wrong
        let result = try fedbaechi(["train", "single"] + args)
        #expect(result.status == 2)
        let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!message.contains("\n"), "\(message)")
        #expect(message.contains("array x has shape [5, 1, 7, 8]") && message.contains("input \"input\""), "\(message)")

        let labels = out.appendingPathComponent("labels.npz").path
        let badLabels = "import numpy as np, sys; np.savez(sys.argv[1], x=np.zeros((5, 1, 8, 8), np.float32), y=np.full(5, 7, np.int64))"
        #expect(try run("/usr/bin/env", ["python3", "-c", badLabels, labels]).status == 0)
        args[args.firstIndex(of: "--train-data")! + 1] = labels
        let outside = try fedbaechi(["train", "single"] + args)
        #expect(outside.status == 2)
        #expect(outside.stderr.contains("label 7") && outside.stderr.contains("3 classes"), "\(outside.stderr)")

        let missing = try fedbaechi(["train", "single", "--model", cases.appendingPathComponent("cnn.onnx").path, "--steps", "1"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("--train-data"), "\(missing.stderr)")

        // A model path that is a FIFO, or nothing at all: one line, no hang.
        let fifo = out.appendingPathComponent("pipe.onnx").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for model in [fifo, out.appendingPathComponent("absent.onnx").path] {
            var args = arguments(cases, ["--steps", "1"])
            args[args.firstIndex(of: "--model")! + 1] = model
            let refused = try fedbaechi(["train", "single"] + args)
            #expect(refused.status == 2, "\(model): \(refused.stderr)")
            #expect(refused.stderr.contains("\(model): cannot be read: "), "\(refused.stderr)")
        }
    }
}
