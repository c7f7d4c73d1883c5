import Basics

// The operator graph that placement works on: nodes with costs, edges carrying tensors.

/// One operator: its compute time and the memory it needs.
public struct Node: Sendable, Hashable {
    public var name: String
    /// Time the operator runs, in microseconds.
    public var computeMicros: Double
    /// Parameters and state: resident on the operator's device for the whole step.
    public var persistentBytes: Int
    /// Scratch memory: allocated while the operator runs, freed as soon as it ends.
    public var temporaryBytes: Int
    /// Bytes of each output tensor (one entry per output port).
    public var outputBytes: [Int]
    /// Framework colocation label: nodes sharing a label must share a device.
    public var colocation: String?
    /// Operator type, informational (e.g. `MatMul`).
    public var kind: String?

    public init(name: String, computeMicros: Double, persistentBytes: Int = 0, temporaryBytes: Int = 0,
                outputBytes: [Int] = [], colocation: String? = nil, kind: String? = nil) {
        self.name = name
        self.computeMicros = computeMicros
        self.persistentBytes = persistentBytes
        self.temporaryBytes = temporaryBytes
        self.outputBytes = outputBytes
        self.colocation = colocation
        self.kind = kind
    }
}

/// A data or control dependency: output `port` of `source` is consumed by `destination`.
public struct Edge: Sendable, Hashable {
    /// The port of a control dependency (no data, counted as `controlBytes`).
    public static let controlPort = -1
    /// What a control dependency costs to send, as in Baechi.
    public static let controlBytes = 4

    public var source: Int
    public var destination: Int
    public var port: Int
    /// Bytes sent when the endpoints are on different devices; the output's size when absent.
    public var bytes: Int?
    /// Communication time in microseconds, overriding the link model.
    public var commMicros: Double?

    public var isControl: Bool { port == Edge.controlPort }

    public init(source: Int, destination: Int, port: Int = 0, bytes: Int? = nil, commMicros: Double? = nil) {
        self.source = source
        self.destination = destination
        self.port = port
        self.bytes = bytes
        self.commMicros = commMicros
    }
}

/// Compressed adjacency lists: the items of node `i` are `items[offsets[i]..<offsets[i+1]]`.
public struct Adjacency: Sendable {
    public let offsets: [Int32]
    public let items: [Int32]

    /// Groups `pairs` (node, item) by node, keeping the order of `pairs` within each node.
    init(count: Int, pairs: some Collection<(Int, Int)>) {
        var offsets = [Int32](repeating: 0, count: count + 1)
        for (node, _) in pairs { offsets[node + 1] += 1 }
        for i in 0..<count { offsets[i + 1] += offsets[i] }
        var fill = offsets
        var items = [Int32](repeating: 0, count: pairs.count)
        for (node, item) in pairs {
            items[Int(fill[node])] = Int32(item)
            fill[node] += 1
        }
        self.offsets = offsets
        self.items = items
    }

    @inline(__always) public func range(_ node: Int) -> Range<Int> { Int(offsets[node])..<Int(offsets[node + 1]) }
    @inline(__always) public func count(_ node: Int) -> Int { Int(offsets[node + 1] - offsets[node]) }
    public subscript(node: Int) -> ArraySlice<Int32> { items[range(node)] }
}

/// Why a graph was rejected. Each case renders as one line naming what is wrong.
public enum GraphError: Error, CustomStringConvertible, Equatable {
    case notJSON(String)
    case unrecognizedFormat(String)
    case malformed(String)
    case duplicateName(String)
    case unknownNode(edge: Int, name: String)
    case invalidValue(String)
    case cycle([String])
    case empty
    /// Beyond one of `GraphLimits`.
    case tooLarge(String)

