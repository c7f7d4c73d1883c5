import Testing
@testable import Placement

@Suite struct PlacerTests {
    func plan(_ graph: Graph, _ algorithm: Algorithm, devices count: Int, memory: Int = ample,
              options: PreprocessingOptions = .none) throws -> PlacementPlan {
        try Planner(graph: graph, link: .baechi, options: options).plan(algorithm, devices: devices(count, memory: memory)).get()
    }

    @Test(arguments: [Algorithm.mETF, .mSCT])
    func chainStaysOnOneDevice(_ algorithm: Algorithm) throws {
        let graph = try makeGraph(nodes: [("a", 2), ("b", 3), ("c", 4)], edges: [("a", "b", 1), ("b", "c", 1)])
        let result = try plan(graph, algorithm, devices: 3)
        #expect(result.makespanMicros == 9)
        #expect(Set(result.deviceOfNode).count == 1)
    }

    @Test(arguments: [Algorithm.mETF, .mSCT])
    func forkJoinRunsTheBranchesInParallel(_ algorithm: Algorithm) throws {
        // a(1) -> b(10), c(10) -> d(1), 1 us transfers. Optimal on 2 devices: 13 (one transfer on
        // each side of the parallel branch); one device takes 22.
        let graph = try makeGraph(nodes: [("a", 1), ("b", 10), ("c", 10), ("d", 1)],
                                  edges: [("a", "b", 1), ("a", "c", 1), ("b", "d", 1), ("c", "d", 1)])
        let result = try plan(graph, algorithm, devices: 2)
        #expect(result.makespanMicros == 13)
        #expect(result.deviceOfNode[1] != result.deviceOfNode[2])
    }

    @Test(arguments: [Algorithm.mETF, .mSCT])
    func diamondWithCostlyTransfersStaysTogether(_ algorithm: Algorithm) throws {
        let graph = try makeGraph(nodes: [("a", 1), ("b", 1), ("c", 1), ("d", 1)],
                                  edges: [("a", "b", 100), ("a", "c", 100), ("b", "d", 100), ("c", "d", 100)])
        let result = try plan(graph, algorithm, devices: 2)
        #expect(result.makespanMicros == 4)
    }

    @Test func independentChainsGetADeviceEach() throws {
        let graph = try makeGraph(nodes: [("a1", 5), ("b1", 5), ("c1", 5), ("a2", 5), ("b2", 5), ("c2", 5)],
                                  edges: [("a1", "b1", 1), ("b1", "c1", 1), ("a2", "b2", 1), ("b2", "c2", 1)])
        for algorithm in [Algorithm.mETF, .mSCT] {
            #expect(try plan(graph, algorithm, devices: 2).makespanMicros == 15)
        }
        #expect(try plan(graph, .single, devices: 2).makespanMicros == 30)
    }

    @Test func expertSplitsComputeEvenlyInTopologicalOrder() throws {
        let graph = try makeGraph(nodes: [("a", 5), ("b", 5), ("c", 5), ("d", 5)],
                                  edges: [("a", "b", 1), ("b", "c", 1), ("c", "d", 1)])
        #expect(try plan(graph, .expert, devices: 2).deviceOfNode == [0, 0, 1, 1])
    }

    /// Four independent ops with 50 bytes of parameters each.
    func heavy() throws -> Graph {
        try Graph(name: "heavy", nodes: (0..<4).map { Node(name: "p\($0)", computeMicros: 10, persistentBytes: 50) }, edges: [])
    }

    @Test(arguments: [Algorithm.mETF, .mSCT, .mTOPO, .expert, .auto])
    func memoryLimitSpreadsTheParameters(_ algorithm: Algorithm) throws {
        let result = try plan(try heavy(), algorithm, devices: 2, memory: 100)
        #expect(result.simulation.peakMemoryBytes.allSatisfy { $0 <= 100 })
        #expect(result.deviceOfNode.filter { $0 == 0 }.count == 2)
    }

