import Basics

/// Reproducible synthetic graphs for tests and benchmarks.
public enum SyntheticGraphs {
    /// A layered DAG like a deep network: `nodes` ops in layers of `width`; each op of a layer
    /// reads the op at its position in the previous layer, up to two more of that layer, and now
    /// and then one two layers back (so only the last layer's outputs are left unread).
    /// Compute 10-1000 us, outputs 4 KiB-1 MiB, scratch up to 64 KiB; one op in a hundred holds 64 KiB-1 MiB
    /// of parameters.
    public static func layered(nodes count: Int, width: Int = 100, seed: UInt64 = 1) -> Graph {
        var random = SplitMix64(seed: seed)
        let width = max(1, min(width, count))
        var nodes = [Node]()
        nodes.reserveCapacity(count)
        var edges = [Edge]()
        edges.reserveCapacity(2 * count)
        for i in 0..<count {
            let parameters = random.below(100) == 0 ? random.between(64 << 10, 1 << 20) : 0
            nodes.append(Node(name: "layer\(i / width)/op\(i % width)", computeMicros: Double(random.between(10, 1000)),
                              persistentBytes: parameters, temporaryBytes: random.below(65_537),
                              outputBytes: [random.between(4 << 10, 1 << 20)]))
            let layer = i / width
            guard layer > 0 else { continue }
            let previous = (layer - 1) * width
            var chosen = [previous + i % width]   // every op feeds the next layer
            for _ in 0..<random.between(0, 2) {
                let source = previous + random.below(width)
                if !chosen.contains(source) { chosen.append(source) }
            }
            if layer > 1 && random.below(8) == 0 { chosen.append((layer - 2) * width + random.below(width)) }
            for source in chosen { edges.append(Edge(source: source, destination: i)) }
        }
        // Valid by construction.
        return try! Graph(name: "layered-\(count)", nodes: nodes, edges: edges)
    }
}
