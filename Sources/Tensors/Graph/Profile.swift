import Basics
import Foundation

/// What one measured training step of a model was: per node its time, memory and output shapes,
/// per edge its bytes. Saved in the placement engine's graph format (docs/formats.md), so `place`
/// reads a saved profile as it is, and a model-parallel job plans from it.
public struct TrainingProfile: Codable, Sendable, Equatable {
    public struct Node: Codable, Sendable, Equatable {
        public var name: String
        /// Median measured time of the node on this machine, in whole microseconds (at least 1).
        public var computeMicroseconds: Int
        /// Memory that stays on the device: parameters and optimizer state.
        public var persistentBytes: Int
        /// Scratch memory used only while the node runs.
        public var temporaryBytes: Int
        public var outputBytes: [Int]
        /// The shape of each output at the profiled batch; nil in profiles saved before shapes were recorded.
        public var outputShapes: [[Int]]?
        public var colocation: String?

        public init(name: String, computeMicroseconds: Int, persistentBytes: Int, temporaryBytes: Int,
                    outputBytes: [Int], outputShapes: [[Int]]? = nil, colocation: String? = nil) {
            self.name = name
            self.computeMicroseconds = computeMicroseconds
            self.persistentBytes = persistentBytes
            self.temporaryBytes = temporaryBytes
            self.outputBytes = outputBytes
            self.outputShapes = outputShapes
            self.colocation = colocation
        }

        enum CodingKeys: String, CodingKey {
            case name, colocation
            case computeMicroseconds = "compute_us"
            case persistentBytes = "persistent_bytes"
            case temporaryBytes = "temporary_bytes"
            case outputBytes = "output_bytes"
            case outputShapes = "output_shapes"
        }
    }

    public struct Edge: Codable, Sendable, Equatable {
        public var source: String
        public var destination: String
        /// The source's output port.
        public var output: Int
        public var bytes: Int

        enum CodingKeys: String, CodingKey {
            case source = "src", destination = "dst", output, bytes
        }
    }

    public var name: String
    public var nodes: [Node]
    public var edges: [Edge]

    /// The shape of every node output ([node][port] -> shape), when every node recorded its shapes.
    public var outputShapes: [[[Int]]]? {
        var shapes: [[[Int]]] = []
        shapes.reserveCapacity(nodes.count)
        for node in nodes {
            guard let outputShapes = node.outputShapes else { return nil }
            shapes.append(outputShapes)
        }
        return shapes
    }
}

extension TrainingGraph {
    /// Runs the training step on `feeds`, then times every node alone on the values that step
    /// produced (the median of `repeats` runs), and records its memory and output shapes.
    ///
    /// It holds every value of a step at once and needs every parameter: the reference the per-op
    /// profile (`OperatorProfiler`) is measured against, and a tool for models one process can hold.
    /// Update nodes really apply the optimizer while being timed, so profile a throwaway model.
    public func wholeStepProfile(feeds: [String: Tensor], repeats: Int = 7) -> TrainingProfile {
        let context = ExecutionContext(training: true, step: 0, seed: seed)
        var values = feedValues(feeds)
        let order = executionOrder
        for _ in 0..<2 { run(order, values: &values, context: context) }  // warm caches and allocator

        var microseconds: [Double] = []
        for (index, node) in nodes.enumerated() {
            guard node.role != .input else { microseconds.append(1); continue }
            let inputs = node.inputs.map { values[$0]! }
            var samples: [Double] = []
            for _ in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = execute(index, inputs: inputs, context: context)
                samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
            }
            microseconds.append(median(samples))
        }
        let shapes = nodes.indices.map { index in
            (0..<nodes[index].outputCount).map { values[ValueRef(node: index, port: $0)]?.shape ?? [] }
        }
        return profile(shapes: shapes, microseconds: microseconds)
    }

    /// The profile of this graph from every output's shape and every node's time: memory and bytes
    /// follow from the shapes, so a profile needs no value of the model.
    public func profile(shapes: [[[Int]]], microseconds: [Double]) -> TrainingProfile {
        precondition(shapes.count == nodes.count && microseconds.count == nodes.count, "one shape list and one time per node")
        func bytes(_ ref: ValueRef) -> Int { shapes[ref.node][ref.port].reduce(1, *) * MemoryLayout<Float>.size }
        var profiled: [TrainingProfile.Node] = []
        var edges: [TrainingProfile.Edge] = []
        for (index, node) in nodes.enumerated() {
            var persistent = 0
            var temporary = 0
            switch node.action {
            // A parameter's weights stay with its read, its optimizer state with its update; its
            // gradient is a value here, counted on the edge that carries it to the update.
            case .read(let parameter):
                persistent = parameterMemory(parameter).weightBytes
            case .update(let parameter):
                persistent = parameterMemory(parameter).stateBytes
            case .forward(let op):
                temporary = op.forwardTemporaryBytes(node.inputs.map { shapes[$0.node][$0.port] })
            case .backward(let op, let layout):
                temporary = op.backwardTemporaryBytes(nodes[layout.forwardNode].inputs.map { shapes[$0.node][$0.port] })
            case .feed, .sum:
                break
            }
            let outputs = (0..<node.outputCount).map { ValueRef(node: index, port: $0) }
            let micros = node.role == .input ? 1 : microseconds[index]
            profiled.append(TrainingProfile.Node(
                name: node.name, computeMicroseconds: max(1, Int(micros.rounded())), persistentBytes: persistent,
                temporaryBytes: temporary, outputBytes: outputs.map(bytes), outputShapes: shapes[index],
                colocation: node.colocation))
            var seen = Set<ValueRef>()
            for input in node.inputs where seen.insert(input).inserted {
                edges.append(TrainingProfile.Edge(source: nodes[input.node].name, destination: node.name,
                                                  output: input.port, bytes: bytes(input)))
            }
        }
        return TrainingProfile(name: model.name, nodes: profiled, edges: edges)
    }

    /// The memory rule of `parameter` under this graph's optimizer, from its declared shape (held or not).
    public func parameterMemory(_ parameter: String) -> ParameterMemory {
        ParameterMemory(weightBytes: model.parameters.declaration(parameter)?.byteCount ?? 0, stateSlots: optimizer.slotCount)
    }
}
