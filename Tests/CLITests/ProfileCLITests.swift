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
    }
}
