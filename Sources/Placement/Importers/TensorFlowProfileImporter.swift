import Foundation

/// The Baechi/TensorFlow profile (`../shared/graphs/README.md`):
/// `{"cost_units": {...}, "nodes": [{"name", "op", "inputs": ["producer:port", "^control"],
/// "colocation_group": ["loc:@name"], "cost": null | {"compute_cost", "output_memory": [..],
/// "temporary_memory", "persistent_memory"}}]}`.
///
/// Baechi's conventions: an unprofiled op takes 1 us and no memory; compute time is at least 1 us;
/// negative sizes count as 0; a control input is a 4-byte tensor; ops that share a colocation
/// entry share a device. The persistent memory of a variable is the buffer its output refers to,
/// so it is taken out of the output's size on the producer (it is resident anyway) but still
/// sent, and held by the receiver, at full size.
public struct TensorFlowProfileImporter: GraphImporter {
    public init() {}

    public var formatName: String { "baechi-tf-profile" }

    public func recognizes(_ data: Data) -> Bool {
        guard let keys = JSONScan.leadingKeys(data) else { return false }
        return !keys.isDisjoint(with: ["inputs", "cost", "cost_units"]) && !keys.contains("compute_us")
    }

    struct File: Decodable {
        var nodes: [ProfileNode]
    }

    struct ProfileNode: Decodable {
        var name: String
        var op: String?
        var inputs: [String]?
        var colocation_group: [String]?
        var cost: Cost?
    }

    struct Cost: Decodable {
        var compute_cost: Double
        var output_memory: [Double]
        var temporary_memory: Double
        var persistent_memory: Double
    }

    public func importGraph(from data: Data, name: String) throws(GraphError) -> Graph {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch { throw JSONScan.describe(error, data: data) }
        guard file.nodes.count <= GraphLimits.maximumNodes else {
            throw .tooLarge("the profile has \(file.nodes.count) ops, more than the \(GraphLimits.maximumNodes) fedbaechi places")
        }
        var index = [String: Int](minimumCapacity: file.nodes.count)
        for (i, node) in file.nodes.enumerated() {
            if index.updateValue(i, forKey: node.name) != nil { throw .duplicateName(node.name) }
        }
        // Negative sizes count as 0; absurd ones are kept absurd (Graph rejects them) without trapping.
        func bytes(_ value: Double) -> Int { value.isFinite && value > 0 ? Int(min(value, 1e18).rounded()) : 0 }

        // Inputs as (producer, port); an unprofiled producer gets as many ports as its consumers use.
        var edges = [Edge]()
        var seen = Set<Edge>()
        var portsUsed = [Int](repeating: 0, count: file.nodes.count)
        for (i, node) in file.nodes.enumerated() {
            for input in node.inputs ?? [] {
                let control = input.hasPrefix("^")
                var producer = control ? String(input.dropFirst()) : input
                var port = control ? Edge.controlPort : 0
                if !control, let colon = producer.lastIndex(of: ":"), let parsed = Int(producer[producer.index(after: colon)...]) {
                    port = parsed
                    producer = String(producer[..<colon])
                }
                guard let source = index[producer] else {
                    throw .malformed("node \(GraphError.quoted(node.name)): input \(GraphError.quoted(input)) names an unknown op")
                }
                // "x:-1" is a negative data port, not a control input that happens to share its number.
                guard control || port >= 0 else { throw .invalidValue("node \(GraphError.quoted(node.name)): input \(GraphError.quoted(input)) has a negative port") }
                guard port < GraphLimits.maximumOutputsPerNode else {
                    throw .tooLarge("node \(GraphError.quoted(node.name)): input \(GraphError.quoted(input)) uses output \(port), more than the \(GraphLimits.maximumOutputsPerNode) outputs an op may have")
                }
                portsUsed[source] = max(portsUsed[source], port + 1)
                let edge = Edge(source: source, destination: i, port: port)
                if seen.insert(edge).inserted { edges.append(edge) }
            }
        }

        // An unprofiled op gets as many zero-sized outputs as its consumers use: count them before
        // allocating, so a few inputs naming high ports cannot demand gigabytes.
        var tensors = 0
        for (i, node) in file.nodes.enumerated() {
            tensors += max(portsUsed[i], node.cost?.output_memory.count ?? 0) + 1
            guard tensors <= GraphLimits.maximumTensors else {
                throw .tooLarge("the profile has more than \(GraphLimits.maximumTensors) tensors (output ports and control outputs)")
            }
        }

        var nodes = [Node]()
        nodes.reserveCapacity(file.nodes.count)
        var fullOutputs = [[Int]]()
        fullOutputs.reserveCapacity(file.nodes.count)
        for (i, n) in file.nodes.enumerated() {
            var node = Node(name: n.name, computeMicros: 1, kind: n.op)
            if let cost = n.cost {
                node.computeMicros = max(1, cost.compute_cost.isFinite ? cost.compute_cost : 1)
                node.temporaryBytes = bytes(cost.temporary_memory)
                node.persistentBytes = bytes(cost.persistent_memory)
                node.outputBytes = cost.output_memory.map(bytes)
                if portsUsed[i] > node.outputBytes.count {
                    throw .invalidValue("node \(GraphError.quoted(n.name)): a consumer uses output \(portsUsed[i] - 1) but the profile lists \(node.outputBytes.count) output(s)")
                }
            } else {
                node.outputBytes = [Int](repeating: 0, count: portsUsed[i])
            }
            fullOutputs.append(node.outputBytes)
            var overlap = node.persistentBytes
            for port in node.outputBytes.indices where overlap > 0 {
                let shared = min(overlap, node.outputBytes[port])
                node.outputBytes[port] -= shared
                overlap -= shared
            }
            nodes.append(node)
        }
        for e in edges.indices where !edges[e].isControl {
            let edge = edges[e]
            if fullOutputs[edge.source][edge.port] != nodes[edge.source].outputBytes[edge.port] {
                edges[e].bytes = fullOutputs[edge.source][edge.port]
            }
        }
        let labels = ColocationLabels.resolve(file.nodes.map { $0.colocation_group ?? [] })
        for i in nodes.indices { nodes[i].colocation = labels[i] }
        return try Graph(name: name, nodes: nodes, edges: edges)
    }
}
