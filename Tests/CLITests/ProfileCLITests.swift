import Foundation
import TestSupport
import Testing

@Suite struct ProfileCLITests {
    /// Every zoo model profiles into a well-formed placement graph: unique names, edges between
    /// existing nodes whose bytes match the producer's output, and a DAG.
    @Test(arguments: ["mlp", "lenet", "inception-mini", "gru-lm", "rnn-stack"])
    func everyModelGivesAPlacementGraph(_ model: String) throws {
        let output = temporaryPath("profile", extension: "json")
        defer { try? FileManager.default.removeItem(at: output) }
        let result = try fedbaechi(["profile", "--model", model, "--batch", "2", "--repeats", "1",
                                    "--vocabulary", "50", "--output", output.path])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("graph \(model), batch 2"))
        let graph = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: output)) as? [String: Any])
        #expect(graph["name"] as? String == model)
        let nodes = try #require(graph["nodes"] as? [[String: Any]])
        let edges = try #require(graph["edges"] as? [[String: Any]])
        var outputs: [String: [Int]] = [:]
        for node in nodes {
            let name = try #require(node["name"] as? String)
            #expect(outputs[name] == nil, "duplicate node \(name)")
            outputs[name] = node["output_bytes"] as? [Int]
            #expect((node["compute_us"] as? Int ?? 0) >= 1)
        }
        var indegree = [String: Int]()
        var successors = [String: [String]]()
        for edge in edges {
            let src = try #require(edge["src"] as? String)
            let dst = try #require(edge["dst"] as? String)
            let port = try #require(edge["output"] as? Int)
            #expect(outputs[src]?[port] == edge["bytes"] as? Int)
            #expect(outputs[dst] != nil)
            indegree[dst, default: 0] += 1
            successors[src, default: []].append(dst)
        }
        // Kahn's algorithm visits every node exactly when there is no cycle.
        var ready = outputs.keys.filter { indegree[$0, default: 0] == 0 }
        var visited = 0
        while let next = ready.popLast() {
            visited += 1
            for s in successors[next] ?? [] {
                indegree[s]! -= 1
                if indegree[s] == 0 { ready.append(s) }
            }
        }
        #expect(visited == nodes.count)
        #expect(nodes.contains { ($0["name"] as? String)?.hasPrefix("update/") == true && $0["colocation"] != nil })
    }

    @Test func timingReportAndBadOptions() throws {
        let result = try fedbaechi(["profile", "--model", "mlp", "--batch", "8", "--repeats", "1", "--time-steps", "2",
                                    "--output", "/dev/null"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("time in sgemm"))
        #expect(try fedbaechi(["profile", "--model", "mlp", "--batch", "0"]).status == 64)
        let unwritable = try fedbaechi(["profile", "--model", "mlp", "--batch", "2", "--repeats", "1",
                                        "--output", "/nonexistent/folder/graph.json"])
        #expect(unwritable.status == 2)
        #expect(unwritable.stderr.contains("cannot write"))
        #expect(try fedbaechi(["profile", "--model", "mlp", "--batch", "2", "--timing-output", "/tmp/x.json"]).status == 64)
    }

    /// The step's time by op kind: every node of the graph but its inputs counted once, under its kind;
    /// the kinds' times add up to no more than the step; sgemm work only where the kind calls sgemm
    /// (convolutions and matrix products, forward and backward), and in total the step's.
    @Test func timeByOpKindAddsUpToTheStep() throws {
        let path = temporaryPath("timing", extension: "json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try fedbaechi(["profile", "--model", "lenet", "--batch", "4", "--repeats", "1", "--time-steps", "2",
                                    "--output", "/dev/null", "--timing-output", path])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("op kind") && result.stdout.contains("outside ops"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let kinds = try #require(report["kinds"] as? [[String: Any]])
        let byKind = Dictionary(uniqueKeysWithValues: kinds.map { ($0["kind"] as! String, $0) })
        // lenet: 2 convolutions, 2 poolings, 3 ReLUs, 2 dense layers (matmul + bias), flatten, loss; 8 parameters.
        let expectedNodes = ["conv2d": 2, "conv2d backward": 2, "max_pool": 2, "relu": 3, "matmul": 2, "bias_add": 4,
                             "parameter read": 8, "optimizer update": 8, "softmax_cross_entropy": 1]
        for (kind, count) in expectedNodes { #expect(byKind[kind]?["nodes"] as? Int == count, "\(kind): \(String(describing: byKind[kind]))") }
        let stepMs = try #require(report["step_ms"] as? Double)
        let total = kinds.reduce(0.0) { $0 + ($1["ms"] as! Double) }
        #expect(total > 0 && total <= stepMs * 1.0001, "kinds \(total) ms, step \(stepMs) ms")
        let sgemmKinds = Set(kinds.filter { ($0["sgemm_gflop"] as! Double) > 0 }.map { $0["kind"] as! String })
        #expect(sgemmKinds == ["conv2d", "conv2d backward", "matmul", "matmul backward"], "\(sgemmKinds)")
        let sgemm = kinds.reduce(0.0) { $0 + ($1["sgemm_gflop"] as! Double) }
        let stepSgemm = try #require(report["sgemm_gflop"] as? Double)
        #expect(abs(sgemm - stepSgemm) <= 1e-9 * stepSgemm, "kinds \(sgemm) GFLOP, step \(stepSgemm)")
    }
}
