import Basics
import Foundation
import Testing
@testable import Placement

@Suite struct GraphTests {
    @Test func topologicalOrderIsKahnFIFO() throws {
        // Sources in node order, then successors in edge order.
        let graph = try makeGraph(nodes: [("c", 1), ("a", 1), ("b", 1), ("d", 1)],
                                  edges: [("a", "d", 1), ("c", "b", 1), ("b", "d", 1)])
        #expect(graph.topologicalOrder.map { graph.nodes[Int($0)].name } == ["c", "a", "b", "d"])
        #expect(graph.successorCount == [1, 1, 1, 0])
    }

    @Test func cycleIsNamed() {
        #expect(throws: GraphError.cycle(["a", "b", "c"])) {
            try makeGraph(nodes: [("s", 1), ("a", 1), ("b", 1), ("c", 1)],
                          edges: [("s", "a", 1), ("a", "b", 1), ("b", "c", 1), ("c", "a", 1)])
        }
        let message = GraphError.cycle(["a", "b", "c"]).description
        #expect(message == "the graph has a cycle: a -> b -> c -> a")
    }

    @Test func selfLoopIsACycle() {
        #expect(throws: GraphError.cycle(["a"])) { try makeGraph(nodes: [("a", 1)], edges: [("a", "a", 1)]) }
    }

    @Test func invalidValuesAreRejected() {
        #expect(throws: GraphError.duplicateName("a")) { try makeGraph(nodes: [("a", 1), ("a", 2)], edges: []) }
        #expect(throws: GraphError.self) { try makeGraph(nodes: [("a", -1)], edges: []) }
        #expect(throws: GraphError.self) { try Graph(name: "g", nodes: [Node(name: "a", computeMicros: 1, temporaryBytes: -5)], edges: []) }
        #expect(throws: GraphError.self) {
            try Graph(name: "g", nodes: [Node(name: "a", computeMicros: 1, outputBytes: [1]), Node(name: "b", computeMicros: 1)],
                      edges: [Edge(source: 0, destination: 1, port: 3)])
        }
        #expect(throws: GraphError.empty) { try Graph(name: "g", nodes: [], edges: []) }
    }

    @Test func tensorsAreOnePerPortAndControl() throws {
        let graph = try Graph(name: "g", nodes: [Node(name: "a", computeMicros: 1, outputBytes: [10, 20]),
                                                  Node(name: "b", computeMicros: 1), Node(name: "c", computeMicros: 1)],
                              edges: [Edge(source: 0, destination: 1, port: 1), Edge(source: 0, destination: 2, port: 1),
                                      Edge(source: 0, destination: 2, port: Edge.controlPort)])
        #expect(graph.tensorOfEdge[0] == graph.tensorOfEdge[1])
        #expect(graph.tensorOfEdge[2] != graph.tensorOfEdge[0])
        #expect(graph.transferBytes(ofEdge: 0) == 20)
        #expect(graph.transferBytes(ofEdge: 2) == 4)
        #expect(graph.producerBytes(ofEdge: 2) == 0)
    }

    @Test func baechiLinkModel() {
        #expect(LinkModel.baechi.micros(forBytes: 1_000_000) == 134 + 175.4)
    }
}

@Suite struct ImporterTests {
    func load(_ json: String) throws -> (Graph, String) {
        let result = try GraphImporters.importGraph(from: Data(json.utf8), name: "file")
        return (result.graph, result.format)
    }

    func failure(_ json: String) -> String {
        do { _ = try load(json); return "" } catch { return "\(error)" }
    }

    @Test func graphJSONWithDefaults() throws {
        let (graph, format) = try load("""
            {"name": "small", "nodes": [
              {"name": "a", "compute_us": 2, "persistent_bytes": 0, "temporary_bytes": 8, "output_bytes": [100, 200], "colocation": "x"},
              {"name": "b", "compute_us": 3.5, "persistent_bytes": 64, "temporary_bytes": 0, "output_bytes": [0], "colocation": ["y", "x"]},
              {"name": "c", "compute_us": 1, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": []}],
             "edges": [{"src": "a", "dst": "b"}, {"src": "a", "dst": "c", "output": 1, "comm_us": 7},
                       {"src": "b", "dst": "c", "control": true}]}
            """)
        #expect(format == "graph-json")
        #expect(graph.name == "small")
        #expect(graph.nodes.map(\.computeMicros) == [2, 3.5, 1])
        #expect(graph.edges[0].port == 0 && graph.transferBytes(ofEdge: 0) == 100)
        #expect(graph.commMicros(ofEdge: 1, link: .baechi) == 7)
        #expect(graph.edges[2].isControl && graph.transferBytes(ofEdge: 2) == 4)
        #expect(graph.nodes[0].colocation == graph.nodes[1].colocation)
        #expect(graph.nodes[2].colocation == nil)
    }

