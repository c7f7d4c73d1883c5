import Foundation
import ONNXImport
import Placement
import Testing

/// One graph format under the fuzz test: its importer and valid files to damage.
struct GraphFuzzTarget: Sendable {
    let importer: any GraphImporter
    let seeds: [Data]
    let tokens: [String]

    init(_ importer: any GraphImporter, seeds: [Data], tokens: [String]) {
        self.importer = importer
        self.seeds = seeds
        self.tokens = tokens
    }
}

/// Every graph importer the fuzz test covers. A new importer (ONNX) is one more line here: the
/// importer, a few small valid files of its format, and fragments of the format to insert.
let graphFuzzTargets: [GraphFuzzTarget] = [
    GraphFuzzTarget(GraphJSONImporter(), seeds: GraphSeeds.graphJSON, tokens: GraphSeeds.graphJSONTokens),
    GraphFuzzTarget(TensorFlowProfileImporter(), seeds: GraphSeeds.profile, tokens: GraphSeeds.profileTokens),
    GraphFuzzTarget(ONNXImporter(), seeds: [GraphSeeds.fixture("tiny-cnn.onnx")], tokens: []),
]

enum GraphSeeds {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func fixture(_ name: String) -> Data { (try? Data(contentsOf: fixtures.appendingPathComponent(name))) ?? Data() }