    /// Always one line of bounded length, whatever the file held: the command line prints it as is.
    public var description: String {
        let text: String
        switch self {
        case .notJSON(let detail): text = "not JSON: \(detail)"
        case .unrecognizedFormat(let detail): text = detail
        case .malformed(let detail): text = detail
        case .duplicateName(let name): text = "duplicate node name \(GraphError.quoted(name))"
        case .unknownNode(let edge, let name): text = "edge \(edge) refers to unknown node \(GraphError.quoted(name))"
        case .invalidValue(let detail): text = detail
        case .cycle(let names):
            let shown = names.count > 12 ? Array(names.prefix(6)) + ["..."] + Array(names.suffix(5)) : names
            text = "the graph has a cycle: " + (shown + [names.first ?? ""]).map { GraphError.escaped($0) }.joined(separator: " -> ")
        case .empty: text = "the graph has no nodes"
        case .tooLarge(let detail): text = detail
        }
        return GraphError.oneLine(text)
    }
}

/// A validated operator DAG with its adjacency, a topological order and its tensors.
///
/// The topological order is Kahn's algorithm with a FIFO queue (sources in node order, then
/// successors in edge order); it breaks ties everywhere in placement and simulation.
/// A tensor is one output port of one node (or a node's control output); edges carrying the same
/// tensor to one device send it once.
public struct Graph: Sendable {
    public let name: String
    public let nodes: [Node]
    public let edges: [Edge]
    /// Outgoing and incoming edge indices of each node, in edge order.
    public let outEdges: Adjacency
    public let inEdges: Adjacency
    public let topologicalOrder: [Int32]
    public let topologicalRank: [Int32]
    /// First tensor id of each node: its port `p` is `tensorBase[i] + p`, its control output `tensorBase[i+1] - 1`.
    public let tensorBase: [Int32]
    /// The tensor each edge carries.
    public let tensorOfEdge: [Int32]
    /// Number of distinct successor nodes of each node.
    public let successorCount: [Int32]
    /// Colocation label of each node as a small integer (-1: none); equal labels, equal numbers.
    public let colocationClass: [Int32]

    public var tensorCount: Int { Int(tensorBase[nodes.count]) }

    /// The largest size (1 TiB) and time (1e12 us, about 11.6 days) a node or edge may carry.
    public static let maximumBytes = 1 << 40
    public static let maximumMicros = Quantity.maximumMicros

