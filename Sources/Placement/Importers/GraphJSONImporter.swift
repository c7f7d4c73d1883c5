import Foundation

/// fedbaechi's own graph format (docs/formats.md):
///
///     {"name": "g",
///      "nodes": [{"name": "a", "compute_us": 3, "persistent_bytes": 0, "temporary_bytes": 0,
///                 "output_bytes": [1024], "colocation": "optional label"}],
///      "edges": [{"src": "a", "dst": "b", "output": 0, "bytes": 1024, "comm_us": 12.5, "control": false}]}
///
/// `output` defaults to 0, `bytes` to the output's size, `comm_us` to the link model's time for
/// `bytes`; a `control` edge carries no data and is sent as 4 bytes.
public struct GraphJSONImporter: GraphImporter {
    public init() {}

    public var formatName: String { "graph-json" }

    public func recognizes(_ data: Data) -> Bool {
        guard let keys = JSONScan.leadingKeys(data) else { return false }
        return !keys.isDisjoint(with: ["compute_us", "output_bytes", "src", "dst", "edges"])
            && keys.isDisjoint(with: ["inputs", "cost", "cost_units"])
    }

    struct File: Decodable {
        var name: String?
        var nodes: [FileNode]?
        var edges: [FileEdge]?
    }

    /// Every field optional so a missing one is reported with the node's name.
    struct FileNode: Decodable {
        var name: String?
        var compute_us: Double?
        var persistent_bytes: Double?
        var temporary_bytes: Double?
        var output_bytes: [Double]?
        var colocation: Labels?
        var op: String?
    }

    struct FileEdge: Decodable {
        var src: String?
        var dst: String?
        var output: Double?
        var bytes: Double?
        var comm_us: Double?
        var control: Bool?
    }

    /// A colocation label, or a list of labels any of which is shared.
    struct Labels: Decodable {
        var labels: [String]
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) { labels = [one] } else { labels = try container.decode([String].self) }
        }
    }

    public func importGraph(from data: Data, name: String) throws(GraphError) -> Graph {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch { throw JSONScan.describe(error, data: data) }
        guard let fileNodes = file.nodes else { throw .malformed("the graph has no \"nodes\" list") }
        guard fileNodes.count <= GraphLimits.maximumNodes else {
            throw .tooLarge("the graph has \(fileNodes.count) ops, more than the \(GraphLimits.maximumNodes) fedbaechi places")
        }
        var nodes = [Node]()
        nodes.reserveCapacity(fileNodes.count)
        var labelLists = [[String]]()
        labelLists.reserveCapacity(fileNodes.count)
        for (i, n) in fileNodes.enumerated() {
            guard let nodeName = n.name else { throw .malformed("nodes[\(i)] has no \"name\"") }
            let label = "node \(GraphError.quoted(nodeName))"
            guard let compute = n.compute_us else { throw .malformed("\(label): compute_us is missing") }
            func bytes(_ value: Double?, _ field: String) throws(GraphError) -> Int {
                guard let value else { throw .malformed("\(label): \(field) is missing") }
                guard let whole = JSONScan.wholeBytes(value) else { throw .invalidValue("\(label): \(field) must be a whole number of bytes, not \(value)") }
                return whole
            }
            let persistent = try bytes(n.persistent_bytes, "persistent_bytes")
            let temporary = try bytes(n.temporary_bytes, "temporary_bytes")
            guard let outputs = n.output_bytes else { throw .malformed("\(label): output_bytes is missing") }
            var outputBytes = [Int]()
            outputBytes.reserveCapacity(outputs.count)
            for (port, value) in outputs.enumerated() { outputBytes.append(try bytes(value, "output_bytes[\(port)]")) }
            labelLists.append(n.colocation?.labels ?? [])
            nodes.append(Node(name: nodeName, computeMicros: compute, persistentBytes: persistent,
                              temporaryBytes: temporary, outputBytes: outputBytes, kind: n.op))
        }
        for (i, label) in ColocationLabels.resolve(labelLists).enumerated() { nodes[i].colocation = label }

        var index = [String: Int](minimumCapacity: nodes.count)
        for (i, node) in nodes.enumerated() {
            if index.updateValue(i, forKey: node.name) != nil { throw .duplicateName(node.name) }
        }
        var edges = [Edge]()
        edges.reserveCapacity(file.edges?.count ?? 0)
        var seen = Set<Edge>()
        for (e, fe) in (file.edges ?? []).enumerated() {
            guard let src = fe.src else { throw .malformed("edges[\(e)] has no \"src\"") }
            guard let dst = fe.dst else { throw .malformed("edges[\(e)] has no \"dst\"") }
            guard let s = index[src] else { throw .unknownNode(edge: e, name: src) }
            guard let d = index[dst] else { throw .unknownNode(edge: e, name: dst) }
            let label = "edge \(e) (\(GraphError.escaped(src)) -> \(GraphError.escaped(dst)))"
            var port = 0
            if fe.control == true {
                port = Edge.controlPort
            } else if let output = fe.output {
                guard let whole = JSONScan.wholeBytes(output) else { throw .invalidValue("\(label): output must be a port number, not \(output)") }
                guard whole >= 0 else { throw .invalidValue("\(label): output port is negative (\(whole))") }
                port = whole
            }
            var bytes: Int?
            if let value = fe.bytes {
                guard let whole = JSONScan.wholeBytes(value) else { throw .invalidValue("\(label): bytes must be a whole number, not \(value)") }
                bytes = whole
            }
            let edge = Edge(source: s, destination: d, port: port, bytes: bytes, commMicros: fe.comm_us)
            var key = edge
            key.bytes = nil
            key.commMicros = nil
            guard seen.insert(key).inserted else {
                throw .malformed("\(label): duplicate edge (the same output of \(GraphError.quoted(src)) to \(GraphError.quoted(dst)) twice)")
            }
            edges.append(edge)
        }
        return try Graph(name: file.name ?? name, nodes: nodes, edges: edges)
    }
}
