import Basics
import Foundation

/// Times a training graph's ops one at a time on synthetic inputs of their shapes, so a model is
/// profiled without ever holding it whole: at any moment the profiler holds one op's inputs,
/// outputs and scratch memory. The work comes in units that a job can share among its ranks.
public struct OperatorProfiler {
    public let graph: TrainingGraph
    /// Every node output's shape ([node][port]), from `TrainingGraph.inferShapes`.
    public let shapes: [[[Int]]]
    /// A batch of the fed inputs (synthetic or real): embeddings and losses read valid ids and labels from them.
    public let feeds: [String: Tensor]
    /// Timed runs per node after one untimed run; the median is kept.
    public let repeats: Int

    /// Nodes timed together: a forward node with its backward node (which reads the forward's
    /// outputs, so they are made by running it), or one gradient sum or update.
    public struct Unit: Sendable, Equatable {
        public var nodes: [Int]
        /// Bytes the unit reads and writes: how work is shared out among ranks.
        public var bytes: Int
    }

    public init(graph: TrainingGraph, shapes: [[[Int]]], feeds: [String: Tensor], repeats: Int) {
        precondition(shapes.count == graph.nodes.count, "one shape list per node")
        self.graph = graph
        self.shapes = shapes
        self.feeds = feeds
        self.repeats = max(1, repeats)
    }

    private func bytes(_ ref: ValueRef) -> Int { shapes[ref.node][ref.port].reduce(1, *) * MemoryLayout<Float>.size }

    /// Every unit of work. A parameter's read is not timed: it hands over the parameter's storage.
    public var units: [Unit] {
        var backwardOf: [Int: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            if case .backward(_, let layout) = node.action { backwardOf[layout.forwardNode] = index }
        }
        var units: [Unit] = []
        for (index, node) in graph.nodes.enumerated() {
            let members: [Int]
            switch node.role {
            case .forward: members = [index] + (backwardOf[index].map { [$0] } ?? [])
            case .gradientSum, .update: members = [index]
            case .input, .variable, .backward: continue
            }
            let touched = members.reduce(0) { total, member in
                total + graph.nodes[member].inputs.reduce(0) { $0 + bytes($1) }
                    + (0..<graph.nodes[member].outputCount).reduce(0) { $0 + bytes(ValueRef(node: member, port: $1)) }
            }
            units.append(Unit(nodes: members, bytes: touched))
        }
        return units
    }

    /// The units of `rank` among `ranks`: the largest first, each to the rank with the least bytes so far,
    /// so each rank's share of the work is about the same. Every rank computes the same split.
    public func share(rank: Int, of ranks: Int) -> [Unit] {
        var load = [Int](repeating: 0, count: max(1, ranks))
        var mine: [Unit] = []
        let ordered = units.enumerated().sorted { ($0.element.bytes, $1.offset) > ($1.element.bytes, $0.offset) }
        for (_, unit) in ordered {
            let least = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            load[least] += max(1, unit.bytes)
            if least == rank { mine.append(unit) }
        }
        return mine
    }

    /// Microseconds of each node of `unit`.
    public func time(_ unit: Unit) -> [Int: Double] {
        var random = SplitMix64(seed: graph.seed, stream: "profile/" + graph.nodes[unit.nodes[0]].name)
        func synthetic(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = 2 * random.nextUnitFloat() - 1 } }
        }
        let context = ExecutionContext(training: true, step: 0, seed: graph.seed)
        let feedName = Dictionary(uniqueKeysWithValues: graph.model.feeds.map { ($0.value, $0.key) })
        var times: [Int: Double] = [:]
        let first = graph.nodes[unit.nodes[0]]
        switch first.action {
        case .forward(let op):
            let inputs = first.inputs.enumerated().map { position, ref -> Tensor in
                if let name = feedName[ref.node], let fed = feeds[name] { return fed }
                // Ids and labels that are not fed: zeros are valid for every one of them.
                if op.nonDifferentiableInputs.contains(position) { return Tensor(zeros: shapes[ref.node][ref.port]) }
                return synthetic(shapes[ref.node][ref.port])
            }
            var outputs: [Tensor] = []
            times[unit.nodes[0]] = Self.measure(repeats) { outputs = graph.execute(unit.nodes[0], inputs: inputs, context: context) }
            guard unit.nodes.count > 1, case .backward(_, let layout) = graph.nodes[unit.nodes[1]].action else { break }
            let backwardInputs = layout.readInputs.map { inputs[$0] } + layout.readOutputs.map { outputs[$0] }
                + layout.gradientOutputs.map { synthetic(outputs[$0].shape) }
            outputs = []  // what backward does not read is dropped before it runs
            times[unit.nodes[1]] = Self.measure(repeats) { _ = graph.execute(unit.nodes[1], inputs: backwardInputs, context: context) }
        case .sum:
            let inputs = first.inputs.map { synthetic(shapes[$0.node][$0.port]) }
            times[unit.nodes[0]] = Self.measure(repeats) { _ = graph.execute(unit.nodes[0], inputs: inputs, context: context) }
        case .update:
            // The optimizer on a stand-in for the parameter: what the update node does to the real one.
            let gradient = synthetic(shapes[first.inputs[0].node][first.inputs[0].port])
            var value = synthetic(gradient.shape).data
            var state = OptimizerState(slots: graph.optimizer.slotCount, count: value.count)
            times[unit.nodes[0]] = Self.measure(repeats) { graph.optimizer.update(&value, gradient: gradient.data, state: &state) }
        case .feed, .read, .backward:
            break
        }
        return times
    }

    /// Microseconds of every node in `units` (others 0).
    public func time(_ units: [Unit]) -> [Double] {
        var microseconds = [Double](repeating: 0, count: graph.nodes.count)
        for unit in units { for (node, micros) in time(unit) { microseconds[node] = micros } }
        return microseconds
    }

    /// The median of `repeats` timed runs after one untimed one. Each run counts the smaller of its
    /// wall time and the process's CPU time: ranks that share cores are timed as if each had its own
    /// core (CPU time), and a kernel running on several threads by the time it took (wall time).
    static func measure(_ repeats: Int, _ body: () -> Void) -> Double {
        body()
        var samples: [Double] = []
        for _ in 0..<repeats {
            let wall = DispatchTime.now().uptimeNanoseconds
            let cpu = processCPUNanoseconds()
            body()
            let cpuTaken = Double(processCPUNanoseconds() - cpu)
            let wallTaken = Double(DispatchTime.now().uptimeNanoseconds - wall)
            samples.append(min(wallTaken, cpuTaken) / 1000)
        }
        return median(samples)
    }

    private static func processCPUNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