    /// Validates `nodes` and `edges` (names unique, values finite, not negative and not absurdly
    /// large, ports in range, no cycle) and derives the adjacency and the topological order.
    public init(name: String, nodes: [Node], edges: [Edge]) throws(GraphError) {
        guard !nodes.isEmpty else { throw .empty }
        try Graph.checkLimits(nodes: nodes, edges: edges)
        var seen = Set<String>(minimumCapacity: nodes.count)
        for (i, node) in nodes.enumerated() {
            if node.name.isEmpty { throw .invalidValue("node \(i) has an empty name") }
            if !seen.insert(node.name).inserted { throw .duplicateName(node.name) }
            let label = "node \(GraphError.quoted(node.name))"
            if !node.computeMicros.isFinite || node.computeMicros < 0 {
                throw .invalidValue("\(label): compute_us must be a finite number >= 0, not \(node.computeMicros)")
            }
            if node.computeMicros > Graph.maximumMicros {
                throw .invalidValue("\(label): compute_us is more than \(Graph.maximumMicros) (\(node.computeMicros))")
            }
            for (field, value) in [("persistent_bytes", node.persistentBytes), ("temporary_bytes", node.temporaryBytes)]
                + node.outputBytes.enumerated().map({ ("output_bytes[\($0.offset)]", $0.element) }) {
                if value < 0 { throw .invalidValue("\(label): \(field) is negative (\(value))") }
                if value > Graph.maximumBytes { throw .invalidValue("\(label): \(field) is more than 1 TiB (\(value))") }
            }
        }
        var base = [Int32](repeating: 0, count: nodes.count + 1)
        for (i, node) in nodes.enumerated() { base[i + 1] = base[i] + Int32(node.outputBytes.count + 1) }
        var tensorOfEdge = [Int32](repeating: 0, count: edges.count)
        for (e, edge) in edges.enumerated() {
            guard nodes.indices.contains(edge.source), nodes.indices.contains(edge.destination) else {
                throw .malformed("edge \(e) refers to a node index out of range")
            }
            let label = "edge \(e) (\(GraphError.escaped(nodes[edge.source].name)) -> \(GraphError.escaped(nodes[edge.destination].name)))"
            if edge.source == edge.destination { throw .cycle([nodes[edge.source].name]) }
            if edge.isControl {
                tensorOfEdge[e] = base[edge.source + 1] - 1
            } else {
                guard edge.port >= 0 else { throw .invalidValue("\(label): output port is negative (\(edge.port))") }
                guard edge.port < nodes[edge.source].outputBytes.count else {
                    throw .invalidValue("\(label): uses output \(edge.port) but \(GraphError.quoted(nodes[edge.source].name)) has \(nodes[edge.source].outputBytes.count) output(s)")
                }
                tensorOfEdge[e] = base[edge.source] + Int32(edge.port)
            }
            if let bytes = edge.bytes, bytes < 0 || bytes > Graph.maximumBytes {
                throw .invalidValue("\(label): bytes must be between 0 and 1 TiB, not \(bytes)")
            }
            if let comm = edge.commMicros, !comm.isFinite || comm < 0 || comm > Graph.maximumMicros {
                throw .invalidValue("\(label): comm_us must be a number from 0 to \(Graph.maximumMicros), not \(comm)")
            }
        }
        let outEdges = Adjacency(count: nodes.count, pairs: edges.indices.lazy.map { (edges[$0].source, $0) })
        let inEdges = Adjacency(count: nodes.count, pairs: edges.indices.lazy.map { (edges[$0].destination, $0) })

        // Kahn's algorithm, FIFO.
        var indegree = (0..<nodes.count).map { Int32(inEdges.count($0)) }
        var order = [Int32]()
        order.reserveCapacity(nodes.count)
        for i in 0..<nodes.count where indegree[i] == 0 { order.append(Int32(i)) }
        var head = 0
        while head < order.count {
            let node = Int(order[head])
            head += 1
            for e in outEdges[node] {
                let dst = edges[Int(e)].destination
                indegree[dst] -= 1
                if indegree[dst] == 0 { order.append(Int32(dst)) }
            }
        }
        if order.count < nodes.count {
            throw .cycle(Graph.findCycle(nodes: nodes, edges: edges, inEdges: inEdges, indegree: indegree))
        }
        var rank = [Int32](repeating: 0, count: nodes.count)
        for (position, node) in order.enumerated() { rank[Int(node)] = Int32(position) }

        var successorCount = [Int32](repeating: 0, count: nodes.count)
        var lastSeen = [Int32](repeating: -1, count: nodes.count)
        for i in 0..<nodes.count {
            for e in outEdges[i] {
                let dst = edges[Int(e)].destination
                if lastSeen[dst] != Int32(i) {
                    lastSeen[dst] = Int32(i)
                    successorCount[i] += 1
                }
            }
        }

        var classes = [String: Int32]()
        var colocationClass = [Int32](repeating: -1, count: nodes.count)
        for (i, node) in nodes.enumerated() {
            guard let label = node.colocation else { continue }
            if let known = classes[label] { colocationClass[i] = known } else {
                colocationClass[i] = Int32(classes.count)
                classes[label] = Int32(classes.count)
            }
        }

        self.name = name
        self.colocationClass = colocationClass
        self.nodes = nodes
        self.edges = edges
        self.outEdges = outEdges
        self.inEdges = inEdges
        self.topologicalOrder = order
        self.topologicalRank = rank
        self.tensorBase = base
        self.tensorOfEdge = tensorOfEdge
        self.successorCount = successorCount
    }

