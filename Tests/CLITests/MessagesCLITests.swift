import Foundation
import TestSupport
import Testing

private let fashionDirectory = "/usr/share/datasets/fashion-mnist"
private let fig1Path = packageRoot.appendingPathComponent("Tests/Fixtures/fig1.json").path
private let tinyCNNPath = packageRoot.appendingPathComponent("Tests/Fixtures/tiny-cnn.onnx").path

/// Foundation's own words, which name neither the file nor what it should hold.
private let foundationTexts = ["The file", "NSCocoaErrorDomain", "The data is missing", "couldn’t be", "couldn't be", "The operation"]

/// What users meet on the command line: file errors, statuses, datasets, help, --version.
@Suite struct MessagesCLITests {
    @Test func fileErrorsNameThePathAndWhatWasExpected() throws {
        let folder = try makeTemporaryFolder("messages")
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = folder.appendingPathComponent("nope.json").path
        var result = try fedbaechi(["place", missing, "--devices", "2", "--memory", "1GiB"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot read \(missing): no such file (expected a graph"), "stderr: \(result.stderr)")
        result = try fedbaechi(["place", folder.path, "--devices", "2", "--memory", "1GiB"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot read \(folder.path): it is a directory, not a file"), "stderr: \(result.stderr)")
        result = try fedbaechi(["place", tinyCNNPath, "--devices", "2", "--memory", "1GiB", "--cost-model", folder.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot read \(folder.path): it is a directory") && result.stderr.contains("\"cost_model\""),
                "stderr: \(result.stderr)")
        let unwritable = folder.appendingPathComponent("no/such/folder/plan.json").path
        result = try fedbaechi(["place", fig1Path, "--devices", "2", "--memory", "1GiB", "--output", unwritable])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot write \(unwritable): the folder"), "stderr: \(result.stderr)")
        result = try fedbaechi(["profile", "--model", "mlp", "--batch", "2", "--repeats", "1", "--output", unwritable])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot write \(unwritable): the folder \((unwritable as NSString).deletingLastPathComponent) does not exist"),
                "stderr: \(result.stderr)")
        let report = try fedbaechi(["report", missing])
        #expect(report.status == 2 && report.stderr.contains("cannot read \(missing): no such file (expected the JSON lines"),
                "stderr: \(report.stderr)")
        for text in foundationTexts {
            #expect(!(result.stderr + report.stderr).contains(text))
        }
    }

    /// Random bytes in a file named .onnx are a damaged ONNX model, not "not JSON".
    @Test func randomBytesInAnONNXFileAreCalledADamagedModel() throws {
        let folder = try makeTemporaryFolder("messages")
        defer { try? FileManager.default.removeItem(at: folder) }
        var generator = SystemRandomNumberGenerator()
        let path = folder.appendingPathComponent("model.onnx").path
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
        let result = try fedbaechi(["place", path, "--devices", "2", "--memory", "1GiB"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("not a valid ONNX model"), "stderr: \(result.stderr)")
        #expect(!result.stderr.contains("JSON"), "stderr: \(result.stderr)")
    }

    /// `"op_overhead_us": 0` and other integers are numbers; `true` is not.
    @Test func costModelsTakeIntegers() throws {
        let folder = try makeTemporaryFolder("messages")
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("device.json").path
        try Data(#"{"cost_model": {"op_overhead_us": 0, "flops_per_second": 1000000000000, "memory_bytes_per_second": 100000000000}}"#.utf8)
            .write(to: URL(fileURLWithPath: model))
        var result = try fedbaechi(["place", tinyCNNPath, "--devices", "2", "--memory", "1GiB", "--batch", "8", "--cost-model", model])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        try Data(#"{"cost_model": {"op_overhead_us": true}}"#.utf8).write(to: URL(fileURLWithPath: model))
        result = try fedbaechi(["place", tinyCNNPath, "--devices", "2", "--memory", "1GiB", "--cost-model", model])
        #expect(result.status == 2 && result.stderr.contains("cost_model.op_overhead_us must be a number"), "stderr: \(result.stderr)")
    }

    @Test func versionIsPrinted() throws {
        let result = try fedbaechi(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.firstMatch(of: /^fedbaechi \d+\.\d+\.\d+ \(checkpoint format \d+\)\n$/) != nil, "stdout: \(result.stdout)")
    }

    /// Examples in the help texts are written to fit: no example is broken mid-line by the wrapping.
    @Test(arguments: ["train", "place", "profile", "calibrate", "doctor", "report", "design"])
    func helpExamplesAreNotBrokenMidLine(_ command: String) throws {
        let result = try fedbaechi([command, "--help"], environment: ["COLUMNS": "80"])
        #expect(result.status == 0)
        let help = result.stdout.components(separatedBy: "USAGE:")[0].components(separatedBy: "\n")
        for (index, line) in help.enumerated() where line.hasPrefix("  fedbaechi ") || line.hasPrefix("  mpirun ") {
            #expect(line.count <= 80, "too long: \(line)")
            if line.hasSuffix("\\"), index + 1 < help.count {
                #expect(help[index + 1].hasPrefix("      "), "continuation not indented after: \(line)")
            } else if index + 1 < help.count {
                let next = help[index + 1]
                #expect(next.isEmpty || next.hasPrefix("  "), "example broken mid-line: \(line) / \(next)")
            }
        }
    }

    /// A folder given with --data-directory that lacks the data: the advice is about that folder.
    @Test func aDataDirectoryWithoutTheDataIsAdvisedAbout() throws {
        let folder = try makeTemporaryFolder("messages")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try fedbaechi(["train", "single", "--model", "mlp", "--data-directory", folder.path])
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("dataset fashion-mnist is not in the folder given (\(folder.path)/train-images-idx3-ubyte[.gz] is missing)"),
                "stderr: \(result.stderr)")
        #expect(result.stderr.contains("leave out --data-directory"))
        let doctor = try fedbaechi(["doctor", "--data-directory", folder.path, "--json"])
        #expect(doctor.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(doctor.stdout.utf8)) as? [String: Any]
        let datasets = report?["datasets"] as? [[String: Any]] ?? []
        let fashion = datasets.first { $0["name"] as? String == "fashion-mnist" }
        #expect(fashion?["directory"] as? String == folder.path && fashion?["installed"] as? Bool == false)
        #expect((report?["advice"] as? [String] ?? []).contains { $0.contains("\(folder.path) holds no dataset fedbaechi reads") })
        let missingPackages = report?["missingPackages"] as? [String] ?? []
        #expect(!missingPackages.contains("dataset-fashion-mnist"))
    }

    /// Uncompressed IDX files (as some mirrors unpack them) are read like the gzip'd ones.
    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func uncompressedIDXFilesAreRead() throws {
        let folder = try makeTemporaryFolder("messages")
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            let unzip = try run("/bin/sh", ["-c", "gzip -dc \(fashionDirectory)/\(name).gz > \(folder.path)/\(name)"])
            #expect(unzip.status == 0)
        }
        let doctor = try fedbaechi(["doctor", "--data-directory", folder.path])
        #expect(doctor.stdout.contains("fashion-mnist   yes        \(folder.path)"), "stdout: \(doctor.stdout)")
        let arguments = ["train", "single", "--model", "mlp", "--limit-train", "16", "--limit-test", "8", "--batch-size", "8"]
        let plain = try fedbaechi(arguments + ["--data-directory", folder.path])
        let gzipped = try fedbaechi(arguments)
        #expect(plain.status == 0, "stderr: \(plain.stderr)")
        // The same data, so the same numbers (timings aside).
        func losses(_ text: String) -> [Substring] { text.matches(of: /loss \d+\.\d+/).map(\.output) }
        #expect(!losses(plain.stdout).isEmpty && losses(plain.stdout) == losses(gzipped.stdout))
    }

    /// profile prints memory in MiB, as place and train do.
    @Test func profilePrintsMiB() throws {
        let result = try fedbaechi(["profile", "--model", "mlp", "--batch", "2", "--repeats", "1", "--output", "/dev/null"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("persistent (MiB)") && !result.stdout.contains("(MB)"), "stdout: \(result.stdout)")
        // The variables hold the parameters: 1863690 Float32 values of mlp.
        let variable = try #require(result.stdout.firstMatch(of: /variable\s+\d+\s+[\d.]+\s+([\d.]+)/))
        #expect(abs(Double(variable.1)! - 1_863_690 * 4 / 1_048_576) < 0.01, "stdout: \(result.stdout)")
    }
}