    @Test(arguments: [Algorithm.mETF, .mSCT, .mTOPO, .expert, .single, .auto])
    func noPlanNamesTheOpAndTheMemoryThatWorks(_ algorithm: Algorithm) throws {
        let planner = Planner(graph: try heavy(), link: .baechi, options: .none)
        guard case .failure(let failure) = planner.plan(algorithm, devices: devices(2, memory: 40)) else {
            Issue.record("expected no plan with 40 bytes per device")
            return
        }
        if algorithm != .single { #expect(failure.culprit?.contains("\"p") == true, "\(failure)") }
        #expect(!failure.reason.contains("\n"))
        let smallest = try #require(planner.smallestMemory(for: algorithm, deviceCount: 2))
        let needed = algorithm == .single ? 200 : 100
        #expect(smallest >= needed && smallest <= needed + (1 << 20))
        #expect(throws: Never.self) { try planner.plan(algorithm, devices: devices(2, memory: smallest)).get() }
    }

    @Test func mTOPORespectsEachDevicesLimit() throws {
        // The uniform cap (total / devices + largest) would put three ops on device 0; its limit is 100.
        let graph = try Graph(name: "g", nodes: (0..<6).map { Node(name: "n\($0)", computeMicros: 1, persistentBytes: 40, outputBytes: [0]) },
                              edges: (0..<5).map { Edge(source: $0, destination: $0 + 1, commMicros: 1) })
        let result = try Planner(graph: graph, link: .baechi, options: .none)
            .plan(.mTOPO, devices: [DeviceSpec(name: "small", memoryBytes: 100), DeviceSpec(name: "big", memoryBytes: 1000)]).get()
        #expect(result.deviceOfNode == [0, 0, 1, 1, 1, 1])
        #expect(result.simulation.peakMemoryBytes[0] <= 100)
    }

    @Test func singleUsesTheLargestDevice() throws {
        let graph = try makeGraph(nodes: [("a", 1)], edges: [])
        let result = try Planner(graph: graph, link: .baechi, options: .none)
            .plan(.single, devices: [DeviceSpec(name: "s", memoryBytes: 10), DeviceSpec(name: "l", memoryBytes: 20)]).get()
        #expect(result.deviceOfNode == [1])
    }

    @Test func autoIsNeverSlowerThanOneDevice() throws {
        // Costly transfers: every split loses to one device.
        let graph = try makeGraph(nodes: [("a", 1), ("b", 1), ("c", 1), ("d", 1)],
                                  edges: [("a", "b", 50), ("a", "c", 50), ("b", "d", 50), ("c", "d", 50)])
        let result = try plan(graph, .auto, devices: 4)
        #expect(result.makespanMicros <= graph.totalComputeMicros)
        #expect(!result.candidates.isEmpty)
    }
}

@Suite struct LinearProgramTests {
    func lp(_ graph: Graph, window: Int = FavoriteChildLP.defaultWindowUnits) throws -> FavoriteChildLP {
        try FavoriteChildLP(PlacementGraph(graph: graph, link: .baechi, options: .none), windowUnits: window)
    }

    @Test func fig1OptimumIsEight() throws {
        #expect(abs(try lp(try fig1()).makespanMicros - 8) < 1e-6)
    }

    @Test func parentAndOnlyChildShareADevice() throws {
        // a(2) -> b(3) with a 5 us transfer: x = 0, makespan 5.
        let solution = try lp(try makeGraph(nodes: [("a", 2), ("b", 3)], edges: [("a", "b", 5)]))
        #expect(abs(solution.makespanMicros - 5) < 1e-6)
        #expect(solution.edgeValues[0] < 1e-6)
    }

    @Test func forkSplitsItsFavouriteBudget() throws {
        // a(1) -> b(2), c(2), transfers 4: at most one favourite child, so x_ab + x_ac >= 1 and the
        // relaxation halves both: makespan 1 + 4 * 0.5 + 2 = 5.
        let graph = try makeGraph(nodes: [("a", 1), ("b", 2), ("c", 2)], edges: [("a", "b", 4), ("a", "c", 4)])
        let solution = try lp(graph)
        #expect(abs(solution.makespanMicros - 5) < 1e-6)
        #expect(abs(solution.edgeValues[0] + solution.edgeValues[1] - 1) < 1e-6)
    }

    @Test func joinHasOneFavouriteParent() throws {
        // b(3), c(1) -> d(1), transfers 4: x_bd + x_cd >= 1 (one favourite parent). The optimum
        // balances 3 + 4 x_bd = 1 + 4 x_cd: x_bd = 1/4, x_cd = 3/4, s_d = 4, makespan 5.
        let graph = try makeGraph(nodes: [("b", 3), ("c", 1), ("d", 1)], edges: [("b", "d", 4), ("c", "d", 4)])
        let solution = try lp(graph)
        #expect(abs(solution.makespanMicros - 5) < 1e-6)
        #expect(abs(solution.edgeValues[0] - 0.25) < 1e-6 && abs(solution.edgeValues[1] - 0.75) < 1e-6)
        let pg = PlacementGraph(graph: graph, link: .baechi, options: .none)
        #expect(solution.favoriteChildren(pg, threshold: 0.1) == [-1, -1, -1])
        #expect(solution.favoriteChildren(pg, threshold: 0.3) == [2, -1, -1])
    }

    @Test func windowsGiveAFeasibleUpperBound() throws {
        let graph = SyntheticGraphs.layered(nodes: 600, width: 20, seed: 7)
        let pg = PlacementGraph(graph: graph, link: .baechi, options: .none)
        let exact = try FavoriteChildLP(pg, windowUnits: 10_000)
        let windowed = try FavoriteChildLP(pg, windowUnits: 100)
        #expect(exact.windows == 1 && windowed.windows == 6)
        #expect(windowed.makespanMicros >= exact.makespanMicros - 1e-6)
        #expect(windowed.makespanMicros <= exact.makespanMicros * 1.5)
        // Each parent keeps at most one favourite: the budget holds across windows.
        var budget = [Double](repeating: 0, count: pg.unitCount)
        for (e, x) in windowed.edgeValues.enumerated() {
            #expect(x >= -1e-9 && x <= 1 + 1e-9)
            budget[Int(pg.edgeSource[e])] += 1 - x
        }
        #expect(budget.allSatisfy { $0 <= 1 + 1e-6 })
        let favorites = windowed.favoriteChildren(pg, threshold: 0.1)
        let children = favorites.filter { $0 >= 0 }
        #expect(Set(children).count == children.count)
    }
}
