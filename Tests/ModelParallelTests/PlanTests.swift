import Foundation
import Placement
import Runtime
import Tensors
import Testing

/// Plans without MPI: every node placed once, colocation held, memory limits obeyed.
@Suite struct ModelParallelPlanTests {
    func configuration(_ kind: ModelKind, _ algorithm: Algorithm, memory: Int = 1 << 30) -> ModelParallelConfiguration {
        ModelParallelConfiguration(spec: tinySpec(kind), optimizer: Adam(learningRate: 0.01), seed: 3, algorithm: algorithm,
                                   memoryBytes: memory, profileRepeats: 1)
    }

    func plan(_ kind: ModelKind, _ algorithm: Algorithm, ranks: Int, memory: Int = 1 << 30) throws -> (ModelParallelPlan, TrainingGraph) {
        let c = configuration(kind, algorithm, memory: memory)
        let graph = TrainingGraph(model: c.spec.build(seed: c.seed), optimizer: c.optimizer, seed: c.seed)
        let feeds = syntheticFeeds(graph.model, batch: 4, index: 0, seed: 3, tokens: c.spec.steps)
        return (try ModelParallelJob.makePlan(c, ranks: ranks, feeds: feeds), graph)
    }

    @Test(arguments: ModelKind.allCases)
    func everyNodeOnceAndColocationHolds(_ kind: ModelKind) throws {
        for (ranks, algorithm) in [(2, Algorithm.mSCT), (3, .mETF), (4, .mTOPO), (2, .expert)] {
            let (plan, graph) = try plan(kind, algorithm, ranks: ranks)
            let placed = plan.order.flatMap { $0 }
            let expected = graph.nodes.indices.filter { graph.nodes[$0].role != .input }
            #expect(placed.sorted() == expected, "\(kind) \(algorithm): each non-input node exactly once")
            for (rank, order) in plan.order.enumerated() {
                #expect(order.allSatisfy { plan.rankOfNode[$0] == rank })
                // The order respects every local edge.
                var position: [Int: Int] = [:]
                for (i, node) in order.enumerated() { position[node] = i }
                for node in order {
                    for input in graph.nodes[node].inputs where plan.rankOfNode[input.node] == rank {
                        #expect(position[input.node]! < position[node]!, "\(graph.nodes[node].name) after its input")
                    }
                }
            }
            for (index, node) in graph.nodes.enumerated() {
                if case .backward(_, let layout) = node.action {
                    #expect(plan.rankOfNode[index] == plan.rankOfNode[layout.forwardNode], "\(node.name) on its forward op's rank")
                }
                if let group = node.colocation, group.hasPrefix("param/") {
                    let read = graph.index(of: "var/" + group.dropFirst("param/".count))!
                    #expect(plan.rankOfNode[index] == plan.rankOfNode[read], "\(node.name) with its parameter")
                }
            }
        }
    }