    static let graphJSON: [Data] = [
        (try? Data(contentsOf: fixtures.appendingPathComponent("fig1.json"))) ?? Data(),
        // docs/formats.md's example: colocation, several outputs, a control edge, bytes and comm_us.
        Data(#"""
            {"name": "tiny",
             "nodes": [
               {"name": "embed", "compute_us": 40, "persistent_bytes": 61440000, "temporary_bytes": 0,
                "output_bytes": [2621440], "colocation": "embedding"},
               {"name": "lstm", "compute_us": 120.5, "persistent_bytes": 8388608, "temporary_bytes": 65536,
                "output_bytes": [524288, 524288]},
               {"name": "loss", "compute_us": 8, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [4]}],
             "edges": [
               {"src": "embed", "dst": "lstm"},
               {"src": "lstm", "dst": "loss", "output": 1, "bytes": 524288},
               {"src": "embed", "dst": "loss", "control": true, "comm_us": 5}]}
            """#.utf8),
        Data(#"""
            {"nodes": [{"name": "a", "compute_us": 0, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [], "colocation": ["x", "y"], "op": "Const"},
                       {"name": "b", "compute_us": 1e3, "persistent_bytes": 1024, "temporary_bytes": 1, "output_bytes": [0, 8, 16], "colocation": ["y"]},
                       {"name": "c", "compute_us": 2, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [1]}],
             "edges": [{"src": "a", "dst": "b", "control": true}, {"src": "b", "dst": "c", "output": 2},
                       {"src": "b", "dst": "c", "output": 1, "comm_us": 0}]}
            """#.utf8),
    ]

    static let graphJSONTokens = [
        #""name""#, #""nodes""#, #""edges""#, #""compute_us""#, #""persistent_bytes""#, #""temporary_bytes""#,
        #""output_bytes""#, #""colocation""#, #""src""#, #""dst""#, #""output""#, #""bytes""#, #""comm_us""#,
        #""control""#, "true", "null", "[]", "{}", ",", ":", "\"", "\\u0000", "\\ud800", "\\n", #""a""#,
        #"{"src": "a", "dst": "a"}"#, #"{"name": "a", "compute_us": 1, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [0]}"#,
    ]

    static let profile: [Data] = [
        Data(#"""
            {"cost_units": {"compute_cost": "microseconds", "memory": "bytes"}, "nodes": [
              {"name": "x", "op": "Const", "inputs": [], "colocation_group": ["loc:@x"], "cost": null},
              {"name": "w", "op": "VariableV2", "inputs": [], "colocation_group": ["loc:@w"],
               "cost": {"compute_cost": 3, "output_memory": [4096], "temporary_memory": 0, "persistent_memory": 4096}},
              {"name": "m", "op": "MatMul", "inputs": ["x", "w:0"], "colocation_group": ["loc:@m"],
               "cost": {"compute_cost": 120, "output_memory": [2048, 16], "temporary_memory": 512, "persistent_memory": 0}},
              {"name": "r", "op": "Relu", "inputs": ["m:1", "^w"], "colocation_group": ["loc:@r", "loc:@w"],
               "cost": {"compute_cost": 0.5, "output_memory": [16], "temporary_memory": -4, "persistent_memory": 0}},
              {"name": "s", "op": "Identity", "inputs": ["r", "x:1"], "cost": null}]}
            """#.utf8),
        Data(#"""
            {"nodes": [{"name": "a", "inputs": []}, {"name": "b", "inputs": ["a", "^a"], "cost": {"compute_cost": 1, "output_memory": [], "temporary_memory": 0, "persistent_memory": 0}}]}
            """#.utf8),
    ]

    static let profileTokens = [
        #""name""#, #""op""#, #""inputs""#, #""cost""#, #""cost_units""#, #""colocation_group""#, #""compute_cost""#,
        #""output_memory""#, #""temporary_memory""#, #""persistent_memory""#, "null", "[]", "{}", ",", ":", "\"",
        #""^x""#, #""x:""#, #""x:-1""#, #""x:99999999999999999999""#, #""x:9223372036854775807""#, #""x:65536""#,
        #""w:2000000000""#, #""loc:@x""#, "\\u0000", "\\n",
    ]
}

/// Stable across runs and machines (Swift's `hashValue` is seeded per process).
func stableHash(_ text: String) -> UInt64 {
    text.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
}

@Suite struct GraphFuzzTests {
    /// Every mutant either imports as a valid graph (which then places, simulates and renders) or is
    /// rejected with a `GraphError` whose message is one line, both by the format's own importer and
    /// by the content-based detection the command line uses.
    @Test(.timeLimit(.minutes(FuzzBudget.timeLimitMinutes)), arguments: graphFuzzTargets.map(\.importer.formatName))
    func mutatedFilesAreReadOrRejected(_ format: String) throws {
        let target = try #require(graphFuzzTargets.first { $0.importer.formatName == format })
        #expect(target.seeds.allSatisfy { !$0.isEmpty })
        for seed in target.seeds {
            // The seeds themselves are valid: otherwise the run only exercises the first check.
            #expect(throws: Never.self) { try target.importer.importGraph(from: seed, name: "seed") }
        }
        let seed = FuzzBudget.seed ^ stableHash(format)
        var mutator = Mutator(seed: seed, seeds: target.seeds, tokens: target.tokens)
        var index = 0
        var unclear = [String]()
        let report = fuzz(format, mutator: &mutator, seed: FuzzBudget.seed) { input in
            index += 1
            let data = Data(input)
            var messages = [String]()
            var graph: Graph?
            do throws(GraphError) { graph = try target.importer.importGraph(from: data, name: "fuzz") } catch { messages.append(error.description) }
            do throws(GraphError) { _ = try GraphImporters.importGraph(from: data, name: "fuzz") } catch { messages.append(error.description) }
            if let graph { exercise(graph, index: index) }
            // Foundation's catch-all says nothing about where or why: it must not reach the user.
            if unclear.count < 5, messages.contains(where: { $0.contains("The given data was not valid JSON") }) {
                unclear.append(String(decoding: input.prefix(120), as: UTF8.self))
            }
            if let bad = messages.first(where: { $0.isEmpty || $0.contains(where: \.isNewline) || $0.count > 1000 }) {
                return .rejected(bad)
            }
            return graph == nil ? .rejected(messages[0]) : .accepted
        }
        #expect(unclear.isEmpty, "rejected without saying where or why: \(unclear)")
        // Damage that never gets past the first check would test little: both outcomes must occur.
        #expect(report.accepted > 0 && report.rejected > report.inputs / 10, "\(report)")
    }

    /// An accepted graph is consistent, and placement, simulation, the plan and the chart cope with it.
    private func exercise(_ graph: Graph, index: Int) {
        #expect(graph.topologicalOrder.count == graph.nodes.count)
        #expect(graph.tensorCount >= graph.nodes.count)
        guard graph.nodes.count <= 400 else { return }
        let algorithms: [Algorithm] = [.mTOPO, .mETF, .mSCT, .single, .expert]
        let memories = [1 << 10, 1 << 20, 1 << 30, 1 << 40]
        let planner = Planner(graph: graph, link: .baechi)
        let devices = DeviceSpec.uniform(count: 1 + index % 4, memoryBytes: memories[(index / 5) % memories.count])
        if case .success(let plan) = planner.plan(algorithms[index % algorithms.count], devices: devices) {
            #expect(!plan.json().isEmpty)
            #expect(GanttChart.svg(for: plan).hasPrefix("<svg"))
        }
    }

    /// The real GNMT profile, damaged in place (sizes and numbers, not structure): the large seed
    /// reaches code the small ones do not (colocation chains, thousands of ops).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: gnmtPath), "../shared/graphs is not present"))
    func damagedGNMTProfile() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: gnmtPath))
        let importer = TensorFlowProfileImporter()
        var random = FuzzRandom(seed: FuzzBudget.seed ^ 0x6E6D74)
        var accepted = 0
        let count = max(20, FuzzBudget.inputs / 100)
        for _ in 0..<count {
            var bytes = [UInt8](original)
            for _ in 0...random.below(4) {
                let at = random.below(bytes.count)
                if random.chance(50) {
                    bytes[at] = random.pick(Array("0123456789-e.\":,[]{}^".utf8))
                } else {
                    bytes.removeSubrange(at..<min(bytes.count, at + random.below(64)))
                }
            }
            do throws(GraphError) {
                _ = try importer.importGraph(from: Data(bytes), name: "gnmt")
                accepted += 1
            } catch {
                let oneLine = !error.description.contains(where: \.isNewline)
                #expect(oneLine, "\(error.description.debugDescription)")
            }
        }
        print("fuzz gnmt profile: \(count) damaged copies, \(accepted) accepted")
    }
}

let gnmtPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/graphs/gnmt_v2_bs128_fwd_profile.json").path

/// The limits of `GraphLimits`, met head on: each beyond-limit input is refused by a check made
/// before the memory it would need is allocated, and a graph of a million ops within them imports.
@Suite struct GraphLimitTests {
    @Test func highPortsInAProfileAreRefusedBeforeAllocating() throws {
        for (port, expected) in [("9223372036854775807", "more than the 65536 outputs"), ("2000000000", "more than the 65536 outputs"),
                                 ("-1", "negative port"), ("65536", "more than the 65536 outputs")] {
            let profile = #"{"cost_units": {}, "nodes": [{"name": "x", "inputs": [], "cost": null}, {"name": "y", "inputs": ["x:\#(port)"], "cost": null}]}"#
            #expect { try TensorFlowProfileImporter().importGraph(from: Data(profile.utf8), name: "p") } throws: {
                ($0 as? GraphError)?.description.contains(expected) == true
            }
        }
        // The largest port allowed is fine on an unprofiled op.
        let profile = #"{"cost_units": {}, "nodes": [{"name": "x", "inputs": [], "cost": null}, {"name": "y", "inputs": ["x:65535"], "cost": null}]}"#
        let graph = try TensorFlowProfileImporter().importGraph(from: Data(profile.utf8), name: "p")
        #expect(graph.nodes[0].outputBytes.count == 65536)
    }

    @Test func manyHighPortsAreRefusedAsTooManyTensors() throws {
        // 2,000 producers each asked for 65,536 outputs: 131M tensors, 1 GiB of sizes, from 60 KB.
        let producers = (0..<2000).map { #"{"name": "p\#($0)", "inputs": []}"# }
        let consumer = #"{"name": "c", "inputs": [\#((0..<2000).map { "\"p\($0):65535\"" }.joined(separator: ","))]}"#
        let profile = #"{"cost_units": {}, "nodes": [\#((producers + [consumer]).joined(separator: ","))]}"#
        #expect { try TensorFlowProfileImporter().importGraph(from: Data(profile.utf8), name: "p") } throws: {
            ($0 as? GraphError)?.description.contains("more than 67108864 tensors") == true
        }
    }

    @Test func namesInMessagesAreOneLineAndShort() throws {
        let long = String(repeating: "n", count: 100_000)
        for name in ["a\\nb", "tab\\there", "bell\\u0007", long] {
            let node = #"{"name": "\#(name)", "compute_us": 1, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [0]}"#
            let graph = #"{"nodes": [\#(node), \#(node)], "edges": []}"#
            #expect { try GraphJSONImporter().importGraph(from: Data(graph.utf8), name: "g") } throws: { error in
                let text = (error as? GraphError)?.description ?? ""
                return text.hasPrefix("duplicate node name") && !text.contains(where: \.isNewline) && text.count < 200
            }
        }
    }

    @Test func oversizedInputsAreRefusedByTheirSize() throws {
        #expect { try GraphImporters.importGraph(from: Data(count: GraphLimits.maximumFileBytes + 1), name: "big") } throws: {
            ($0 as? GraphError)?.description.contains("more than the 1 GiB fedbaechi reads") == true
        }
        let nodes = (0..<2).map { Node(name: "n\($0)", computeMicros: 1, persistentBytes: Graph.maximumBytes, outputBytes: [Graph.maximumBytes]) }
        #expect(throws: Never.self) { try Graph(name: "2 TiB", nodes: nodes, edges: []) }
        let many = (0..<1100).map { Node(name: "n\($0)", computeMicros: 1, persistentBytes: Graph.maximumBytes) }
        #expect { try Graph(name: "1.1 PiB", nodes: many, edges: []) } throws: {
            ($0 as? GraphError)?.description.contains("more than 1 PiB") == true
        }
        let wide = [Node(name: "w", computeMicros: 1, outputBytes: [Int](repeating: 0, count: GraphLimits.maximumOutputsPerNode + 1))]
        #expect { try Graph(name: "wide", nodes: wide, edges: []) } throws: {
            ($0 as? GraphError)?.description.contains("65537 outputs") == true
        }
    }

    @Test func filesThatAreNotRegularOrTooLargeAreNotRead() throws {
        #expect { try GraphFile.read(path: "/dev/zero") } throws: { ($0 as? GraphFile.ReadError)?.description == "not a regular file" }
        #expect { try GraphFile.read(path: "/nonexistent/graph.json") } throws: { ($0 as? GraphFile.ReadError)?.description == "no such file" }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fedbaechi-limit-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(count: 2048).write(to: url)
        #expect { try GraphFile.read(path: url.path, limit: 1024) } throws: {
            ($0 as? GraphFile.ReadError)?.description.contains("more than the 1 KiB") == true
        }
        #expect(try GraphFile.read(path: url.path).count == 2048)
    }

    /// A million ops in fedbaechi's JSON imports within the limits (the benchmarks place 1M-op
    /// graphs); a debug build takes a while, so it runs in the long fuzz run only.
    @Test(.enabled(if: FuzzBudget.environment["FEDBAECHI_FUZZ_INPUTS"] != nil, "set FEDBAECHI_FUZZ_INPUTS for the long run"))
    func aMillionOpsImport() throws {
        let count = 1_000_000
        var text = #"{"name": "million", "nodes": ["#
        text.reserveCapacity(150 * count)
        for i in 0..<count {
            text += (i == 0 ? "" : ",") + #"{"name": "op\#(i)", "compute_us": 10, "persistent_bytes": 0, "temporary_bytes": 64, "output_bytes": [4096]}"#
        }
        text += #"], "edges": ["#
        for i in 1..<count { text += (i == 1 ? "" : ",") + #"{"src": "op\#(i - 1)", "dst": "op\#(i)"}"# }
        text += "]}"
        let data = Data(text.utf8)
        let started = ContinuousClock.now
        let (graph, format) = try GraphImporters.importGraph(from: data, name: "million")
        print("1M-op graph JSON (\(data.count / 1_000_000) MB) imported in \(ContinuousClock.now - started)")
        #expect(format == "graph-json" && graph.nodes.count == count && graph.edges.count == count - 1)
    }
}
