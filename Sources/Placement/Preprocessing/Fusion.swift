import Basics

/// Contracts edges inside co-placement groups into placement units, never creating a cycle.
///
/// An edge u->v is contracted unless out_degree(u) > 1 and in_degree(v) > 1 (then another path
/// from u to v could exist and contracting would close a cycle). With `pathCheck` such an edge is
/// contracted too when a bounded search finds no other path; a search that runs out of budget
/// counts as a path (the edge stays).
struct Fusion {
    let graph: Graph
    let pathCheck: Bool
    /// Neighbour lists of units that have absorbed others (node ids, resolved through `fused`).
    var successors: [[Int32]?]
    var predecessors: [[Int32]?]
    var mark: [Int32]
    var generation: Int32 = 0
    static let searchBudget = 1024

    private var candidates: [(Int32, Int32)]
    private var fused: UnionFind<Int32>

    /// For each node: a node of its group to join when it has no edges at all (or -1).
    private var edgelessTarget: [Int32]

    init(graph: Graph, groups: inout UnionFind<Int32>, pathCheck: Bool) {
        self.graph = graph
        self.pathCheck = pathCheck
        self.mark = [Int32](repeating: 0, count: graph.nodes.count)
        self.successors = [[Int32]?](repeating: nil, count: graph.nodes.count)
        self.predecessors = [[Int32]?](repeating: nil, count: graph.nodes.count)
        self.candidates = Fusion.internalEdges(graph: graph, groups: &groups)
        self.fused = UnionFind<Int32>(count: graph.nodes.count)
        // A node without edges cannot close a cycle: it joins a node of its group (one with edges if any).
        var representative = [Int32: Int32]()
        for i in 0..<graph.nodes.count where graph.inEdges.count(i) + graph.outEdges.count(i) > 0 {
            let g = groups.find(Int32(i))
            if representative[g] == nil { representative[g] = Int32(i) }
        }
        edgelessTarget = [Int32](repeating: -1, count: graph.nodes.count)
        for i in 0..<graph.nodes.count where graph.inEdges.count(i) + graph.outEdges.count(i) == 0 {
            let g = groups.find(Int32(i))
            if let target = representative[g] { edgelessTarget[i] = target } else { representative[g] = Int32(i) }
        }
    }

    /// Distinct node pairs (u, v) with an edge u->v inside one group, by topological rank of u.
    private static func internalEdges(graph: Graph, groups: inout UnionFind<Int32>) -> [(Int32, Int32)] {
        var result = [(Int32, Int32)]()
        var last = [Int32](repeating: -1, count: graph.nodes.count)
        for u in graph.topologicalOrder {
            let gu = groups.find(u)
            for e in graph.outEdges[Int(u)] {
                let v = Int32(graph.edges[Int(e)].destination)
                if last[Int(v)] == u { continue }
                last[Int(v)] = u
                if groups.find(v) == gu { result.append((u, v)) }
            }
        }
        return result
    }

    /// Runs fusion to a fixed point and returns the unit partition.
    mutating func run() -> UnionFind<Int32> {
        var queue = candidates
        var rounds = 0
        while !queue.isEmpty && rounds < 8 {
            rounds += 1
            var skipped = [(Int32, Int32)]()
            var merged = false
            for (u, v) in queue {
                let ra = fused.find(u), rb = fused.find(v)
                if ra == rb { continue }
                if degree(ra, successors: true) > 1 && degree(rb, successors: false) > 1 {
                    if !pathCheck || otherPathExists(from: ra, to: rb) {
                        skipped.append((u, v))
                        continue
                    }
                }
                merge(ra, rb)
                merged = true
            }
            if !merged { break }
            queue = skipped
        }
        for (node, target) in edgelessTarget.enumerated() where target >= 0 { fused.union(Int32(node), target) }
        return fused
    }

    private func neighbours(_ root: Int32, successors forward: Bool) -> [Int32] {
        if let list = forward ? successors[Int(root)] : predecessors[Int(root)] { return list }
        let adjacency = forward ? graph.outEdges : graph.inEdges
        return adjacency[Int(root)].map { e in
            let edge = graph.edges[Int(e)]
            return Int32(forward ? edge.destination : edge.source)
        }
    }

    private mutating func nextGeneration() -> Int32 {
        generation &+= 1
        if generation == Int32.max {
            for i in mark.indices { mark[i] = 0 }
            generation = 1
        }
        return generation
    }

    /// Distinct units adjacent to unit `root`.
    private mutating func degree(_ root: Int32, successors forward: Bool) -> Int {
        let g = nextGeneration()
        mark[Int(root)] = g
        var count = 0
        for x in neighbours(root, successors: forward) {
            let r = fused.find(x)
            if mark[Int(r)] != g {
                mark[Int(r)] = g
                count += 1
            }
        }
        return count
    }

    /// Whether a path from unit `a` to unit `b` other than the edge a->b exists (or the search ran out).
    private mutating func otherPathExists(from a: Int32, to b: Int32) -> Bool {
        let g = nextGeneration()
        mark[Int(a)] = g
        var stack = [Int32]()
        for x in neighbours(a, successors: true) {
            let r = fused.find(x)
            if r != b && mark[Int(r)] != g {
                mark[Int(r)] = g
                stack.append(r)
            }
        }
        var visited = 0
        while let x = stack.popLast() {
            visited += 1
            if visited > Fusion.searchBudget { return true }
            for y in neighbours(x, successors: true) {
                let r = fused.find(y)
                if r == b { return true }
                if mark[Int(r)] != g {
                    mark[Int(r)] = g
                    stack.append(r)
                }
            }
        }
        return false
    }

    private mutating func merge(_ a: Int32, _ b: Int32) {
        let succ = neighbours(a, successors: true) + neighbours(b, successors: true)
        let pred = neighbours(a, successors: false) + neighbours(b, successors: false)
        let root = fused.union(a, b)
        let other = root == a ? b : a
        successors[Int(other)] = nil
        predecessors[Int(other)] = nil
        successors[Int(root)] = compact(succ, excluding: root)
        predecessors[Int(root)] = compact(pred, excluding: root)
    }

    private mutating func compact(_ list: [Int32], excluding root: Int32) -> [Int32] {
        let g = nextGeneration()
        mark[Int(root)] = g
        var result = [Int32]()
        result.reserveCapacity(list.count)
        for x in list {
            let r = fused.find(x)
            if mark[Int(r)] != g {
                mark[Int(r)] = g
                result.append(r)
            }
        }
        return result
    }
}