    @Test func badGraphJSONIsOneClearLine() {
        #expect(failure("not json at all").hasPrefix("not JSON"))
        #expect(failure("{\"nodes\": [").hasPrefix("not JSON"))
        #expect(failure("{\"whatever\": 1}").contains("unrecognised graph file"))
        let node = #"{"name": "a", "compute_us": 1, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [1]}"#
        #expect(failure(#"{"nodes": [{"name": "a", "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [1]}], "edges": []}"#)
                == "node \"a\": compute_us is missing")
        #expect(failure(#"{"nodes": [\#(node)], "edges": [{"src": "a", "dst": "zz"}]}"#) == "edge 0 refers to unknown node \"zz\"")
        #expect(failure(#"{"nodes": [\#(node), \#(node)], "edges": []}"#) == "duplicate node name \"a\"")
        #expect(failure(#"{"nodes": [{"name": "a", "compute_us": -2, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [1]}], "edges": []}"#)
                .contains("compute_us must be a finite number >= 0"))
        #expect(failure(#"{"nodes": [{"name": "a", "compute_us": 1, "persistent_bytes": -4, "temporary_bytes": 0, "output_bytes": [1]}], "edges": []}"#)
                == "node \"a\": persistent_bytes is negative (-4)")
        #expect(failure(#"{"nodes": [{"name": "a", "compute_us": "fast", "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [1]}], "edges": []}"#)
                == "nodes[0].compute_us: expected a number")
        #expect(failure(#"{"nodes": [\#(node)], "edges": [{"src": "a", "dst": "a"}]}"#) == "the graph has a cycle: a -> a")
        for message in [failure("{\"nodes\": ["), failure(#"{"nodes": [\#(node), \#(node)], "edges": []}"#)] {
            #expect(!message.contains("\n"))
        }
    }

    @Test func tensorFlowProfileConventions() throws {
        let (graph, format) = try load("""
            {"cost_units": {"compute_cost": "microseconds", "memory": "bytes"}, "nodes": [
              {"name": "w", "op": "VariableV2", "inputs": [], "colocation_group": ["loc:@w"],
               "cost": {"compute_cost": 0, "output_memory": [4000], "temporary_memory": 0, "persistent_memory": 4000}},
              {"name": "x", "op": "Const", "inputs": [], "colocation_group": ["loc:@x"], "cost": null},
              {"name": "m", "op": "MatMul", "inputs": ["x", "w:0", "^x"], "colocation_group": ["loc:@m", "loc:@w"],
               "cost": {"compute_cost": 50, "output_memory": [-1, 300], "temporary_memory": 16, "persistent_memory": 0}},
              {"name": "r", "op": "Identity", "inputs": ["m:1"], "colocation_group": ["loc:@r"], "cost": null}]}
            """)
        #expect(format == "baechi-tf-profile")
        #expect(graph.nodes.map(\.computeMicros) == [1, 1, 50, 1])   // at least 1 us; unprofiled 1 us
        #expect(graph.nodes[1].outputBytes == [0])                  // unprofiled: zero memory, ports as used
        #expect(graph.nodes[2].outputBytes == [0, 300])             // negative sizes count as 0
        #expect(graph.nodes[0].outputBytes == [0])                  // the variable's buffer is its persistent memory
        let read = graph.edges.firstIndex { $0.source == 0 }!
        #expect(graph.transferBytes(ofEdge: read) == 4000)          // ...but is sent at full size
        let control = graph.edges.first { $0.isControl }!
        #expect(control.source == 1 && control.destination == 2)
        #expect(graph.nodes[0].colocation == graph.nodes[2].colocation)  // share loc:@w
        #expect(graph.nodes[1].colocation != graph.nodes[0].colocation)
    }

    @Test(.enabled(if: sharedGraphs != nil, "../shared/graphs (the GNMT profile) is not beside the package"))
    func gnmtProfile() throws {
        let directory = try #require(sharedGraphs)
        let data = try Data(contentsOf: directory.appendingPathComponent("gnmt_v2_bs128_fwd_profile.json"))
        let (graph, format) = try GraphImporters.importGraph(from: data, name: "gnmt")
        #expect(format == "baechi-tf-profile")
        #expect(graph.nodes.count == 2828)
        // 1603 profiled ops (115871 us) and 1225 unprofiled at 1 us.
        #expect(graph.totalComputeMicros == 115_871 + 1225)
        let isolated = (0..<graph.nodes.count).filter { graph.inEdges.count($0) + graph.outEdges.count($0) == 0 }
        #expect(isolated.count == 334)   // Baechi prunes these: 2494 ops remain
        let pg = PlacementGraph(graph: graph, link: .baechi)
        // Baechi's pipeline gives 576 fused nodes; ours fuses a little differently (cycle-guard path check).
        #expect(pg.unitCount > 500 && pg.unitCount < 650)
        for (node, unit) in pg.unitOfNode.enumerated() { #expect(pg.units[Int(unit)].members.contains(Int32(node))) }
    }
}

@Suite struct AbsurdInputTests {
    @Test func hugeValuesAreRejectedNotTrapped() {
        let node = #"{"name": "a", "compute_us": 1e300, "persistent_bytes": 0, "temporary_bytes": 0, "output_bytes": [1]}"#
        #expect(throws: GraphError.self) { try GraphImporters.importGraph(from: Data(#"{"nodes": [\#(node)], "edges": []}"#.utf8), name: "g") }
        let profile = #"{"nodes": [{"name": "x", "inputs": [], "cost": {"compute_cost": 1, "output_memory": [1e30], "temporary_memory": 0, "persistent_memory": 0}}]}"#
        #expect(throws: GraphError.self) { try GraphImporters.importGraph(from: Data(profile.utf8), name: "g") }
        #expect(Quantity.formatMicros(1e300).hasSuffix(" s"))
    }
}
