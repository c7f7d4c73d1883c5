import Foundation
import TestSupport
import Testing

@Suite struct TrainCLITests {
    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func quickRunWritesMetricsPerEpoch() throws {
        let folder = try makeTemporaryFolder("cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let metrics = folder.appendingPathComponent("out.jsonl").path
        let result = try fedbaechi(["train", "single", "--model", "mlp", "--dataset", "fashion-mnist",
                                    "--epochs", "2", "--seed", "1", "--limit-train", "512", "--limit-test", "200",
                                    "--metrics", metrics], environment: ["OPENBLAS_NUM_THREADS": "1"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("epoch 1 step"))  // plain progress lines when not on a terminal
        #expect(result.stdout.contains("epoch 2/2"))
        let lines = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        for (index, line) in lines.enumerated() {
            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(record?["epoch"] as? Int == index + 1)
            #expect(record?["model"] as? String == "mlp")
            #expect(record?["train_examples"] as? Int == 512)
            let accuracy = try #require(record?["test_accuracy"] as? Double)
            #expect(accuracy > 0.3 && accuracy <= 1)  // far above chance (0.1) after 8 steps
        }
    }

    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func sameSeedSameResult() throws {
        let arguments = ["train", "--model", "lenet", "--epochs", "1", "--seed", "3", "--limit-train", "128",
                         "--limit-test", "64", "--batch-size", "32", "--optimizer", "sgd", "--learning-rate", "0.05"]
        let first = try fedbaechi(arguments)
        let second = try fedbaechi(arguments)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let summary = { (output: String) in output.split(separator: "\n").filter { $0.hasPrefix("epoch 1/1") }.map { $0.split(separator: "(")[0] } }
        #expect(!summary(first.stdout).isEmpty)
        #expect(summary(first.stdout) == summary(second.stdout))
    }

    @Test(.enabled(if: fortunesInstalled, "fortunes is not installed"))
    func languageModelReportsPerplexity() throws {
        let result = try fedbaechi(["train", "--model", "gru-lm", "--epochs", "1", "--limit-train", "64",
                                    "--limit-test", "32", "--batch-size", "16"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("test perplexity"))
        #expect(result.stdout.contains("vocabulary 10000"))
    }

    /// A folder given with --data-directory is the user's: the message is about it (status 2), and the
    /// Debian package is named as the other way.
    @Test func missingDatasetNamesTheDebianPackage() throws {
        let result = try fedbaechi(["train", "--model", "lenet", "--data-directory", "/nonexistent/fashion"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("not in the folder given (/nonexistent/fashion is missing)"))
        #expect(result.stderr.contains("apt-get install dataset-fashion-mnist"))
        let text = try fedbaechi(["train", "--model", "gru-lm", "--data-directory", "/nonexistent/fortunes"])
        #expect(text.status == 2)
        #expect(text.stderr.contains("apt-get install fortunes"))
    }

    @Test func damagedDatasetIsAOneLineError() throws {
        let folder = try makeTemporaryFolder("cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try Data([0x08, 0x03, 0x00, 0x00, 0x00, 0x01]).write(to: folder.appendingPathComponent(name))
        }
        let result = try fedbaechi(["train", "--model", "mlp", "--data-directory", folder.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("damaged") && result.stderr.contains("bad magic"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func rejectedOptions() throws {
        let wrongData = try fedbaechi(["train", "--model", "gru-lm", "--dataset", "fashion-mnist"])
        #expect(wrongData.status == 64)
        #expect(wrongData.stderr.contains("trains on fortunes"))
        #expect(try fedbaechi(["train", "--model", "mlp", "--epochs", "0"]).status == 64)
        #expect(try fedbaechi(["train", "--model", "mlp", "--learning-rate", "-1"]).status == 64)
        #expect(try fedbaechi(["train", "--model", "resnet"]).status == 64)
        #expect(try fedbaechi(["train", "--model", "mlp", "--mode", "sideways"]).status == 64)
    }
}
