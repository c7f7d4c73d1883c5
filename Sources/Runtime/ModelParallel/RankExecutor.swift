import Basics
import Foundation
import MPI
import Tensors

/// Time one rank spent in one training step, in seconds.
public struct RankStepTimes: Sendable, Equatable {
    /// Running its own nodes.
    public var compute = 0.0
    /// Blocked on a tensor from another rank (its producer still running, or the transfer in flight)
    /// or on its own sends at the end of the step.
    public var communicationWait = 0.0
    /// The whole step on this rank.
    public var step = 0.0
    /// Neither computing nor waiting: posting messages, bookkeeping, freeing.
    public var other: Double { max(0, step - compute - communicationWait) }
}

/// Runs one rank's share of a training graph, step after step.
///
/// The rank builds the whole model from the seed (so the parameters it owns start exactly as in
/// single-process training), then drops every parameter it does not own. In a step it posts all
/// its receives first, runs its nodes in the plan's order, sends each output to the ranks that
/// read it as soon as the node ends, and frees every value after its last local reader.
public final class RankExecutor {
    public let graph: TrainingGraph
    public let plan: ModelParallelPlan
    public let rank: Int
    private let communicator: Communicator

    /// A value that crosses ranks: who makes it, who reads it, and its tag slot.
    private struct CrossingValue {
        var value: ValueRef
        var source: Int
        var destination: Int
        var slot: Int
    }
    private var incoming: [CrossingValue] = []
    private var outgoing: [ValueRef: [CrossingValue]] = [:]
    private var crossingCount = 0
    /// How many local nodes read each value (fed, local or received).
    private var localReads: [ValueRef: Int] = [:]
    /// Feeds (by name) a local node reads.
    public let neededFeeds: Set<String>
    /// Bytes of the parameters and optimizer state this rank keeps all the time.
    public let persistentBytes: Int
    /// Highest memory held at once in any step so far: persistent, live values, in-flight
    /// message buffers and the running node's scratch memory.
    public private(set) var peakBytes = 0
    private var liveBytes = 0

    public init(graph: TrainingGraph, plan: ModelParallelPlan, communicator: Communicator) throws(ModelParallelError) {
        guard plan.rankCount == communicator.size else {
            throw ModelParallelError(.badInput, "the plan is for \(plan.rankCount) ranks, the job has \(communicator.size)")
        }
        guard plan.rankOfNode.count == graph.nodes.count, plan.shapes.count == graph.nodes.count else {
            throw ModelParallelError(.badInput, "the plan has \(plan.rankOfNode.count) nodes, the training graph \(graph.nodes.count)")
        }
        self.graph = graph
        self.plan = plan
        self.communicator = communicator
        rank = communicator.rank

        // Every (value, reading rank) pair across ranks gets a slot; slots order the tags.
        var seen = Set<[Int]>()
        var feeds = Set<String>()
        let feedName = Dictionary(uniqueKeysWithValues: graph.model.feeds.map { ($0.value, $0.key) })
        for (index, node) in graph.nodes.enumerated() {
            let reader = plan.rankOfNode[index]
            guard reader >= 0 else { continue }
            // In order of appearance: slots must be numbered alike on every rank (Set order is per process).
            var distinct = Set<ValueRef>()
            for input in node.inputs where distinct.insert(input).inserted {
                let producer = plan.rankOfNode[input.node]
                if reader == rank { localReads[input, default: 0] += 1 }
                if producer < 0 {
                    if reader == rank, let name = feedName[input.node] { feeds.insert(name) }
                    continue
                }
                guard producer != reader, seen.insert([input.node, input.port, reader]).inserted else { continue }
                let crossing = CrossingValue(value: input, source: producer, destination: reader, slot: crossingCount)
                crossingCount += 1
                if reader == rank { incoming.append(crossing) }
                if producer == rank { outgoing[input, default: []].append(crossing) }
            }
        }
        neededFeeds = feeds
        guard crossingCount <= MessageTags.World.tensors.count else {
            throw ModelParallelError(.badInput, "the plan sends \(crossingCount) tensors per step, more than the \(MessageTags.World.tensors.count) MPI tags available")
        }

        // Keep only the parameters this rank owns (where their read node runs).
        var owned = 0
        for (index, node) in graph.nodes.enumerated() {
            guard case .read(let parameter) = node.action else { continue }
            if plan.rankOfNode[index] == rank {
                // Weights and optimizer state; the gradient is a value, counted while it is live.
                let memory = graph.parameterMemory(parameter)
                owned += memory.weightBytes + memory.stateBytes
            } else {
                graph.model.parameters.remove(parameter)
            }
        }
        persistentBytes = owned
        peakBytes = owned
    }

    /// The tag of slot `slot` in step `step` (`MessageTags.World.tensor`).
    private func tag(slot: Int, step: UInt64) -> Int {
        MessageTags.World.tensor(slot: slot, crossings: crossingCount, step: step)
    }

    private func allocate(_ bytes: Int) {
        liveBytes += bytes
        peakBytes = max(peakBytes, persistentBytes + liveBytes)
    }

    /// Byte count of a value's tensor from the plan's shapes.
    private func bytes(of value: ValueRef) -> Int { plan.shapes[value.node][value.port].reduce(1, *) * MemoryLayout<Float>.size }

