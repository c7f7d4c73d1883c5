import Foundation
import Testing
import TestSupport

/// `calibrate --link` measures the links between the ranks of a job, and `train model-parallel --links`
/// places with them; a file that does not describe the job is refused.
@Suite(.serialized) struct LinkCalibrationCLITests {
    @Test func withoutALauncherItSaysSoInOneLine() throws {
        let result = try fedbaechi(["calibrate", "--link"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("at least 2 ranks"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }

    @Test(.enabled(if: mpirunPath != nil, "needs mpirun"))
    func oneRankIsRefused() throws {
        let result = try run(mpirunPath!, ["-np", "1", try #require(fedbaechiBinary).path, "calibrate", "--link"], timeout: 120)
        #expect(result.status == 2)
        #expect(result.stderr.contains("at least 2 ranks"), "\(result.stderr)")
    }

    @Test(.enabled(if: mpirunPath != nil, "needs mpirun"))
    func measuredLinksPlaceATrainingRun() throws {
        let binary = try #require(fedbaechiBinary).path
        let folder = try makeTemporaryFolder("links")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("links.json").path

        let calibrate = try run(mpirunPath!, ["-np", "2", binary, "calibrate", "--link", "--link-max-bytes", "256KiB", "--repeats", "3",
                                              "--output", file], timeout: 300)
        #expect(calibrate.status == 0, "\(calibrate.stderr)")
        #expect(calibrate.stdout.contains("max relative residual"), "\(calibrate.stdout)")
        #expect(calibrate.stdout.contains("0-1"), "\(calibrate.stdout)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        let links = try #require(document["links"] as? [String: Any])
        #expect(links["ranks"] as? Int == 2)
        let pairs = try #require(links["pairs"] as? [[String: Any]])
        #expect(pairs.count == 1)
        let pair = pairs[0]
        #expect(pair["ranks"] as? [Int] == [0, 1])
        #expect((pair["latency_us"] as? Double).map { $0 >= 0 } == true)
        #expect((pair["bandwidth_bytes_per_second"] as? Double).map { $0 > 0 } == true)
        #expect((pair["points"] as? [[Double]])?.map { $0[0] } == [8, 64, 512, 4096, 32768, 262_144])
        #expect(pair["r_squared"] is Double && pair["max_relative_residual"] is Double)

        let train = ["train", "model-parallel", "--model", "mlp", "--limit-train", "16", "--limit-test", "8", "--batch-size", "8",
                     "--steps", "2", "--algorithm", "m-etf", "--links"]
        let accepted = try run(mpirunPath!, ["-np", "2", binary] + train + [file], timeout: 600)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(accepted.stdout.contains("links measured in \(file):"), "\(accepted.stdout)")
        #expect(accepted.stdout.contains("ranks 0-1 (one host)"), "\(accepted.stdout)")

        // A link of one second between the ranks reaches the plan: its predicted step is a second or more
        // exactly when the plan puts nodes on both ranks (a tensor then crosses; the mlp's compute is far
        // below a second), and below a second when it keeps every node on one rank.
        var slow = document
        var slowLinks = links
        var slowPair = pair
        slowPair["latency_us"] = 1e6
        slowLinks["pairs"] = [slowPair]
        slow["links"] = slowLinks
        let slowFile = folder.appendingPathComponent("slow.json").path
        try JSONSerialization.data(withJSONObject: slow).write(to: URL(fileURLWithPath: slowFile))
        let slowRun = try run(mpirunPath!, ["-np", "2", binary] + train + [slowFile], timeout: 600)
        #expect(slowRun.status == 0, "\(slowRun.stderr)")
        let lines = slowRun.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let predicted = try #require(lines.first { $0.contains("predicted step ") })
        let header = try #require(lines.firstIndex { $0.hasPrefix("rank  nodes  parameters") })
        let nodes = lines[(header + 1)...(header + 2)].map { Int($0.split(separator: " ")[1]) ?? -1 }
        let bothRanks = nodes.allSatisfy { $0 > 0 }
        let secondOrMore = predicted.hasSuffix(" s") && !predicted.hasSuffix(" us") && !predicted.hasSuffix(" ms")
        #expect(bothRanks == secondOrMore, "\(slowRun.stdout)")

        // Three ranks for a file of two: refused on every rank alike, in one line.
        let more = try run(mpirunPath!, ["-np", "3", binary] + train + [file], timeout: 300)
        #expect(more.status == 2)
        #expect(more.stderr.contains("measured between 2 ranks and this job has 3"), "\(more.stderr)")
        // Another host than the one measured.
        var moved = document
        var movedLinks = links
        var movedPair = pair
        movedLinks["hosts"] = ["elsewhere", (links["hosts"] as? [String])?[1] ?? ""]
        movedPair["hosts"] = movedLinks["hosts"]
        movedLinks["pairs"] = [movedPair]
        moved["links"] = movedLinks
        let movedFile = folder.appendingPathComponent("moved.json").path
        try JSONSerialization.data(withJSONObject: moved).write(to: URL(fileURLWithPath: movedFile))
        let elsewhere = try run(mpirunPath!, ["-np", "2", binary] + train + [movedFile], timeout: 300)
        #expect(elsewhere.status == 2)
        #expect(elsewhere.stderr.contains("rank 0 runs on"), "\(elsewhere.stderr)")
        // Not a device file with links.
        let calibration = folder.appendingPathComponent("device.json").path
        try Data(#"{"cost_model": {"flops_per_second": 1e9}}"#.utf8).write(to: URL(fileURLWithPath: calibration))
        let noLinks = try run(mpirunPath!, ["-np", "2", binary] + train + [calibration], timeout: 300)
        #expect(noLinks.status == 2)
        #expect(noLinks.stderr.contains("has no \"links\" object"), "\(noLinks.stderr)")
    }
}
