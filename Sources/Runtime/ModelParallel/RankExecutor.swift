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

/// Runs one rank's share of a training graph, step after step, and its share of the forward pass
/// that scores the model.
///
/// The rank holds only the parameters it owns, initialised from their own seeds (so they start
/// exactly as in single-process training, whatever the placement); it never makes the others. In a
/// pass it posts all its receives first, runs its nodes in the plan's order, sends each output to the
/// ranks that read it as soon as the node ends, and frees every value after its last local reader.
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

    /// What one kind of pass runs on this rank and which messages it exchanges: the training step
    /// (every node) or the evaluation pass (the forward nodes the prediction and the loss depend on).
    private struct Pass {
        var order: [Int]
        var incoming: [CrossingValue] = []
        var outgoing: [ValueRef: [CrossingValue]] = [:]
        var crossingCount = 0
        /// How many local nodes read each value (fed, local or received).
        var localReads: [ValueRef: Int] = [:]
        /// Feeds (by name) a local node reads.
        var neededFeeds = Set<String>()
        /// Values that go to rank 0 after the pass, with their tags.
        var reported: [(value: ValueRef, tag: Int)]
        var tags: Range<Int>
        var training: Bool
        /// What the run of this pass numbered `step` is called in a message naming a lost peer: "step 42"
        /// (counted from 1, as progress is), "evaluation pass 3".
        func name(_ step: UInt64) -> String { training ? "step \(step + 1)" : "evaluation pass \(step)" }

        init(graph: TrainingGraph, plan: ModelParallelPlan, rank: Int, nodes: Set<Int>?,
             reported: [(value: ValueRef, tag: Int)], tags: Range<Int>, training: Bool) throws(ModelParallelError) {
            order = plan.order[rank].filter { nodes?.contains($0) ?? true }
            self.reported = reported
            self.tags = tags
            self.training = training
            // Every (value, reading rank) pair across ranks gets a slot; slots order the tags.
            var seen = Set<[Int]>()
            let feedName = Dictionary(uniqueKeysWithValues: graph.model.feeds.map { ($0.value, $0.key) })
            for (index, node) in graph.nodes.enumerated() where nodes?.contains(index) ?? true {
                let reader = plan.rankOfNode[index]
                guard reader >= 0 else { continue }
                // In order of appearance: slots must be numbered alike on every rank (Set order is per process).
                var distinct = Set<ValueRef>()
                for input in node.inputs where distinct.insert(input).inserted {
                    let producer = plan.rankOfNode[input.node]
                    if reader == rank { localReads[input, default: 0] += 1 }
                    if producer < 0 {
                        if reader == rank, let name = feedName[input.node] { neededFeeds.insert(name) }
                        continue
                    }
                    guard producer != reader, seen.insert([input.node, input.port, reader]).inserted else { continue }
                    let crossing = CrossingValue(value: input, source: producer, destination: reader, slot: crossingCount)
                    crossingCount += 1
                    if reader == rank { incoming.append(crossing) }
                    if producer == rank { outgoing[input, default: []].append(crossing) }
                }
            }
            guard crossingCount <= tags.count else {
                throw ModelParallelError(.badInput, "the plan sends \(crossingCount) tensors per pass, more than the \(tags.count) MPI tags available")
            }
        }

        func tag(slot: Int, step: UInt64) -> Int {
            MessageTags.World.tensor(slot: slot, crossings: crossingCount, step: step, in: tags)
        }
    }

    private let training: Pass
    private let evaluation: Pass
    private var evaluationPasses: UInt64 = 0
    /// Shapes of every node output for evaluation batches of other sizes than training's, inferred once per size.
    private var evaluationShapes: [Int: [[[Int]]]] = [:]
    /// Feeds (by name) this rank's nodes read in a training step.
    public var neededFeeds: Set<String> { training.neededFeeds }
    /// Feeds (by name) this rank's nodes read in an evaluation pass.
    public var neededEvaluationFeeds: Set<String> { evaluation.neededFeeds }
    /// Bytes of the parameters and optimizer state this rank keeps all the time.
    public let persistentBytes: Int
    /// Highest memory held at once in any pass so far: persistent, live values, in-flight
    /// message buffers and the running node's scratch memory.
    public private(set) var peakBytes = 0
    /// What an out-of-memory report says the rank held: persistent and live, kept current for its handler.
    private var liveBytes = 0 {
        didSet { RankMemoryGuard.heldBytes = persistentBytes + liveBytes }
    }

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
        let model = graph.model
        training = try Pass(graph: graph, plan: plan, rank: rank, nodes: nil, reported: [(model.loss, MessageTags.World.loss)],
                            tags: MessageTags.World.tensors, training: true)
        evaluation = try Pass(graph: graph, plan: plan, rank: rank, nodes: Set(graph.ancestors(of: [model.prediction, model.loss])),
                              reported: [(model.prediction, MessageTags.World.prediction), (model.loss, MessageTags.World.loss)],
                              tags: MessageTags.World.evaluationTensors, training: false)

        // Hold exactly the parameters this rank owns (where their read node runs).
        var owned = Set<String>()
        var ownedBytes = 0
        for (index, node) in graph.nodes.enumerated() {
            guard case .read(let parameter) = node.action, plan.rankOfNode[index] == rank else { continue }
            owned.insert(parameter)
            // Weights and optimizer state; the gradient is a value, counted while it is live.
            let memory = graph.parameterMemory(parameter)
            ownedBytes += memory.weightBytes + memory.stateBytes
        }
        model.parameters.hold(owned)
        persistentBytes = ownedBytes
        peakBytes = ownedBytes
    }

    private func allocate(_ bytes: Int) {
        liveBytes += bytes
        peakBytes = max(peakBytes, persistentBytes + liveBytes)
    }

    /// One training step of this rank. `feeds` holds (at least) the inputs in `neededFeeds`.
    /// Returns the loss on rank 0 (received from the loss's rank), nil on other ranks.
    /// Throws `MPIError` when MPI fails, and `LogicError` when the plan or the caller broke an invariant.
    public func step(feeds: [String: Tensor], step: UInt64) throws -> (loss: Float?, times: RankStepTimes) {
        let (reported, times) = try run(training, feeds: feeds, shapes: plan.shapes, step: step)
        return (reported?.first?.data.first, times)
    }

    /// The forward pass of one batch of held-out examples, in inference mode (no dropout), on every
    /// rank: `feeds` holds (at least) the inputs in `neededEvaluationFeeds`, and `batchSize` is the
    /// batch's size on every rank. Returns the logits and the mean loss on rank 0, nil elsewhere.
    public func evaluate(feeds: [String: Tensor], batchSize: Int) throws -> (logits: Tensor, loss: Float)? {
        let shapes = try shapes(batchSize: batchSize)
        evaluationPasses += 1
        let (reported, _) = try run(evaluation, feeds: feeds, shapes: shapes, step: evaluationPasses)
        guard let reported else { return nil }
        return (reported[0], reported[1].data.first ?? .nan)
    }

    /// Every output's shape for a batch of `batchSize`: the plan's for the training batch, inferred otherwise.
    private func shapes(batchSize: Int) throws -> [[[Int]]] {
        let feedNodes = graph.model.feeds
        if feedNodes.values.allSatisfy({ plan.shapes[$0][0].first == batchSize }) { return plan.shapes }
        if let known = evaluationShapes[batchSize] { return known }
        let feedShapes = feedNodes.mapValues { node in
            var shape = plan.shapes[node][0]
            if !shape.isEmpty { shape[0] = batchSize }
            return shape
        }
        let inferred = try graph.inferShapes(feeds: feedShapes)
        evaluationShapes[batchSize] = inferred
        return inferred
    }

    /// Runs `pass` once: returns the reported values on rank 0 (nil elsewhere) and this rank's times.
    private func run(_ pass: Pass, feeds: [String: Tensor], shapes: [[[Int]]], step: UInt64) throws -> (reported: [Tensor]?, times: RankStepTimes) {
        let started = MPIEnvironment.wallTime()
        var times = RankStepTimes()
        var values: [ValueRef: Tensor] = [:]
        func bytes(_ value: ValueRef) -> Int { shapes[value.node][value.port].reduce(1, *) * MemoryLayout<Float>.size }
        // Each live value's holders: its local copy and its sends in flight (which share its storage).
        // Its memory counts once, from when it is made or received until the last holder lets go.
        var holders: [ValueRef: Int] = [:]
        func hold(_ value: ValueRef, _ count: Int) {
            guard count > 0 else { return }
            holders[value] = count
            allocate(bytes(value))
        }
        func release(_ value: ValueRef) {
            guard let count = holders[value] else { return }  // a parameter's read: the parameter's own memory
            if count > 1 { holders[value] = count - 1 } else { holders[value] = nil; liveBytes -= bytes(value) }
        }
        for name in pass.neededFeeds {
            guard let index = graph.model.feeds[name], let tensor = feeds[name] else {
                throw LogicError("rank \(rank) was not given the input \(name)")
            }
            values[ValueRef(node: index)] = tensor
            hold(ValueRef(node: index), 1)
        }
        // Receives first, so every transfer finds its buffer waiting.
        var pendingReceives: [ValueRef: ReceiveRequest<Float>] = [:]
        var sources: [ValueRef: Int] = [:]
        for crossing in pass.incoming {
            sources[crossing.value] = crossing.source
            pendingReceives[crossing.value] = try communicator.receiveAsync(
                Float.self, count: bytes(crossing.value) / MemoryLayout<Float>.size, from: crossing.source,
                tag: pass.tag(slot: crossing.slot, step: step))
            hold(crossing.value, 1)
        }
        var sends: [(request: Request, value: ValueRef, destination: Int)] = []
        // Sends that completed let go of their values.
        func collectCompletedSends() throws {
            var index = 0
            while index < sends.count {
                if try sends[index].request.test() != nil {
                    release(sends[index].value)
                    sends.remove(at: index)
                } else {
                    index += 1
                }
            }
        }
        var remainingReads = pass.localReads
        let context = ExecutionContext(training: pass.training, step: step, seed: graph.seed)
        var kept: [ValueRef: Tensor] = [:]
        let reportedValues = Set(pass.reported.map(\.value))

        for index in pass.order {
            let node = graph.nodes[index]
            var inputs: [Tensor] = []
            inputs.reserveCapacity(node.inputs.count)
            for input in node.inputs {
                if values[input] == nil, let request = pendingReceives.removeValue(forKey: input) {
                    let waitStart = MPIEnvironment.wallTime()
                    try PeerWatch.shared.waiting(for: [sources[input]].compactMap { $0 },
                                                 "\(pass.name(step))'s input \(graph.nodes[input.node].name)") {
                        () throws(MPIError) in try Self.patientlyWait(for: [request.request])
                    }
                    let data = try request.wait()
                    times.communicationWait += MPIEnvironment.wallTime() - waitStart
                    values[input] = Tensor(shape: shapes[input.node][input.port], data: data)
                }
                guard let value = values[input] else {
                    throw LogicError("rank \(rank): \(node.name) runs before its input \(graph.nodes[input.node].name) exists")
                }
                inputs.append(value)
            }
            // An update changes its parameter in place: a send still holding the parameter would make it copy.
            if node.role == .update { try collectCompletedSends() }
            let scratch = plan.temporaryBytes[index]
            allocate(scratch)
            let computeStart = MPIEnvironment.wallTime()
            let outputs = graph.execute(index, inputs: inputs, context: context)
            times.compute += MPIEnvironment.wallTime() - computeStart
            liveBytes -= scratch
            for (port, output) in outputs.enumerated() {
                let ref = ValueRef(node: index, port: port)
                if reportedValues.contains(ref) { kept[ref] = output }
                let crossings = pass.outgoing[ref] ?? []
                let keptLocally = remainingReads[ref] != nil
                // A parameter's read hands over the parameter itself: no new memory.
                if node.role != .variable { hold(ref, (keptLocally ? 1 : 0) + crossings.count) }
                for crossing in crossings {
                    sends.append((try communicator.sendAsync(sharing: output.data, to: crossing.destination,
                                                             tag: pass.tag(slot: crossing.slot, step: step)), ref, crossing.destination))
                }
                if keptLocally { values[ref] = output }
            }
            for input in Set(node.inputs) {
                guard let left = remainingReads[input] else { continue }
                if left <= 1 {
                    remainingReads[input] = nil
                    if values.removeValue(forKey: input) != nil { release(input) }
                } else {
                    remainingReads[input] = left - 1
                }
            }
            try collectCompletedSends()
        }
        let waitStart = MPIEnvironment.wallTime()
        try PeerWatch.shared.waiting(for: Array(Set(sends.map(\.destination))).sorted(), "its sends of \(pass.name(step)) to arrive") {
            () throws(MPIError) in try Self.patientlyWait(for: sends.map(\.request))
        }
        times.communicationWait += MPIEnvironment.wallTime() - waitStart
        liveBytes = 0
        guard pendingReceives.isEmpty else {
            throw LogicError("rank \(rank) received \(pendingReceives.count) tensors it never read")
        }

        // The reported values go to rank 0, from the ranks that computed them.
        var reported: [Tensor] = []
        for (value, tag) in pass.reported {
            let owner = plan.rankOfNode[value.node]
            if rank == owner {
                guard let tensor = kept[value] else { throw LogicError("rank \(rank) did not compute \(graph.nodes[value.node].name)") }
                if rank == 0 { reported.append(tensor) } else {
                    try PeerWatch.shared.waiting(for: [0], "rank 0 to take its result of \(pass.name(step))") {
                        () throws(MPIError) in try communicator.send(tensor.data, to: 0, tag: tag)
                    }
                }
            } else if rank == 0 {
                let count = bytes(value) / MemoryLayout<Float>.size
                let data = try PeerWatch.shared.waiting(for: [owner], "the result of \(pass.name(step))") {
                    () throws(MPIError) in try communicator.receive(Float.self, count: count, from: owner, tag: tag)
                }
                reported.append(Tensor(shape: shapes[value.node][value.port], data: data))
            }
        }
        times.step = MPIEnvironment.wallTime() - started
        return (rank == 0 ? reported : nil, times)
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