    /// A limit below what one rank needs: one rank fails with a one-line reason, four ranks succeed
    /// with every rank's simulated peak within the limit.
    @Test func memoryLimitForcesASplit() throws {
        let c = ModelParallelConfiguration(spec: splitSpec, optimizer: Adam(learningRate: 0.01), seed: 3, algorithm: .mETF,
                                           memoryBytes: 1 << 30, profileRepeats: 1)
        let graph = TrainingGraph(model: splitSpec.build(seed: 3), optimizer: c.optimizer, seed: 3)
        let feeds = syntheticFeeds(graph.model, batch: 4, index: 0, seed: 3, tokens: splitSpec.steps)
        let whole = try ModelParallelJob.makePlan(c, ranks: 1, feeds: feeds)
        // Parameters alone, with Adam's two slots, take 3 x 4 bytes each: one rank needs at least that.
        #expect(whole.predictedPeakBytes[0] >= 3 * 4 * graph.model.parameters.count)
        let split = try #require(try splitPlan(c, ranks: 4, feeds: feeds))
        #expect(split.memoryLimitBytes < whole.predictedPeakBytes[0])
        #expect(throws: ModelParallelError.self) {
            var limited = c
            limited.memoryBytes = split.memoryLimitBytes
            return try ModelParallelJob.makePlan(limited, ranks: 1, feeds: feeds)
        }
        #expect(split.order.filter { !$0.isEmpty }.count >= 2)
        #expect(split.predictedPeakBytes.allSatisfy { $0 <= split.memoryLimitBytes })
    }

    @Test func planRoundTripsThroughJSON() throws {
        let (plan, _) = try plan(.lenet, .mSCT, ranks: 2)
        #expect(try ModelParallelPlan.decode(try plan.json()) == plan)
    }

    /// The placement graph built in memory from a profile is the one `place` reads from the saved profile.
    @Test(arguments: [ModelKind.lenet, .gruLM])
    func inMemoryGraphIsTheSavedOne(_ kind: ModelKind) throws {
        let graph = TrainingGraph(model: tinySpec(kind).build(seed: 2), optimizer: Adam(), seed: 2)
        let feeds = syntheticFeeds(graph.model, batch: 3, index: 0, seed: 2, tokens: tinySpec(kind).steps)
        var profile = graph.wholeStepProfile(feeds: feeds, repeats: 1)
        profile.nodes[1].colocation = "together"
        profile.nodes[2].colocation = "together"
        let built = try profile.placementGraph()
        let read = try GraphJSONImporter().importGraph(from: try JSONEncoder().encode(profile), name: "other name")
        #expect(built.name == read.name)
        #expect(built.nodes == read.nodes)
        #expect(built.edges == read.edges)
        #expect(built.nodes.map(\.name) == graph.nodes.map(\.name), "node i is training-graph node i")
    }

    /// Shapes come with the profile; a saved profile without them (the format before shapes were
    /// recorded) or of another batch still plans, with the batch's shapes from one step.
    @Test func savedProfilesGiveTheBatchShapes() throws {
        let c = configuration(.lenet, .mETF)
        let graph = TrainingGraph(model: c.spec.build(seed: c.seed), optimizer: c.optimizer, seed: c.seed)
        let feeds = syntheticFeeds(graph.model, batch: 4, index: 0, seed: 3, tokens: c.spec.steps)
        let expected = executedShapes(of: c.spec, optimizer: c.optimizer, seed: c.seed, feeds: feeds)
        #expect(expected.flatMap { $0 }.contains { $0.first == 4 }, "batch-sized outputs")
        #expect(try ModelParallelJob.makePlan(c, ranks: 2, feeds: feeds).shapes == expected)

        let profile = TrainingGraph(model: c.spec.build(seed: c.seed), optimizer: c.optimizer, seed: c.seed)
            .wholeStepProfile(feeds: feeds, repeats: 1)
        var withoutShapes = profile
        for i in withoutShapes.nodes.indices { withoutShapes.nodes[i].outputShapes = nil }
        let otherBatch = TrainingGraph(model: c.spec.build(seed: c.seed), optimizer: c.optimizer, seed: c.seed)
            .wholeStepProfile(feeds: syntheticFeeds(graph.model, batch: 2, index: 0, seed: 3, tokens: c.spec.steps), repeats: 1)
        for saved in [profile, withoutShapes, otherBatch] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("fedbaechi-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: path) }
            try JSONEncoder().encode(saved).write(to: path)
            var fromFile = c
            fromFile.profilePath = path.path
            #expect(try ModelParallelJob.makePlan(fromFile, ranks: 2, feeds: feeds).shapes == expected)
        }
    }

    @Test func profileOfAnotherModelIsRejected() throws {
        let lenet = TrainingGraph(model: tinySpec(.lenet).build(seed: 1), optimizer: Adam(), seed: 1)
        let mlp = TrainingGraph(model: tinySpec(.mlp).build(seed: 1), optimizer: Adam(), seed: 1)
        let feeds = syntheticFeeds(mlp.model, batch: 2, index: 0, seed: 1, tokens: 4)
        let profile = mlp.wholeStepProfile(feeds: feeds, repeats: 1)
        #expect(throws: ModelParallelError.self) {
            try ModelParallelPlan.make(graph: lenet, profile: profile, algorithm: .mETF, ranks: 2, memoryBytes: 1 << 30)
        }
    }
}