    /// One training step of this rank. `feeds` holds (at least) the inputs in `neededFeeds`.
    /// Returns the loss on rank 0 (received from the loss's rank), nil on other ranks.
    /// Throws `MPIError` when MPI fails, and `LogicError` when the plan or the caller broke an invariant.
    public func step(feeds: [String: Tensor], step: UInt64) throws -> (loss: Float?, times: RankStepTimes) {
        let started = MPIEnvironment.wallTime()
        var times = RankStepTimes()
        var values: [ValueRef: Tensor] = [:]
        for name in neededFeeds {
            guard let index = graph.model.feeds[name], let tensor = feeds[name] else {
                throw LogicError("rank \(rank) was not given the input \(name)")
            }
            values[ValueRef(node: index)] = tensor
            allocate(tensor.byteCount)
        }
        // Receives first, so every transfer finds its buffer waiting.
        var pendingReceives: [ValueRef: ReceiveRequest<Float>] = [:]
        for crossing in incoming {
            let count = bytes(of: crossing.value) / MemoryLayout<Float>.size
            pendingReceives[crossing.value] = try communicator.receiveAsync(
                Float.self, count: count, from: crossing.source, tag: tag(slot: crossing.slot, step: step))
            allocate(count * MemoryLayout<Float>.size)
        }
        var sends: [(request: Request, bytes: Int)] = []
        var remainingReads = localReads
        let context = ExecutionContext(training: true, step: step, seed: graph.seed)
        var lossValue: Float = .nan

        for index in plan.order[rank] {
            let node = graph.nodes[index]
            var inputs: [Tensor] = []
            inputs.reserveCapacity(node.inputs.count)
            for input in node.inputs {
                if values[input] == nil, let request = pendingReceives.removeValue(forKey: input) {
                    let waitStart = MPIEnvironment.wallTime()
                    try Self.patientlyWait(for: [request.request])
                    let data = try request.wait()
                    times.communicationWait += MPIEnvironment.wallTime() - waitStart
                    values[input] = Tensor(shape: plan.shapes[input.node][input.port], data: data)
                }
                guard let value = values[input] else {
                    throw LogicError("rank \(rank): \(node.name) runs before its input \(graph.nodes[input.node].name) exists")
                }
                inputs.append(value)
            }
            let scratch = plan.temporaryBytes[index]
            allocate(scratch)
            let computeStart = MPIEnvironment.wallTime()
            let outputs = graph.execute(index, inputs: inputs, context: context)
            times.compute += MPIEnvironment.wallTime() - computeStart
            liveBytes -= scratch
            for (port, output) in outputs.enumerated() {
                let ref = ValueRef(node: index, port: port)
                if ref == graph.model.loss { lossValue = output.data.first ?? .nan }
                for crossing in outgoing[ref] ?? [] {
                    sends.append((try communicator.sendAsync(output.data, to: crossing.destination,
                                                             tag: tag(slot: crossing.slot, step: step)), output.byteCount))
                    allocate(output.byteCount)
                }
                if remainingReads[ref] != nil {
                    values[ref] = output
                    // A parameter's read aliases the parameter itself: no new memory.
                    if node.role != .variable { allocate(output.byteCount) }
                }
            }
            for input in Set(node.inputs) {
                guard let left = remainingReads[input] else { continue }
                if left <= 1 {
                    remainingReads[input] = nil
                    if let freed = values.removeValue(forKey: input), graph.nodes[input.node].role != .variable {
                        liveBytes -= freed.byteCount
                    }
                } else {
                    remainingReads[input] = left - 1
                }
            }
            // Sends that completed give back their copies.
            var index = 0
            while index < sends.count {
                if try sends[index].request.test() != nil {
                    liveBytes -= sends[index].bytes
                    sends.remove(at: index)
                } else {
                    index += 1
                }
            }
        }
        let waitStart = MPIEnvironment.wallTime()
        try Self.patientlyWait(for: sends.map(\.request))
        times.communicationWait += MPIEnvironment.wallTime() - waitStart
        liveBytes = 0
        guard pendingReceives.isEmpty else {
            throw LogicError("rank \(rank) received \(pendingReceives.count) tensors it never read")
        }

        // The loss goes to rank 0 for progress reports.
        let lossRank = plan.rankOfNode[graph.model.loss.node]
        var loss: Float?
        if rank == lossRank {
            if rank == 0 { loss = lossValue } else { try communicator.send([lossValue], to: 0, tag: MessageTags.World.loss) }
        } else if rank == 0 {
            loss = try communicator.receive(Float.self, count: 1, from: lossRank, tag: MessageTags.World.loss).first
        }
        times.step = MPIEnvironment.wallTime() - started
        return (loss, times)
    }

    /// Waits for `requests` without spinning: ranks usually outnumber cores, and a rank that polls
    /// flat out takes the core from the rank it is waiting for.
    static func patientlyWait(for requests: [Request]) throws(MPIError) {
        var pending = requests
        while !pending.isEmpty {
            var stillPending: [Request] = []
            for request in pending where try request.test() == nil { stillPending.append(request) }
            pending = stillPending
            if !pending.isEmpty { usleep(20) }
        }
    }

    /// Every parameter's current value, gathered on rank 0 from its owner (nil on other ranks).
    public func gatherParameters(names: [String]) throws(MPIError) -> [String: [Float]]? {
        var ownerOf: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            if case .read(let parameter) = node.action { ownerOf[parameter] = plan.rankOfNode[index] }
        }
        var gathered: [String: [Float]] = [:]
        for name in names {
            guard let owner = ownerOf[name] else { continue }
            if owner == rank {
                let values = graph.model.parameters.values(of: name) ?? []
                if rank == 0 { gathered[name] = values } else { try communicator.send(values, to: 0, tag: MessageTags.World.parameters) }
            } else if rank == 0 {
                gathered[name] = try communicator.receive(Float.self, from: owner, tag: MessageTags.World.parameters)
            }
        }
        return rank == 0 ? gathered : nil
    }
}
