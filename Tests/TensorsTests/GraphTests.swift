import Foundation
import Testing
@testable import Tensors

@Suite struct GraphTests {
    /// Kahn's algorithm taking the highest-numbered ready node first: a valid order unlike index order.
    func reversedPriorityOrder(_ graph: TrainingGraph) -> [Int] {
        let nodes = graph.executionOrder
        let members = Set(nodes)
        var waiting = [Int: Int]()
        var consumers = [Int: [Int]]()
        for index in nodes {
            let producers = Set(graph.nodes[index].inputs.map(\.node)).filter(members.contains)
            waiting[index] = producers.count
            for p in producers { consumers[p, default: []].append(index) }
        }
        var ready = nodes.filter { waiting[$0] == 0 }
        var order: [Int] = []
        while let next = ready.max() {
            ready.removeAll { $0 == next }
            order.append(next)
            for c in consumers[next] ?? [] {
                waiting[c]! -= 1
                if waiting[c] == 0 { ready.append(c) }
            }
        }
        return order
    }

    func parameters(_ model: Model) -> [[Float]] { model.parameters.names.map { model.parameters.values(of: $0)! } }

    @Test(arguments: [ModelKind.inceptionMini, .rnnStack])
    func anyValidOrderGivesTheSameStep(_ kind: ModelKind) {
        let spec = tinySpec(kind)
        let first = TrainingGraph(model: spec.build(seed: 3), optimizer: Adam(), seed: 3)
        let second = TrainingGraph(model: spec.build(seed: 3), optimizer: Adam(), seed: 3)
        let feeds = first.model.feeds(tinyExamples(first.model, count: 2, steps: spec.steps), 0..<2)
        let order = reversedPriorityOrder(second)
        #expect(order.count == second.executionOrder.count)
        #expect(order != second.executionOrder)
        first.step(feeds, step: 0)
        var values = second.feedValues(feeds)
        second.run(order, values: &values, context: ExecutionContext(training: true, step: 0, seed: 3), keep: [])
        #expect(parameters(first.model) == parameters(second.model))
    }

    /// Splits the step in two as two ranks would: the second part runs from tensors handed over
    /// (injected) rather than computed, and the result matches one whole step.
    @Test func partsRunFromInjectedTensors() {
        let spec = tinySpec(.lenet)
        let whole = TrainingGraph(model: spec.build(seed: 4), optimizer: SGD(learningRate: 0.1), seed: 4)
        let split = TrainingGraph(model: spec.build(seed: 4), optimizer: SGD(learningRate: 0.1), seed: 4)
        let feeds = whole.model.feeds(tinyExamples(whole.model, count: 2, steps: spec.steps), 0..<2)
        whole.step(feeds, step: 0)

        let order = split.executionOrder
        let firstPart = Array(order.prefix(order.count / 2))
        let secondPart = Array(order.dropFirst(order.count / 2))
        var mine = split.feedValues(feeds)
        split.run(firstPart, values: &mine, context: ExecutionContext(step: 0, seed: 4))
        // Only the tensors the second part reads cross over.
        let needed = Set(secondPart.flatMap { split.nodes[$0].inputs }).filter { !secondPart.contains($0.node) }
        var received = Dictionary(uniqueKeysWithValues: needed.map { ($0, mine[$0]!) })
        split.run(secondPart, values: &received, context: ExecutionContext(step: 0, seed: 4))
        #expect(parameters(whole.model) == parameters(split.model))
    }

    @Test func trainingGraphShape() {
        let graph = TrainingGraph(model: tinySpec(.gruLM).build(seed: 1), optimizer: SGD(learningRate: 0.1))
        let roles = graph.nodes.map(\.role)
        let parameterCount = graph.model.parameters.names.count
        #expect(roles.filter { $0 == .variable }.count == parameterCount)
        #expect(roles.filter { $0 == .update }.count == parameterCount)
        // The GRU weights are read by every step, so their gradients meet in sum nodes.
        let steps = tinySpec(.gruLM).steps
        let sumOfWhh = graph.nodes.first { $0.name == "grad/var/gru.w_hh:0" }
        #expect(sumOfWhh?.inputs.count == steps)
        // Each update shares its parameter's colocation group.
        for node in graph.nodes where node.role == .update {
            guard case .update(let name) = node.action else { continue }
            #expect(node.colocation == "param/" + name)
            #expect(graph.nodes.first { $0.name == "var/" + name }?.colocation == node.colocation)
        }
    }

    @Test func profileWritesThePlacementFormat() throws {
        let graph = TrainingGraph(model: tinySpec(.inceptionMini).build(seed: 1), optimizer: Adam())
        let feeds = graph.model.feeds(tinyExamples(graph.model, count: 2, steps: 4), 0..<2)
        let profiled = graph.wholeStepProfile(feeds: feeds, repeats: 3)
        #expect(profiled.nodes.count == graph.nodes.count)
        let byName = Dictionary(uniqueKeysWithValues: profiled.nodes.map { ($0.name, $0) })
        #expect(byName.count == profiled.nodes.count, "names are unique")
        for (node, entry) in zip(graph.nodes, profiled.nodes) {
            #expect(entry.computeMicroseconds >= 1)
            #expect(entry.outputBytes.count == node.outputCount)
            // Shapes of floats: each output's bytes are 4 per element of its shape (an output the
            // step left without a value has no shape and no bytes).
            let shapes = try #require(entry.outputShapes)
            #expect(shapes.count == node.outputCount)
            #expect(zip(shapes, entry.outputBytes).allSatisfy { shape, bytes in
                bytes == 4 * shape.reduce(1, *) || (bytes == 0 && shape.isEmpty)
            }, "\(node.name)")
            switch node.action {
            case .read(let name):
                #expect(entry.persistentBytes == graph.model.parameters.tensor(name)!.count * 4)
            case .update(let name):
                #expect(entry.persistentBytes == 2 * graph.model.parameters.tensor(name)!.count * 4)  // Adam's m, v
            default:
                #expect(entry.persistentBytes == 0)
            }
        }
        // im2col scratch of the stem: (1*3*3 + 4 filters) * 2*28*28 columns of floats.
        #expect(byName["fwd/stem/conv"]?.temporaryBytes == (9 + 4) * 2 * 28 * 28 * 4)
        for edge in profiled.edges {
            let source = try #require(byName[edge.source])
            #expect(byName[edge.destination] != nil)
            #expect(edge.bytes == source.outputBytes[edge.output])
        }
        // Plain JSON with the placement engine's keys.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(profiled)) as? [String: Any]
        let node = try #require((json?["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == "update/out.weight" })
        #expect(Set(node.keys) == ["name", "compute_us", "persistent_bytes", "temporary_bytes", "output_bytes", "output_shapes",
                                   "colocation"])
        // A profile saved before shapes were recorded still reads, without them.
        var old = try #require(json)
        old["nodes"] = (json?["nodes"] as? [[String: Any]])?.map { $0.filter { $0.key != "output_shapes" } }
        let read = try JSONDecoder().decode(TrainingProfile.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(read.nodes.map(\.name) == profiled.nodes.map(\.name))
        #expect(read.outputShapes == nil && profiled.outputShapes != nil)
        let edge = try #require((json?["edges"] as? [[String: Any]])?.first)
        #expect(Set(edge.keys) == ["src", "dst", "output", "bytes"])
    }
}
