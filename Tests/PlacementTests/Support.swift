import Foundation
@testable import Placement

/// Builds a graph from compact lists: nodes (name, compute), edges (source, destination, comm).
func makeGraph(_ name: String = "test", nodes: [(String, Double)], edges: [(String, String, Double)],
               outputBytes: Int = 0) throws -> Graph {
    let index = Dictionary(nodes.enumerated().map { ($1.0, $0) }, uniquingKeysWith: { first, _ in first })
    return try Graph(name: name,
                     nodes: nodes.map { Node(name: $0.0, computeMicros: $0.1, outputBytes: [outputBytes]) },
                     edges: edges.map { Edge(source: index[$0.0]!, destination: index[$0.1]!, commMicros: $0.2) })
}

/// Baechi's toy graph fig1 (reference digest): makespan 8 with m-ETF on 2 devices.
func fig1() throws -> Graph {
    try makeGraph("fig1", nodes: [("0", 1), ("1", 3), ("2", 3), ("3", 1), ("4", 3), ("5", 1)],
                  edges: [("0", "1", 1), ("0", "4", 1), ("1", "2", 1), ("2", "3", 1), ("4", "5", 1), ("5", "3", 1)])
}

let ample = 1 << 40

func devices(_ count: Int, memory: Int = ample) -> [DeviceSpec] { DeviceSpec.uniform(count: count, memoryBytes: memory) }

/// `../shared/graphs` beside the package, absent in a user's clone.
let sharedGraphs: URL? = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/graphs")
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
}()
