import Foundation
import TestSupport
import Testing
@testable import Tensors

/// What lets a model-parallel rank work on a model it never holds whole: parameters declared without
/// values, shapes by inference, ops profiled alone on synthetic inputs.
@Suite struct BeyondOneProcessTests {
    @Test(arguments: ModelKind.allCases, [1, 3])
    func inferredShapesAreThoseOfARealStep(_ kind: ModelKind, batch: Int) throws {
        let spec = tinySpec(kind)
        let graph = TrainingGraph(model: spec.build(seed: 5), optimizer: Adam(), seed: 5)
        let feeds = graph.model.feeds(tinyExamples(graph.model, count: batch, steps: spec.steps), 0..<batch)
        let truth = executedShapes(graph, feeds: feeds)
        // Inference needs no parameter values: a model that holds none gives the same shapes.
        let declared = TrainingGraph(model: spec.build(seed: 5, holding: .none), optimizer: Adam(), seed: 5)
        #expect(declared.model.parameters.names.isEmpty)
        #expect(try declared.inferShapes(feeds: feeds.mapValues(\.shape)) == truth)
    }

    @Test func aShapeThatDoesNotFitNamesTheNode() {
        let b = GraphBuilder(name: "broken", seed: 1, holding: .none)
        let x = b.input("images")
        let labels = b.input("labels")
        let w = b.parameter("w", shape: [5, 3], .zeros)
        let logits = b(MatMul(), b(Reshape.flatten(), x, name: "flatten"), w, name: "product")
        let model = b.build(task: .classification(classes: 3), loss: b(SoftmaxCrossEntropy(), logits, labels, name: "loss"),
                            prediction: logits)
        let graph = TrainingGraph(model: model, optimizer: SGD(learningRate: 0.1))
        #expect {
            try graph.inferShapes(feeds: ["images": [2, 1, 28, 28], "labels": [2]])
        } throws: { error in
            let description = "\(error)"
            return description.contains("fwd/product") && description.contains("[2, 784] does not fit weight [5, 3]")
        }
    }

    @Test func aParameterHeldAloneStartsAsInTheWholeModel() throws {
        let spec = tinySpec(.rnnStack)
        let whole = spec.build(seed: 9)
        let part = spec.build(seed: 9, holding: .none)
        #expect(part.parameters.count == 0)
        #expect(part.parameters.declaredCount == whole.parameters.count)
        let chosen = Set(whole.parameters.names.enumerated().filter { $0.offset % 3 == 1 }.map(\.element))
        part.parameters.hold(chosen)
        #expect(Set(part.parameters.names) == chosen)
        for name in chosen { #expect(part.parameters.values(of: name) == whole.parameters.values(of: name), "\(name)") }
        // Holding fewer drops the others; holding them again starts them afresh.
        let one = try #require(chosen.min())
        part.parameters.hold([one])
        #expect(part.parameters.names == [one])
        part.parameters.holdAll()
        #expect(part.parameters.names == whole.parameters.names)
        for name in whole.parameters.names { #expect(part.parameters.values(of: name) == whole.parameters.values(of: name)) }
    }

    @Test(arguments: [ModelKind.lenet, .gruLM])
    func theOpProfileAgreesWithTheWholeStepProfileOnEverythingButTime(_ kind: ModelKind) {
        let spec = tinySpec(kind)
        let whole = TrainingGraph(model: spec.build(seed: 5), optimizer: Adam(), seed: 5)
        let feeds = whole.model.feeds(tinyExamples(whole.model, count: 3, steps: spec.steps), 0..<3)
        let reference = whole.wholeStepProfile(feeds: feeds, repeats: 1)

        let graph = TrainingGraph(model: spec.build(seed: 5, holding: .none), optimizer: Adam(), seed: 5)
        let shapes = try! graph.inferShapes(feeds: feeds.mapValues(\.shape))
        let profiler = OperatorProfiler(graph: graph, shapes: shapes, feeds: feeds, repeats: 1)
        let microseconds = profiler.time(profiler.units)
        let profile = graph.profile(shapes: shapes, microseconds: microseconds)
        #expect(graph.model.parameters.names.isEmpty, "profiling made no parameter")

        var untimed = reference
        for index in untimed.nodes.indices { untimed.nodes[index].computeMicroseconds = profile.nodes[index].computeMicroseconds }
        #expect(profile == untimed)
        // Every op, backward, gradient sum and update was timed; reads and feeds are not ops.
        for (index, node) in graph.nodes.enumerated() where [.forward, .backward, .gradientSum, .update].contains(node.role) {
            #expect(microseconds[index] > 0, "\(node.name)")
        }
    }

    @Test(arguments: [1, 2, 3, 8])
    func sharesSplitTheUnitsAmongRanks(_ ranks: Int) {
        let spec = tinySpec(.inceptionMini)
        let graph = TrainingGraph(model: spec.build(seed: 5, holding: .none), optimizer: Adam(), seed: 5)
        let feeds = graph.model.feeds(tinyExamples(graph.model, count: 2, steps: spec.steps), 0..<2)
        let profiler = OperatorProfiler(graph: graph, shapes: try! graph.inferShapes(feeds: feeds.mapValues(\.shape)),
                                        feeds: feeds, repeats: 1)
        let units = profiler.units
        // Each backward rides with its forward; every other op, sum and update is a unit of its own.
        let covered = units.flatMap(\.nodes)
        #expect(covered.count == Set(covered).count)
        #expect(Set(covered) == Set(graph.nodes.indices.filter { [.forward, .backward, .gradientSum, .update].contains(graph.nodes[$0].role) }))
        for unit in units where unit.nodes.count == 2 {
            guard case .backward(_, let layout) = graph.nodes[unit.nodes[1]].action else { Issue.record("not a backward"); continue }
            #expect(layout.forwardNode == unit.nodes[0])
        }
        let shares = (0..<ranks).map { profiler.share(rank: $0, of: ranks).flatMap(\.nodes) }
        #expect(shares.flatMap { $0 }.sorted() == covered.sorted(), "the shares partition the work")
        let loads = (0..<ranks).map { rank in profiler.share(rank: rank, of: ranks).reduce(0) { $0 + $1.bytes } }
        let largest = units.map(\.bytes).max() ?? 0
        #expect((loads.max() ?? 0) - (loads.min() ?? 0) <= largest, "no rank has more than one unit's bytes over another")
    }
}
