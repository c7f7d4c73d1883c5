import Foundation
import TestSupport
import Testing

private func write(_ text: String, _ name: String, in folder: URL) throws -> String {
    let url = folder.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url.path
}

private func node(_ name: String, compute: Double = 1, persistent: Int = 0) -> String {
    #"{"name": "\#(name)", "compute_us": \#(compute), "persistent_bytes": \#(persistent), "temporary_bytes": 0, "output_bytes": [0]}"#
}

/// Baechi's fig1 in fedbaechi's graph format.
private let fig1JSON = """
    {"name": "fig1", "nodes": [\(node("0", compute: 1)), \(node("1", compute: 3)), \(node("2", compute: 3)),
                               \(node("3", compute: 1)), \(node("4", compute: 3)), \(node("5", compute: 1))],
     "edges": [{"src": "0", "dst": "1", "comm_us": 1}, {"src": "0", "dst": "4", "comm_us": 1},
               {"src": "1", "dst": "2", "comm_us": 1}, {"src": "2", "dst": "3", "comm_us": 1},
               {"src": "4", "dst": "5", "comm_us": 1}, {"src": "5", "dst": "3", "comm_us": 1}]}
    """

private func lines(_ text: String) -> [Substring] { text.split(separator: "\n") }

@Suite struct PlaceCLITests {
    @Test func fig1PlanTableJSONAndGantt() throws {
        let folder = try makeTemporaryFolder("place")
        let graph = try write(fig1JSON, "fig1.json", in: folder)
        let planPath = folder.appendingPathComponent("plan.json").path
        let svgPath = folder.appendingPathComponent("plan.svg").path
        let result = try fedbaechi(["place", graph, "--devices", "2", "--memory", "1GiB", "--algorithm", "m-etf",
                                    "--no-co-placement", "--no-fusion", "--output", planPath, "--gantt", svgPath])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("step time  8 us"))
        #expect(result.stdout.contains("peak memory"))
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: planPath))) as? [String: Any])
        #expect(plan["algorithm"] as? String == "m-etf")
        #expect(plan["makespan_us"] as? Double == 8)
        #expect((plan["placement_seconds"] as? Double).map { $0 > 0 && $0 < 5 } == true)
        let placement = try #require(plan["placement"] as? [String: Int])
        #expect(placement == ["0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 1])
        let devices = try #require(plan["devices"] as? [[String: Any]])
        #expect(devices.map { $0["index"] as? Int } == [0, 1])
        #expect(devices.allSatisfy { $0["memory_limit_bytes"] as? Int == 1 << 30 && $0["peak_memory_bytes"] is Int })
        let schedule = try #require(plan["schedule"] as? [[String: Any]])
        #expect(schedule.count == 6)
        let three = try #require(schedule.first { $0["node"] as? String == "3" })
        #expect(three["device"] as? Int == 0 && three["start_us"] as? Double == 7 && three["end_us"] as? Double == 8)
        #expect((plan["transfers"] as? [Any])?.count == 2)
        let svg = try String(contentsOfFile: svgPath, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("device0") && svg.contains("device1") && svg.contains("send 0:0"))
    }

    @Test func planJSONToStandardOutput() throws {
        let folder = try makeTemporaryFolder("place")
        let result = try fedbaechi(["place", try write(fig1JSON, "g.json", in: folder), "--devices", "2", "--memory", "1GiB", "--output", "-"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let plan = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(plan?["algorithm"] as? String == "auto" || plan?["candidates"] != nil)
    }

    @Test func profileFormatIsDetectedByContent() throws {
        let folder = try makeTemporaryFolder("place")
        let profile = """
            {"cost_units": {"compute_cost": "microseconds"}, "nodes": [
              {"name": "x", "op": "Const", "inputs": [], "colocation_group": ["loc:@x"], "cost": null},
              {"name": "y", "op": "Relu", "inputs": ["x"], "colocation_group": ["loc:@y"],
               "cost": {"compute_cost": 10, "output_memory": [64], "temporary_memory": 0, "persistent_memory": 0}}]}
            """
        let result = try fedbaechi(["place", try write(profile, "profile.txt", in: folder), "--devices", "1", "--memory", "1MiB"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("baechi-tf-profile"))
    }

    @Test func devicesThatDiffer() throws {
        let folder = try makeTemporaryFolder("place")
        let devices = try write(#"{"devices": [{"name": "small", "memory": "1MiB"}, {"name": "big", "memory": 4194304}], "latency": "10us"}"#,
                                "devices.json", in: folder)
        let planPath = folder.appendingPathComponent("plan.json").path
        let result = try fedbaechi(["place", try write(fig1JSON, "g.json", in: folder), "--devices-file", devices, "--output", planPath])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let plan = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: planPath))) as? [String: Any]
        let limits = (plan?["devices"] as? [[String: Any]])?.map { $0["memory_limit_bytes"] as? Int }
        #expect(limits == [1 << 20, 4 << 20])
        #expect((plan?["link"] as? [String: Any])?["latency_us"] as? Double == 10)
    }

    @Test func syntheticGraph() throws {
        let result = try fedbaechi(["place", "synthetic:layered:400:20", "--devices", "3", "--memory", "1GiB", "--algorithm", "m-sct"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("400 ops"))
    }

    /// Each kind of bad input: exit status 2 and one line naming the problem.
    @Test(arguments: [
        ("not json at all", "not JSON"),
        (#"{"nodes": [\#(node("a")), \#(node("b"))], "edges": [{"src": "a", "dst": "b"}, {"src": "b", "dst": "a"}]}"#,
         "cycle: a -> b -> a"),
        (#"{"nodes": [\#(node("a"))], "edges": [{"src": "a", "dst": "ghost"}]}"#, "unknown node \"ghost\""),
        (#"{"nodes": [\#(node("a")), \#(node("a"))], "edges": []}"#, "duplicate node name \"a\""),
        (#"{"nodes": [\#(node("a", compute: -3))], "edges": []}"#, "compute_us must be a finite number >= 0"),
        (#"{"nodes": [\#(node("a", persistent: -1))], "edges": []}"#, "persistent_bytes is negative"),
        (#"{"nodes": [{"name": "a", "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [0]}], "edges": []}"#,
         "node \"a\": compute_us is missing"),
        (#"{"something": "else"}"#, "unrecognised graph file"),
    ])
    func badGraphIsRejected(_ content: String, _ expected: String) throws {
        let folder = try makeTemporaryFolder("place")
        let result = try fedbaechi(["place", try write(content, "bad.json", in: folder), "--devices", "2", "--memory", "1GiB"])
        #expect(result.status == 2)
        #expect(lines(result.stderr).count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(expected), "stderr: \(result.stderr)")
    }

    @Test(arguments: [
        (["--devices", "2", "--memory", "lots"], "cannot read \"lots\" as a memory size"),
        (["--devices", "0", "--memory", "1GiB"], "--devices must be between 1 and 256"),
        (["--devices", "2", "--memory", "1GiB", "--algorithm", "fastest"], "unknown algorithm \"fastest\""),
        (["--devices", "2"], "give --memory"),
        (["--memory", "1GiB"], "give --devices"),
        (["--devices", "2", "--memory", "1GiB", "--bandwidth", "fast"], "as a bandwidth"),
        (["--devices", "2", "--memory", "1GiB", "--latency", "5 parsecs"], "as a duration"),
        (["--devices", "2", "--memory", "0B"], "--memory must be more than 0 bytes"),
    ])
    func badFlagIsRejected(_ flags: [String], _ expected: String) throws {
        let folder = try makeTemporaryFolder("place")
        let result = try fedbaechi(["place", try write(fig1JSON, "g.json", in: folder)] + flags)
        // A usage error: the message first, then the usage.
        #expect(result.status == 64)
        #expect(lines(result.stderr).first?.hasPrefix("Error: ") == true, "stderr: \(result.stderr)")
        #expect(lines(result.stderr).first?.contains(expected) == true, "stderr: \(result.stderr)")
    }

    @Test func badFilesAreRejected() throws {
        let folder = try makeTemporaryFolder("place")
        let graph = try write(fig1JSON, "g.json", in: folder)
        let missing = try fedbaechi(["place", folder.appendingPathComponent("nope.json").path, "--devices", "2", "--memory", "1GiB"])
        #expect(missing.status == 2 && missing.stderr.contains("cannot read"))
        let devices = try write(#"{"devices": [{"name": "a"}]}"#, "devices.json", in: folder)
        let badDevices = try fedbaechi(["place", graph, "--devices-file", devices])
        #expect(badDevices.status == 2 && lines(badDevices.stderr).count == 1 && badDevices.stderr.contains("memory"))
        let both = try fedbaechi(["place", graph, "--devices-file", devices, "--devices", "2", "--memory", "1GiB"])
        #expect(both.status == 64 && both.stderr.contains("not both"))
    }

    @Test(arguments: ["m-etf", "m-sct", "m-topo", "expert", "single", "auto"])
    func noPlanFitsExitsThreeWithTheMemoryThatWould(_ algorithm: String) throws {
        let folder = try makeTemporaryFolder("place")
        let nodes = (0..<4).map { node("p\($0)", compute: 10, persistent: 50) }.joined(separator: ", ")
        let graph = try write(#"{"nodes": [\#(nodes)], "edges": []}"#, "heavy.json", in: folder)
        let result = try fedbaechi(["place", graph, "--devices", "2", "--memory", "40B", "--algorithm", algorithm])
        #expect(result.status == 3)
        #expect(lines(result.stderr).count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("smallest found by search"), "stderr: \(result.stderr)")
        if algorithm != "single" { #expect(result.stderr.contains("\"p"), "stderr: \(result.stderr)") }
        let works = algorithm == "single" ? "200 B" : "100 B"
        #expect(result.stderr.contains("2 devices of \(works) each"), "stderr: \(result.stderr)")
    }

    @Test func neverInitialisesMPI() throws {
        // Pretend to be rank 0 of 2 under a launcher that is not there: MPI_Init would fail or hang.
        let folder = try makeTemporaryFolder("place")
        let result = try fedbaechi(["place", try write(fig1JSON, "g.json", in: folder), "--devices", "2", "--memory", "1GiB"],
                                   environment: ["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0", "PMIX_RANK": "0"],
                                   timeout: 60)
        #expect(result.status == 0, "stderr: \(result.stderr)")
    }

    @Test(.enabled(if: sharedDirectory != nil, "../shared/graphs (the GNMT profile) is not beside the package"))
    func gnmtProfileOnFourDevices() throws {
        let shared = try #require(sharedDirectory)
        let profile = shared.appendingPathComponent("graphs/gnmt_v2_bs128_fwd_profile.json").path
        let result = try fedbaechi(["place", profile, "--devices", "4", "--memory", "8GB", "--output", "-"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((plan["placement"] as? [String: Int])?.count == 2828)
        let makespan = try #require(plan["makespan_us"] as? Double)
        let oneDevice = try #require(plan["one_device_makespan_us"] as? Double)
        #expect(makespan <= oneDevice)
    }
}

/// `place --search`, `--budget`, `--seed` and `place --plan`, through the binary.
@Suite struct PlanSearchCLITests {
    private func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    private let fig1Path = packageRoot.appendingPathComponent("Tests/Fixtures/fig1.json").path

    /// A graph whose two branches are colocated pairs: a plan must keep each pair together.
    private let colocatedJSON = """
        {"name": "pairs", "nodes": [
          {"name": "in", "compute_us": 1, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [8]},
          {"name": "a1", "compute_us": 5, "persistent_bytes": 100, "temporary_bytes": 0, "output_bytes": [8], "colocation": "A"},
          {"name": "a2", "compute_us": 5, "persistent_bytes": 100, "temporary_bytes": 0, "output_bytes": [8], "colocation": "A"},
          {"name": "b1", "compute_us": 5, "persistent_bytes": 100, "temporary_bytes": 0, "output_bytes": [8], "colocation": "B"},
          {"name": "b2", "compute_us": 5, "persistent_bytes": 100, "temporary_bytes": 0, "output_bytes": [8], "colocation": "B"},
          {"name": "out", "compute_us": 1, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [8]}],
         "edges": [{"src": "in", "dst": "a1"}, {"src": "a1", "dst": "a2"}, {"src": "a2", "dst": "out"},
                   {"src": "in", "dst": "b1"}, {"src": "b1", "dst": "b2"}, {"src": "b2", "dst": "out"}]}
        """

    @Test func sameSeedSamePlanAndTheSummarySaysWhatWasTried() throws {
        let folder = try makeTemporaryFolder("place")
        var plans = [[String: Any]]()
        var summaries = [String]()
        for (k, seed) in ["3", "3", "4"].enumerated() {
            let path = folder.appendingPathComponent("plan\(k).json").path
            let result = try fedbaechi(["place", "synthetic:layered:600:30:2", "--devices", "3", "--memory", "1GiB",
                                        "--algorithm", "m-etf", "--search", "12", "--seed", seed, "--output", path])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            plans.append(try json(path))
            summaries.append(result.stdout)
        }
        #expect(plans[0]["placement"] as? [String: Int] == plans[1]["placement"] as? [String: Int])
        #expect(plans[0]["makespan_us"] as? Double == plans[1]["makespan_us"] as? Double)
        let search = try #require(plans[0]["search"] as? [String: Any])
        #expect(search["plans_tried"] as? Int == 24)
        #expect(search["seed"] as? String == "3")
        #expect((search["arms"] as? [[String: Any]])?.count == 2)
        #expect(summaries[0].contains("24 plans tried (tie-break orders from seed 3)"), "\(summaries[0])")
        #expect((search["fastest_us"] as? Double) == plans[0]["makespan_us"] as? Double)
        #expect((plans[2]["search"] as? [String: Any])?["seed"] as? String == "4")
    }

    @Test func searchIsNeverSlowerThanOneRun() throws {
        let folder = try makeTemporaryFolder("place")
        for algorithm in ["m-etf", "m-sct", "auto"] {
            var steps = [Double]()
            for search in ["0", "10"] {
                let path = folder.appendingPathComponent("\(algorithm)-\(search).json").path
                let result = try fedbaechi(["place", "synthetic:layered:500:25:7", "--devices", "4", "--memory", "1GiB",
                                            "--algorithm", algorithm, "--search", search, "--output", path])
                #expect(result.status == 0, "stderr: \(result.stderr)")
                steps.append(try #require(try json(path)["makespan_us"] as? Double))
            }
            #expect(steps[1] <= steps[0], "\(algorithm): \(steps)")
        }
    }

    /// fig1 with default flags: co-placement alone merges its branches (12 us); the default
    /// search also places without it and reaches Baechi's 8 us.
    @Test func fig1WithDefaultFlagsReachesBaechisStep() throws {
        let single = try fedbaechi(["place", fig1Path, "--devices", "2", "--memory", "1GiB", "--algorithm", "m-etf", "--search", "0"])
        #expect(single.stdout.contains("step time  12 us"), "\(single.stdout)")
        for algorithm in ["m-etf", "m-sct", "auto"] {
            let result = try fedbaechi(["place", fig1Path, "--devices", "2", "--memory", "1GiB", "--algorithm", algorithm])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stdout.contains("step time  8 us"), "\(algorithm): \(result.stdout)")
        }
    }

    @Test(arguments: ["m-sct", "m-topo", "auto"])
    func aWrittenPlanJudgesToTheSameStep(_ algorithm: String) throws {
        let folder = try makeTemporaryFolder("place")
        let planPath = folder.appendingPathComponent("plan.json").path
        let judgedPath = folder.appendingPathComponent("judged.json").path
        let graph = "synthetic:layered:800:40:3"
        let placed = try fedbaechi(["place", graph, "--devices", "3", "--memory", "1GiB", "--algorithm", algorithm, "--search", "6",
                                    "--output", planPath])
        #expect(placed.status == 0, "stderr: \(placed.stderr)")
        let judged = try fedbaechi(["place", graph, "--devices", "3", "--memory", "1GiB", "--plan", planPath, "--output", judgedPath])
        #expect(judged.status == 0, "stderr: \(judged.stderr)")
        #expect(judged.stdout.contains("run in its own order"), "\(judged.stdout)")
        let plan = try json(planPath), judgement = try json(judgedPath)
        #expect(judgement["makespan_us"] as? Double == plan["makespan_us"] as? Double)
        #expect(judgement["baechi_order_makespan_us"] as? Double == plan["baechi_order_makespan_us"] as? Double)
        #expect(judgement["placement"] as? [String: Int] == plan["placement"] as? [String: Int])
        #expect(judgement["fits_memory"] as? Bool == true)
        let peaks = { (file: [String: Any]) in (file["devices"] as? [[String: Any]])?.map { $0["peak_memory_bytes"] as? Int } }
        #expect(peaks(judgement) == peaks(plan))
    }

    @Test func anExpertsPlacementIsJudgedWithBaechisOrder() throws {
        let folder = try makeTemporaryFolder("place")
        let plan = try write(#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 1}}"#, "expert.json", in: folder)
        let result = try fedbaechi(["place", fig1Path, "--devices", "2", "--memory", "1GiB", "--plan", plan])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("step time  8 us"), "\(result.stdout)")
        #expect(result.stdout.contains("ordered by Baechi's simulator"), "\(result.stdout)")
    }

    /// Each kind of bad plan: one line naming the problem, exit 2 (3 when it does not fit memory).
    @Test(arguments: [
        (#"{"placement": {"in": 0, "a1": 0, "a2": 0, "b1": 1, "b2": 1, "out": 0, "ghost": 1}}"#, 2, "does not have: \"ghost\""),
        (#"{"placement": {"in": 0, "a1": 0, "a2": 0, "b1": 1, "b2": 1}}"#, 2, "does not place op \"out\""),
        (#"{"placement": {"in": 0, "a1": 0, "a2": 1, "b1": 1, "b2": 1, "out": 0}}"#, 2, "must share a device (colocation \"A\")"),
        (#"{"placement": {"in": 0, "a1": 0, "a2": 0, "b1": 5, "b2": 5, "out": 0}}"#, 2, "placed on device 5"),
        (#"{"placement": {"in": 0, "a1": 0, "a2": 0, "b1": 1, "b2": 1, "out": 0}, "schedule": [], "transfers": []}"#, 2, "its schedule does not fit"),
        ("[1, 2", 2, "not a plan file"),
        (#"{"placement": {"in": 0, "a1": 0, "a2": 0, "b1": 0, "b2": 0, "out": 0}}"#, 3, "does not fit 2 devices of 300 B"),
    ])
    func badPlansAreRejected(_ plan: String, _ status: Int32, _ expected: String) throws {
        let folder = try makeTemporaryFolder("place")
        let graph = try write(colocatedJSON, "pairs.json", in: folder)
        let path = try write(plan, "plan.json", in: folder)
        let result = try fedbaechi(["place", graph, "--devices", "2", "--memory", "300B", "--plan", path])
        #expect(result.status == status, "stderr: \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(expected), "stderr: \(result.stderr)")
    }

    @Test func aBudgetNeedsASearch() throws {
        let result = try fedbaechi(["place", fig1Path, "--devices", "2", "--memory", "1GiB", "--search", "0", "--budget", "1s"])
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("--search 0 turns it off"), "stderr: \(result.stderr)")
    }

    @Test func judgingAPlanDoesNotSearch() throws {
        let folder = try makeTemporaryFolder("place")
        let plan = try write(#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 1}}"#, "p.json", in: folder)
        let result = try fedbaechi(["place", fig1Path, "--devices", "2", "--memory", "1GiB", "--plan", plan, "--search", "5"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--plan judges a plan as it is"), "stderr: \(result.stderr)")
    }
}
