import Foundation
import Runtime
import Tensors
import TestSupport
import Testing

/// The premise of model parallelism, measured: a model whose parameters and optimizer state are four
/// times one rank's memory trains on eight ranks, each rank's resident memory (as the operating system
/// reports it) stays within its limit plus the documented fixed overhead, no rank loads examples its
/// nodes do not read, and one rank with the same limit is refused at planning.
@Suite(.serialized, .enabled(if: fedbaechiBinary != nil && mpirunPath != nil && fashionInstalled && !underMPILauncher,
                             "needs the built binary, mpirun and dataset-fashion-mnist"))
struct MemoryBeyondOneRankTests {
    /// Twenty-four hidden layers of 1024 with adam: 24,954,890 parameters, 285.6 MiB with adam's two
    /// moments, 4.46 times 64 MiB (docs/benchmarks.md, "Memory per rank").
    static let hidden = Array(repeating: "1024", count: 24).joined(separator: ",")
    static let limit = 64 << 20
    static let arguments = ["train", "model-parallel", "--model", "mlp", "--hidden", hidden, "--device-memory", "64MiB",
                            "--limit-train", "256", "--limit-test", "128", "--steps", "2", "--learning-rate", "0.0001"]

    @Test func aModelFourTimesOneRanksMemoryTrainsOnEightRanks() throws {
        let folder = try makeTemporaryFolder("beyond-one-rank")
        defer { try? FileManager.default.removeItem(at: folder) }
        let metrics = folder.appendingPathComponent("metrics.jsonl").path
        let checkpoints = folder.appendingPathComponent("checkpoints").path
        let (status, out, err) = try run(mpirunPath!, ["-np", "8", fedbaechiBinary!.path] + Self.arguments
                                         + ["--metrics", metrics, "--checkpoint-dir", checkpoints], timeout: 900)
        try #require(status == 0, "stderr: \(err)")

        // Parameters and optimizer state (adam: two moments) against the limit.
        let parameters = try #require(out.split(separator: "\n").first { $0.hasPrefix("model mlp: ") }
            .flatMap { Int($0.dropFirst("model mlp: ".count).prefix { $0.isNumber }) })
        #expect(parameters * 4 * 3 >= 4 * Self.limit, "\(parameters) parameters")

        let records = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let summary = try #require(records.first { $0["kind"] as? String == "summary" })
        let overhead = try #require(summary["fixed_overhead_bytes"] as? Int)
        #expect(overhead == ResidentMemory.fixedOverheadBytes)
        #expect(summary["within_memory"] as? Bool == true)
        let ranks = try #require(summary["per_rank"] as? [[String: Any]])
        try #require(ranks.count == 8)

        // Which ranks read an input, from the plan the run saved beside its checkpoints.
        let plan = try JSONDecoder().decode(ModelParallelPlan.self, from: Data(contentsOf: URL(fileURLWithPath: checkpoints + "/plan.json")))
        for rank in ranks {
            let index = try #require(rank["rank"] as? Int)
            let peak = try #require(rank["peak_rss_bytes"] as? Int)
            let data = try #require(rank["data_bytes"] as? Int)
            #expect(peak > 0, "rank \(index): no resident memory reported")
            #expect(peak <= Self.limit + overhead + data,
                    "rank \(index): peak resident \(peak) above the limit \(Self.limit) + overhead \(overhead) + data \(data)")
            #expect((rank["peak_bytes"] as? Int ?? .max) <= Self.limit, "rank \(index): counted peak above the limit")
        }

        // Only ranks whose nodes read an input hold examples; rank 0 also holds the test labels it scores with.
        let feeding = Set(try fedRanks(plan))
        for rank in ranks {
            let index = rank["rank"] as! Int
            let data = rank["data_bytes"] as! Int
            if feeding.contains(index) || index == 0 { #expect(data > 0, "rank \(index) reads inputs but holds no example") }
            else { #expect(data == 0, "rank \(index) reads no input but holds \(data) bytes of examples") }
        }
        #expect(feeding.count < 8)
    }

    /// The ranks whose nodes read a fed input (images or labels); evaluation runs a subset of the nodes.
    func fedRanks(_ plan: ModelParallelPlan) throws -> [Int] {
        var spec = ModelSpec(kind: .mlp)
        spec.hidden = Self.hidden.split(separator: ",").map { Int($0)! }
        let graph = TrainingGraph(model: spec.build(seed: 1, holding: .none), optimizer: Adam())
        try #require(graph.nodes.count == plan.rankOfNode.count)
        let inputs = Set(graph.model.feeds.values)
        return (0..<plan.rankCount).filter { rank in
            plan.order[rank].contains { node in graph.nodes[node].inputs.contains { inputs.contains($0.node) } }
        }
    }

    /// The model profiled by eight ranks sharing its ops (`fedbaechi profile` under mpirun), then
    /// placed on one rank with the same limit: refused at planning, with the memory that would do.
    @Test func oneRankWithTheSameLimitIsRefusedAtPlanning() throws {
        let folder = try makeTemporaryFolder("one-rank")
        defer { try? FileManager.default.removeItem(at: folder) }
        let profile = folder.appendingPathComponent("wide.json").path
        let (profiled, out, profileErr) = try run(mpirunPath!, ["-np", "8", fedbaechiBinary!.path, "profile", "--model", "mlp",
                                                                "--hidden", Self.hidden, "--batch", "128", "--repeats", "1",
                                                                "--output", profile], timeout: 600)
        try #require(profiled == 0, "stderr: \(profileErr)")
        #expect(out.contains("profiled op by op on 8 ranks"))
        #expect(out.split(separator: "\n").filter { $0.hasPrefix("graph mlp") }.count == 1, "rank 0 alone reports")
        let saved = try JSONDecoder().decode(TrainingProfile.self, from: Data(contentsOf: URL(fileURLWithPath: profile)))
        #expect(saved.nodes.allSatisfy { $0.outputShapes != nil && $0.computeMicroseconds >= 1 })

        let (status, _, err) = try fedbaechi(Self.arguments + ["--profile", profile], timeout: 600)
        #expect(status == 3, "stderr: \(err)")
        #expect(err.contains("no plan fits 1 rank of 64 MiB"))
        #expect(err.contains("it fits with"))
    }

    /// A rank whose system limit (`ulimit -v`) cannot hold its share ends the job at once with a
    /// message naming the rank and the limit, instead of failing an allocation mid-run (or hanging in
    /// OpenBLAS, which retries forever when refused its work buffers).
    @Test func aRankTheSystemLimitsBelowItsShareEndsTheJobWithItsName() throws {
        let command = "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then ulimit -v 450000; fi; exec \"$0\" \"$@\""
        let (status, _, err) = try run(mpirunPath!, ["-np", "2", "/bin/sh", "-c", command, fedbaechiBinary!.path, "train", "model-parallel",
                                                     "--model", "mlp", "--steps", "1", "--limit-train", "64", "--limit-test", "32"],
                                       timeout: 300)
        #expect(status != 0 && status != -1, "the job ended by itself (status \(status))")
        #expect(err.contains("rank 1") && err.contains("address-space limit (ulimit -v) is 439.5 MiB"), "stderr: \(err)")
        #expect(err.contains("512 MiB of --device-memory"))
    }
}
