import Basics
import Testing
@testable import Placement

/// `Simulator.replay`: a placement run in a given order, and the placers' own orders.
@Suite struct ScheduleTests {
    static let seeds: [UInt64] = Array(1...25)

    /// A random placement of `graph` on `count` devices.
    func randomPlacement(_ graph: Graph, count: Int, seed: UInt64) -> [Int32] {
        var random = SplitMix64(seed: seed)
        return graph.nodes.map { _ in Int32(random.below(count)) }
    }

    @Test(arguments: seeds)
    func replayingTheQueueOrderGivesTheQueueStep(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 4099)
        let graph = randomGraph(seed: seed + 7000, nodes: random.between(2, 50))
        let count = random.between(1, 4)
        let placement = randomPlacement(graph, count: count, seed: seed)
        let queue = Simulator.simulate(graph, link: testLink, deviceOfNode: placement, deviceCount: count)
        let replay = try Simulator.replay(graph, link: testLink, deviceOfNode: placement, deviceCount: count, schedule: queue.schedule)
        #expect(replay.startMicros == queue.startMicros, "seed \(seed)")
        #expect(replay.endMicros == queue.endMicros)
        #expect(replay.transfers == queue.transfers)
        #expect(replay.peakMemoryBytes == queue.peakMemoryBytes)
        #expect(replay.nodesOfDevice == queue.nodesOfDevice)
    }

    @Test func devicesRunTheirNodesInTheGivenOrder() throws {
        // a (3 us) and b (1 us) have no inputs; Baechi's queue runs a first (topological rank).
        let graph = try makeGraph(nodes: [("a", 3), ("b", 1), ("c", 1)], edges: [("a", "c", 1), ("b", "c", 1)])
        let queue = Simulator.simulate(graph, link: .baechi, deviceOfNode: [0, 0, 0], deviceCount: 1)
        #expect(queue.startMicros == [0, 3, 4])
        let replay = try Simulator.replay(graph, link: .baechi, deviceOfNode: [0, 0, 0], deviceCount: 1,
                                          schedule: Schedule(nodesOfDevice: [[1, 0, 2]], transfers: []))
        #expect(replay.startMicros == [1, 0, 4])
        #expect(replay.order(ofDevice: 0) == [1, 0, 2])
    }

    @Test func channelsCarryTransfersInTheGivenOrder() throws {
        // a then b on device 0 (1 us each), each sending 3 us to x and y on device 1.
        let graph = try makeGraph(nodes: [("a", 1), ("b", 1), ("x", 1), ("y", 1)], edges: [("a", "x", 3), ("b", "y", 3)])
        let placement: [Int32] = [0, 0, 1, 1]
        let aFirst = Schedule(nodesOfDevice: [[0, 1], [2, 3]], transfers: [.init(edge: 0, toDevice: 1), .init(edge: 1, toDevice: 1)])
        // a 0-1, a->x 1-4, b 1-2, b->y 4-7, x 4-5, y 7-8.
        let first = try Simulator.replay(graph, link: .baechi, deviceOfNode: placement, deviceCount: 2, schedule: aFirst)
        #expect(first.startMicros == [0, 1, 4, 7])
        // b's tensor first: it waits for b to end (2), then a's goes 5-8; x waits for it.
        var bFirst = aFirst
        bFirst.transfers.reverse()
        bFirst.nodesOfDevice[1] = [3, 2]
        let second = try Simulator.replay(graph, link: .baechi, deviceOfNode: placement, deviceCount: 2, schedule: bFirst)
        #expect(second.transfers.map { [$0.startMicros, $0.endMicros] } == [[2, 5], [5, 8]])
        #expect(second.startMicros == [0, 1, 8, 5])
        #expect(second.makespanMicros == 9)
    }

    @Test func schedulesThatDoNotFitThePlacementAreRejected() throws {
        let graph = try makeGraph(nodes: [("a", 1), ("b", 1), ("c", 1)], edges: [("a", "b", 1), ("a", "c", 1)])
        let placement: [Int32] = [0, 0, 1]
        let send = ScheduledTransfer(edge: 1, toDevice: 1)
        func rejection(_ schedule: Schedule) -> String? {
            do {
                _ = try Simulator.replay(graph, link: .baechi, deviceOfNode: placement, deviceCount: 2, schedule: schedule)
                return nil
            } catch { return error.description }
        }
        #expect(rejection(Schedule(nodesOfDevice: [[0, 1], [2]], transfers: [send])) == nil)
        #expect(rejection(Schedule(nodesOfDevice: [[0], [2]], transfers: [send]))?.contains("does not run \"b\"") == true)
        #expect(rejection(Schedule(nodesOfDevice: [[0, 1, 2], []], transfers: [send]))?.contains("runs \"c\" on device 0") == true)
        #expect(rejection(Schedule(nodesOfDevice: [[0, 1, 1], [2]], transfers: [send]))?.contains("twice") == true)
        #expect(rejection(Schedule(nodesOfDevice: [[0, 1], [2]], transfers: []))?.contains("does not send \"a:0\" to device 1") == true)
        #expect(rejection(Schedule(nodesOfDevice: [[0, 1], [2]], transfers: [send, send]))?.contains("twice") == true)
        let stray = ScheduledTransfer(edge: 0, toDevice: 1)
        // a -> b stays on device 0: nothing is sent for it.
        #expect(rejection(Schedule(nodesOfDevice: [[0, 1], [2]], transfers: [send, stray]))?.contains("does not need it") == true)
        #expect(rejection(Schedule(nodesOfDevice: [[1, 0], [2]], transfers: [send]))?.contains("contradicts the graph") == true)
    }

    /// The plan's step is the placer's own order replayed: never later than the placer predicted.
    @Test(arguments: seeds)
    func replayOfThePlacersOrderIsNeverSlowerThanItsPrediction(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 811)
        let graph = randomGraph(seed: seed + 9000, nodes: random.between(5, 50))
        let options = PreprocessingOptions(coPlacement: random.below(2) == 0, fusion: random.below(2) == 0)
        let planner = Planner(graph: graph, link: testLink, options: options)
        let count = random.between(1, 4)
        for memory in [1 << 40, planner.memoryLowerBound() * 2] {
            for algorithm in [Algorithm.mETF, .mSCT] {
                guard case .success(let plan) = planner.plan(algorithm, devices: devices(count, memory: memory)) else { continue }
                let predicted = try #require(plan.predictedMakespanMicros)
                #expect(plan.makespanMicros <= predicted + 1e-9, "seed \(seed) \(algorithm.rawValue)")
                // Each device runs its nodes in the order of their start, one after the other.
                for d in 0..<count {
                    let order = plan.simulation.order(ofDevice: d).map(Int.init)
                    for (a, b) in zip(order, order.dropFirst()) {
                        #expect(plan.simulation.startMicros[b] >= plan.simulation.endMicros[a], "seed \(seed): device \(d) in order")
                    }
                }
            }
        }
    }

    /// Without fusion a unit is a node and, with memory to spare, m-ETF never holds a unit back:
    /// the replay then is exactly the schedule the placer built.
    @Test(arguments: seeds)
    func withoutFusionTheReplayIsThePlacersSchedule(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 613)
        let graph = randomGraph(seed: seed + 11000, nodes: random.between(5, 50))
        let planner = Planner(graph: graph, link: testLink, options: .none)
        let plan = try planner.plan(.mETF, devices: devices(random.between(2, 4))).get()
        #expect(plan.makespanMicros == plan.predictedMakespanMicros, "seed \(seed)")
    }
}
