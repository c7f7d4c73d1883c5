import Basics
import Foundation
import Placement
import Tensors

/// Where every node of a training graph runs and in which order, for one job.
///
/// Rank 0 makes it once (from one profile: timings measured on different ranks would differ and
/// give different plans) and broadcasts it as JSON, so every rank executes the same plan.
public struct ModelParallelPlan: Codable, Sendable, Equatable {
    public var algorithm: String
    public var rankCount: Int
    /// The per-rank memory the plan was made for.
    public var memoryLimitBytes: Int
    /// Rank of each training-graph node; -1 for fed inputs, which every rank that reads them makes itself.
    public var rankOfNode: [Int]
    /// Each rank's nodes in the order the simulator ran them (a valid order: the simulated step is one).
    public var order: [[Int]]
    /// Shape of every node output, for receive buffers: [node][port] -> shape.
    public var shapes: [[[Int]]]
    /// Scratch bytes of every node while it runs (from the profile).
    public var temporaryBytes: [Int]
    public var predictedMakespanMicros: Double
    public var predictedPeakBytes: [Int]
    /// Time the simulator has each rank computing per step (nil in plans saved before it was kept, and
    /// in plans made by hand): beside each rank's measured compute, it shows where a prediction is off.
    public var predictedComputeMicros: [Double]?
    public var placementSeconds: Double
    /// Wall time of the job's shared profiling, and how many ranks shared it (nil: a saved profile).
    public var profilingSeconds: Double?
    public var profilingRanks: Int?

    /// Ranks that run no node at all.
    public var idleRanks: [Int] { order.indices.filter { order[$0].isEmpty } }

    public func json() throws -> [UInt8] { Array(try JSONEncoder().encode(self)) }

    public static func decode(_ bytes: [UInt8]) throws -> ModelParallelPlan {
        try JSONDecoder().decode(ModelParallelPlan.self, from: Data(bytes))
    }
}

/// Why a model-parallel job cannot start or continue, in one line.
public struct ModelParallelError: UserFacingError, Sendable {
    public enum Kind: Sendable { case badInput, noPlanFits, runtime }
    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    public var exitStatus: ExitStatus {
        switch kind {
        case .badInput: .badInput
        case .noPlanFits: .noPlanFits
        case .runtime: .runtime
        }
    }
}

extension ModelParallelPlan {
    /// The link between ranks of one machine that the simulator assumes unless it is given measured
    /// links (`train model-parallel --links`): shared-memory MPI, with ranks oversubscribing cores, so
    /// latency is a scheduler slice rather than a wire's.
    public static let localLink = LinkModel(bytesPerSecond: 2e9, latencyMicros: 50)