    /// `GraphLimits`, checked before anything is derived: the adjacency and tensor numbering use
    /// 32-bit indices and the placers sum bytes in `Int`, neither of which may overflow.
    private static func checkLimits(nodes: [Node], edges: [Edge]) throws(GraphError) {
        guard nodes.count <= GraphLimits.maximumNodes else {
            throw .tooLarge("the graph has \(nodes.count) ops, more than the \(GraphLimits.maximumNodes) fedbaechi places")
        }
        guard edges.count <= GraphLimits.maximumEdges else {
            throw .tooLarge("the graph has \(edges.count) edges, more than the \(GraphLimits.maximumEdges) fedbaechi places")
        }
        var tensors = 0
        var total = 0
        func add(_ bytes: Int) -> Bool {
            // Values above 1 TiB or negative are reported, per field, by the checks that follow.
            guard bytes > 0, bytes <= Graph.maximumBytes else { return true }
            total += bytes
            return total <= GraphLimits.maximumTotalBytes
        }
        for node in nodes {
            guard node.outputBytes.count <= GraphLimits.maximumOutputsPerNode else {
                throw .tooLarge("node \(GraphError.quoted(node.name)) has \(node.outputBytes.count) outputs, more than the \(GraphLimits.maximumOutputsPerNode) fedbaechi allows")
            }
            tensors += node.outputBytes.count + 1
            guard tensors <= GraphLimits.maximumTensors else {
                throw .tooLarge("the graph has more than \(GraphLimits.maximumTensors) tensors (output ports and control outputs)")
            }
            var fits = add(node.persistentBytes) && add(node.temporaryBytes)
            for bytes in node.outputBytes where fits { fits = add(bytes) }
            guard fits else {
                throw .tooLarge("the ops' persistent, scratch and output bytes add up to more than 1 PiB")
            }
        }
        for edge in edges where !add(edge.bytes ?? 0) {
            throw .tooLarge("the ops' and edges' bytes add up to more than 1 PiB")
        }
    }

    /// Names the nodes of one cycle among the nodes Kahn's algorithm could not order.
    private static func findCycle(nodes: [Node], edges: [Edge], inEdges: Adjacency, indegree: [Int32]) -> [String] {
        // Every node left has a predecessor that is also left: walk predecessors until one repeats.
        guard var current = indegree.firstIndex(where: { $0 > 0 }) else { return [] }
        var position = [Int: Int]()
        var walk = [Int]()
        while position[current] == nil {
            position[current] = walk.count
            walk.append(current)
            guard let e = inEdges[current].first(where: { indegree[edges[Int($0)].source] > 0 }) else { break }
            current = edges[Int(e)].source
        }
        let cycle = Array(walk[(position[current] ?? 0)...].reversed())
        // Start from the node listed first in the file.
        let first = cycle.indices.min { cycle[$0] < cycle[$1] } ?? 0
        return (cycle[first...] + cycle[..<first]).map { nodes[$0].name }
    }

    /// Bytes a tensor occupies on its producer's device (zero for a control output).
    @inline(__always) public func producerBytes(ofEdge e: Int) -> Int {
        let edge = edges[e]
        return edge.isControl ? 0 : nodes[edge.source].outputBytes[edge.port]
    }

    /// Bytes sent over the link for edge `e` (and held by the receiving device).
    @inline(__always) public func transferBytes(ofEdge e: Int) -> Int {
        let edge = edges[e]
        if let bytes = edge.bytes { return bytes }
        return edge.isControl ? Edge.controlBytes : nodes[edge.source].outputBytes[edge.port]
    }

    /// Communication time of edge `e` between two different devices.
    @inline(__always) public func commMicros(ofEdge e: Int, link: LinkModel) -> Double {
        edges[e].commMicros ?? link.micros(forBytes: transferBytes(ofEdge: e))
    }

    public var totalComputeMicros: Double { nodes.reduce(0) { $0 + $1.computeMicros } }

    /// The node that produces `tensor`.
    public func producer(ofTensor tensor: Int) -> Int {
        var low = 0, high = nodes.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if Int(tensorBase[middle]) <= tensor { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// A tensor as plan files name it: `producer:port`, or `producer:control` for a control output.
    public func tensorName(_ tensor: Int) -> String {
        let producer = producer(ofTensor: tensor)
        let port = tensor - Int(tensorBase[producer])
        return nodes[producer].name + (port == nodes[producer].outputBytes.count ? ":control" : ":\(port)")
    }
}
