import Basics
import Testing
@testable import Placement

/// The search over tie-break orders and co-placement (`SearchOptions`, `PlacementSearch`).
@Suite struct SearchTests {
    static let seeds: [UInt64] = Array(1...20)

    @Test(arguments: seeds)
    func sameSeedSamePlan(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 7211)
        let graph = randomGraph(seed: seed + 20000, nodes: random.between(10, 60))
        let count = random.between(2, 4)
        for algorithm in [Algorithm.mETF, .mSCT, .auto] {
            let search = SearchOptions(orders: 12, seed: seed)
            // Separate planners: nothing carried over from one search to the other.
            let first = try Planner(graph: graph, link: testLink).plan(algorithm, devices: devices(count), search: search).get()
            let second = try Planner(graph: graph, link: testLink).plan(algorithm, devices: devices(count), search: search).get()
            #expect(first.deviceOfNode == second.deviceOfNode, "seed \(seed) \(algorithm.rawValue)")
            #expect(first.makespanMicros == second.makespanMicros)
            #expect(first.simulation.nodesOfDevice == second.simulation.nodesOfDevice)
            #expect(first.search?.plansTried == second.search?.plansTried)
        }
    }

    @Test(arguments: seeds)
    func neverSlowerThanOneRunWithoutSearch(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 5501)
        let graph = randomGraph(seed: seed + 30000, nodes: random.between(10, 60))
        let count = random.between(2, 4)
        let planner = Planner(graph: graph, link: testLink)
        for memory in [1 << 40, planner.memoryLowerBound() * 2] {
            for algorithm in [Algorithm.mETF, .mSCT, .mTOPO, .expert, .auto] {
                let once = Planner(graph: graph, link: testLink).plan(algorithm, devices: devices(count, memory: memory))
                let searched = Planner(graph: graph, link: testLink)
                    .plan(algorithm, devices: devices(count, memory: memory), search: SearchOptions(orders: 10, seed: seed))
                guard case .success(let one) = once else { continue }
                let best = try #require(try? searched.get(), "seed \(seed) \(algorithm.rawValue): the search lost the plan without search")
                #expect(best.makespanMicros <= one.makespanMicros, "seed \(seed) \(algorithm.rawValue) \(count)x\(memory)")
            }
        }
    }

    @Test(arguments: Array(UInt64(1)...8))
    func autoIsNeverSlowerThanAnyAlgorithmSearchedAlone(seed: UInt64) throws {
        let graph = randomGraph(seed: seed + 50000, nodes: 40)
        let search = SearchOptions(orders: 8, seed: seed)
        let auto = try Planner(graph: graph, link: testLink).plan(.auto, devices: devices(3), search: search).get()
        for algorithm in [Algorithm.mETF, .mSCT, .mTOPO, .expert, .single] {
            let alone = try Planner(graph: graph, link: testLink).plan(algorithm, devices: devices(3), search: search).get()
            #expect(auto.makespanMicros <= alone.makespanMicros, "seed \(seed): auto against \(algorithm.rawValue)")
        }
    }

    @Test func searchTriesWhatItSays() throws {
        let graph = randomGraph(seed: 42, nodes: 40)
        let plan = try Planner(graph: graph, link: testLink)
            .plan(.mETF, devices: devices(3), search: SearchOptions(orders: 12, seed: 5)).get()
        let search = try #require(plan.search)
        // Two arms (co-placement on and off), 12 places each: the first 3 rounds for both, then
        // the faster arm takes the slower one's remaining places.
        #expect(search.arms.map(\.coPlacement) == [true, false])
        #expect(search.plansTried == 24)
        #expect(search.arms.map(\.plansTried).sorted() == [4, 20])
        #expect(search.plansFitting == 24)
        let fastest = try #require(search.fastestMicros)
        #expect(fastest == plan.makespanMicros)
        #expect(search.arms.compactMap(\.fastestMicros).min() == fastest)
        #expect(try #require(search.slowestMicros) >= search.medianMicros!)
        #expect(search.arms.contains { $0.coPlacement == plan.placementGraph.options.coPlacement && $0.fastestMicros == fastest })
    }

    @Test func coPlacementTurnedOffStaysOff() throws {
        let graph = randomGraph(seed: 43, nodes: 30)
        let planner = Planner(graph: graph, link: testLink, options: PreprocessingOptions(coPlacement: false))
        let plan = try planner.plan(.mSCT, devices: devices(2), search: SearchOptions(orders: 6)).get()
        #expect(plan.search?.arms.map(\.coPlacement) == [false])
        #expect(plan.search?.plansTried == 6)
        #expect(!plan.placementGraph.options.coPlacement)
    }

    @Test func aSpentBudgetLeavesTheFirstOrders() throws {
        let graph = randomGraph(seed: 44, nodes: 30)
        let plan = try Planner(graph: graph, link: testLink)
            .plan(.mETF, devices: devices(2), search: SearchOptions(orders: 1000, budgetSeconds: 1e-9)).get()
        // Every arm places once with the topological order, whatever the budget.
        #expect(plan.search?.plansTried == 2)
        #expect(plan.search?.stoppedByBudget == true)
    }

    @Test func tieBreakOrdersAreSeededPermutations() throws {
        let pg = PlacementGraph(graph: randomGraph(seed: 45, nodes: 50), link: testLink)
        let a = TieBreak.shuffled(seed: 9).priority(pg)
        #expect(a == TieBreak.shuffled(seed: 9).priority(pg))
        #expect(a != TieBreak.shuffled(seed: 10).priority(pg))
        #expect(a.sorted() == Array(0..<Int32(pg.unitCount)))
        #expect(TieBreak.topological.priority(pg) == Array(0..<Int32(pg.unitCount)))
    }
}