    /// Places `profile` (the graph's measured nodes, with their output shapes) on `ranks` devices of
    /// `memoryBytes` each, device i being rank i, joined by `links`.
    ///
    /// Every backward node is colocated with its forward node (Baechi's `colocate_grads_with_ops`),
    /// on top of the profile's own groups (a parameter's read, gradient sum and update). The placer
    /// searches tie-break orders as `fedbaechi place` does by default (from `searchSeed`): the fastest
    /// simulated plan that fits wins, and tight memory limits find plans a single run misses.
    public static func make(graph: TrainingGraph, profile: TrainingProfile,
                            algorithm: Algorithm, ranks: Int, memoryBytes: Int,
                            links: Links = Links(localLink), searchSeed: UInt64 = 1) throws(ModelParallelError) -> ModelParallelPlan {
        guard profile.nodes.map(\.name) == graph.nodes.map(\.name) else {
            throw ModelParallelError(.badInput, "the profile \(profile.name) does not describe this model's training graph "
                                     + "(\(profile.nodes.count) nodes, the graph has \(graph.nodes.count))")
        }
        guard let shapes = profile.outputShapes else {
            throw ModelParallelError(.badInput, "the profile \(profile.name) has no output shapes")
        }
        var colocated = profile
        for (index, node) in graph.nodes.enumerated() {
            guard case .backward(_, let layout) = node.action else { continue }
            let label = "op/" + graph.nodes[layout.forwardNode].name
            colocated.nodes[index].colocation = label
            colocated.nodes[layout.forwardNode].colocation = label
        }
        let placementGraph: Graph
        do {
            placementGraph = try colocated.placementGraph()
        } catch {
            throw ModelParallelError(.badInput, "profile \(profile.name): \(error)")
        }
        let planner = Planner(graph: placementGraph, links: links)
        let plan: PlacementPlan
        switch planner.plan(algorithm, devices: DeviceSpec.uniform(count: ranks, memoryBytes: memoryBytes),
                            search: SearchOptions.standard(for: placementGraph, seed: searchSeed)) {
        case .success(let made): plan = made
        case .failure(let failure):
            var message = "no plan fits \(ranks) rank\(ranks == 1 ? "" : "s") of \(Quantity.formatBytes(memoryBytes)) with \(algorithm.rawValue): \(failure.reason)"
            if let smallest = planner.smallestMemory(for: algorithm, deviceCount: ranks) {
                message += "; it fits with \(Quantity.formatBytes(smallest)) per rank"
            }
            throw ModelParallelError(.noPlanFits, message)
        }
        // Node i of the placement graph is node i of the training graph.
        var rankOfNode = [Int](repeating: -1, count: graph.nodes.count)
        for (index, device) in plan.deviceOfNode.enumerated() where graph.nodes[index].role != .input {
            rankOfNode[index] = Int(device)
        }
        let order = (0..<ranks).map { rank in
            plan.simulation.order(ofDevice: rank).map { Int($0) }.filter { graph.nodes[$0].role != .input }
        }
        return ModelParallelPlan(
            algorithm: algorithm.rawValue, rankCount: ranks, memoryLimitBytes: memoryBytes, rankOfNode: rankOfNode,
            order: order, shapes: shapes, temporaryBytes: profile.nodes.map(\.temporaryBytes),
            predictedMakespanMicros: plan.makespanMicros, predictedPeakBytes: plan.simulation.peakMemoryBytes,
            predictedComputeMicros: plan.simulation.busyMicros, placementSeconds: plan.placementSeconds)
    }

    /// A plan that puts every node on `rank` (in the graph's execution order): the reference for
    /// "everything on one rank" and for plans made by hand.
    public static func allOn(rank: Int, of ranks: Int, graph: TrainingGraph, shapes: [[[Int]]],
                             memoryBytes: Int = Int.max / 8) -> ModelParallelPlan {
        let rankOfNode = graph.nodes.map { $0.role == .input ? -1 : rank }
        var order = [[Int]](repeating: [], count: ranks)
        order[rank] = graph.executionOrder
        return ModelParallelPlan(algorithm: "single", rankCount: ranks, memoryLimitBytes: memoryBytes, rankOfNode: rankOfNode,
                                 order: order, shapes: shapes, temporaryBytes: graph.nodes.map { _ in 0 },
                                 predictedMakespanMicros: 0, predictedPeakBytes: [Int](repeating: 0, count: ranks),
                                 predictedComputeMicros: nil, placementSeconds: 0)
    }
}

extension TrainingProfile {
    /// The profile as the placement engine's graph, built in memory: node i of the graph is node i
    /// of the profile (and so of the training graph it was measured on).
    public func placementGraph() throws(GraphError) -> Graph {
        var index = [String: Int](minimumCapacity: nodes.count)
        for (i, node) in nodes.enumerated() {
            if index.updateValue(i, forKey: node.name) != nil { throw .duplicateName(node.name) }
        }
        let placed = nodes.map {
            Placement.Node(name: $0.name, computeMicros: Double($0.computeMicroseconds), persistentBytes: $0.persistentBytes,
                           temporaryBytes: $0.temporaryBytes, outputBytes: $0.outputBytes, colocation: $0.colocation)
        }
        var connections = [Placement.Edge]()
        connections.reserveCapacity(edges.count)
        for (e, edge) in edges.enumerated() {
            guard let source = index[edge.source] else { throw .unknownNode(edge: e, name: edge.source) }
            guard let destination = index[edge.destination] else { throw .unknownNode(edge: e, name: edge.destination) }
            connections.append(Placement.Edge(source: source, destination: destination, port: edge.output, bytes: edge.bytes))
        }
        return try Graph(name: name, nodes: placed, edges: connections)
    }
}
