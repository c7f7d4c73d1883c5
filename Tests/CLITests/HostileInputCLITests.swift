import Foundation
import TestSupport
import Testing

private let fig1 = (try? String(contentsOf: packageRoot.appendingPathComponent("Tests/Fixtures/fig1.json"), encoding: .utf8)) ?? ""

/// A rejected file must come back as exactly one line on stderr and exit status 2, whatever is in it.
private func expectOneLineRejection(_ result: CommandResult, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 2, "status \(result.status), stderr: \(result.stderr)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
    #expect(lines.count == 1, "stderr: \(result.stderr.debugDescription)", sourceLocation: sourceLocation)
    #expect(result.stderr.hasPrefix("fedbaechi: error: "), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains(expected), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
}

@Suite struct HostileGraphCLITests {
    /// Damaged copies of the fig1 fixture and hostile profiles, each found by the fuzz tests or at the
    /// limits: before the fixes some of these trapped, allocated 48 GB or printed two lines.
    @Test(arguments: [
        (String(fig1.prefix(fig1.count / 2)), "not JSON: Unexpected end of file"),
        (fig1.replacingOccurrences(of: #""compute_us": 3"#, with: #""compute_us": 1e400"#), "not JSON: Number 1e400 is not representable"),
        (fig1.replacingOccurrences(of: #""output_bytes": [4]}"#, with: #""output_bytes": [1099511627777]}"#), "more than 1 TiB"),
        (fig1.replacingOccurrences(of: #""name": "1""#, with: #""name": "0""#), #"duplicate node name "0""#),
        (fig1.replacingOccurrences(of: #""name": "1""#, with: #""name": "0\n1\u0007""#).replacingOccurrences(of: #""name": "2""#, with: #""name": "0\n1\u0007""#),
         #"duplicate node name "0\n1\u{7}""#),
        (String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), "Too many nested"),
        (#"{"cost_units": {}, "nodes": [{"name": "x", "inputs": [], "cost": null}, {"name": "y", "inputs": ["x:9223372036854775807"], "cost": null}]}"#,
         "more than the 65536 outputs"),
        (#"{"cost_units": {}, "nodes": [{"name": "x", "inputs": [], "cost": null}, {"name": "y", "inputs": ["x:2000000000"], "cost": null}]}"#,
         "more than the 65536 outputs"),
        (#"{"cost_units": {}, "nodes": [{"name": "x", "inputs": [], "cost": null}, {"name": "y", "inputs": ["x:-1"], "cost": null}]}"#,
         "negative port"),
        ("\u{FEFF}\u{0}\u{1}garbage", "not JSON"),
        ("", "the file is empty"),
    ])
    func damagedGraphFile(_ content: String, _ expected: String) throws {
        let folder = try makeTemporaryFolder("hostile")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("damaged.json").path
        try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        let result = try fedbaechi(["place", path, "--devices", "2", "--memory", "1GiB"])
        expectOneLineRejection(result, expected)
    }

    /// Files that must not be read at all: more than the limit (sparse, so the test writes nothing),
    /// an endless device, a folder.
    @Test func filesThatAreNotRead() throws {
        let folder = try makeTemporaryFolder("hostile")
        defer { try? FileManager.default.removeItem(at: folder) }
        let huge = folder.appendingPathComponent("huge.json")
        try Data("{".utf8).write(to: huge)
        let handle = try FileHandle(forWritingTo: huge)
        try handle.truncate(atOffset: UInt64(1 << 30) + 1)
        try handle.close()
        expectOneLineRejection(try fedbaechi(["place", huge.path, "--devices", "2", "--memory", "1GiB"]), "more than the 1 GiB fedbaechi reads")
        expectOneLineRejection(try fedbaechi(["place", "/dev/zero", "--devices", "2", "--memory", "1GiB"]), "not a regular file")
        expectOneLineRejection(try fedbaechi(["place", folder.path, "--devices", "2", "--memory", "1GiB"]), "it is a directory, not a file")
        expectOneLineRejection(try fedbaechi(["place", fig1Path, "--devices-file", "/dev/zero"]), "not a regular file")
    }
}

private let fig1Path = packageRoot.appendingPathComponent("Tests/Fixtures/fig1.json").path

/// A small Fashion-MNIST in the installed layout (file names ending .gz; zlib reads plain files too).
private enum TinyFashion {
    static let names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    static func idx(_ dimensions: [Int], _ body: [UInt8]) -> Data {
        var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return Data(bytes + body)
    }

    static func write(to folder: URL) throws {
        try idx([64, 28, 28], (0..<(64 * 784)).map { UInt8($0 % 256) }).write(to: folder.appendingPathComponent(names[0]))
        try idx([64], (0..<64).map { UInt8($0 % 10) }).write(to: folder.appendingPathComponent(names[1]))
        try idx([16, 28, 28], (0..<(16 * 784)).map { UInt8($0 % 253) }).write(to: folder.appendingPathComponent(names[2]))
        try idx([16], (0..<16).map { UInt8($0 % 10) }).write(to: folder.appendingPathComponent(names[3]))
    }

    /// gzip's own output, as Debian ships the files.
    static func gzip(_ url: URL) throws {
        let result = try run("/bin/gzip", ["-n", "-f", url.path])
        try #require(result.status == 0, "gzip: \(result.stderr)")
        try FileManager.default.moveItem(at: url.appendingPathExtension("gz"), to: url)
    }
}

@Suite struct HostileDatasetCLITests {
    /// The tiny dataset trains: the damaged copies below differ from it in one file only.
    @Test func tinyDatasetTrains() throws {
        let folder = try makeTemporaryFolder("hostile")
        defer { try? FileManager.default.removeItem(at: folder) }
        try TinyFashion.write(to: folder)
        try TinyFashion.gzip(folder.appendingPathComponent(TinyFashion.names[3]))
        let result = try fedbaechi(["train", "single", "--model", "mlp", "--data-directory", folder.path, "--batch-size", "32"],
                                   environment: ["OPENBLAS_NUM_THREADS": "1"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("64 training, 16 test examples"))
    }

    enum Damage: String, CaseIterable {
        case truncatedImages, hugeHeader, gzipCutShort, badMagic, labelOutOfRange, trailingData, zeroDimension
    }

    /// Each damage, in one file of the tiny dataset, is one line on stderr and exit status 2.
    @Test(arguments: Damage.allCases)
    func damagedDatasetFile(_ damage: Damage) throws {
        let folder = try makeTemporaryFolder("hostile")
        defer { try? FileManager.default.removeItem(at: folder) }
        try TinyFashion.write(to: folder)
        let trainImages = folder.appendingPathComponent(TinyFashion.names[0])
        let testLabels = folder.appendingPathComponent(TinyFashion.names[3])
        let expected: String
        switch damage {
        case .truncatedImages:
            let data = try Data(contentsOf: trainImages)
            try data.prefix(data.count / 2).write(to: trainImages)
            expected = "train-images-idx3-ubyte.gz is damaged: header promises 64x28x28 bytes of data, file holds 25080"
        case .hugeHeader:
            try TinyFashion.idx([1 << 20, 1 << 20], [1, 2, 3]).write(to: trainImages)
            expected = "more than the 1073741824 (1 GiB) fedbaechi reads"
        case .gzipCutShort:
            try TinyFashion.gzip(testLabels)
            let data = try Data(contentsOf: testLabels)
            try data.prefix(data.count - 12).write(to: testLabels)
            expected = "t10k-labels-idx1-ubyte.gz is damaged: gzip data damaged or cut short"
        case .badMagic:
            try Data([0x1f, 0x8c, 0, 0, 0, 0, 0, 0]).write(to: trainImages)
            expected = "bad magic number"
        case .labelOutOfRange:
            try TinyFashion.idx([16], [UInt8](repeating: 3, count: 15) + [200]).write(to: testLabels)
            expected = "label 200 at position 15 is not a class 0-9"
        case .trailingData:
            try TinyFashion.idx([16], [UInt8](repeating: 3, count: 17)).write(to: testLabels)
            expected = "header promises 16 bytes of data, file holds more"
        case .zeroDimension:
            try TinyFashion.idx([0, 28, 28], []).write(to: trainImages)
            expected = "a dimension is 0"
        }
        let result = try fedbaechi(["train", "single", "--model", "mlp", "--data-directory", folder.path],
                                   environment: ["OPENBLAS_NUM_THREADS": "1"])
        expectOneLineRejection(result, expected)
    }
}
