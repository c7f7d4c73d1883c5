import Testing
@testable import Placement

@Suite struct SimulatorTests {
    func simulate(_ graph: Graph, _ devices: [Int32], count: Int = 2) -> SimulationResult {
        Simulator.simulate(graph, link: .baechi, deviceOfNode: devices, deviceCount: count)
    }

    @Test func chainOnOneDevice() throws {
        let graph = try makeGraph(nodes: [("a", 2), ("b", 3), ("c", 1)], edges: [("a", "b", 4), ("b", "c", 4)])
        let result = simulate(graph, [0, 0, 0])
        #expect(result.startMicros == [0, 2, 5])
        #expect(result.makespanMicros == 6)
        #expect(result.transfers.isEmpty)
    }

    @Test func chainAcrossDevicesPaysEachTransfer() throws {
        let graph = try makeGraph(nodes: [("a", 2), ("b", 3), ("c", 1)], edges: [("a", "b", 4), ("b", "c", 4)])
        let result = simulate(graph, [0, 1, 0])
        // a 0-2, send 2-6, b 6-9, send 9-13, c 13-14.
        #expect(result.startMicros == [0, 6, 13])
        #expect(result.makespanMicros == 14)
        #expect(result.transfers.map { [$0.startMicros, $0.endMicros] } == [[2, 6], [9, 13]])
    }

    @Test func receivedTensorIsCached() throws {
        let graph = try makeGraph(nodes: [("a", 1), ("b", 2), ("c", 2)], edges: [("a", "b", 5), ("a", "c", 5)])
        let result = simulate(graph, [0, 1, 1])
        #expect(result.transfers.count == 1)
        // a 0-1, one transfer 1-6, then b 6-8 and c 8-10 on device 1.
        #expect(result.makespanMicros == 10)
    }

    @Test func oneChannelForSendsAndReceives() throws {
        // Two tensors leave device 0 for device 1: the second waits for the first (3 us each).
        let graph = try makeGraph(nodes: [("a", 1), ("b", 1), ("x", 1), ("y", 1)],
                                  edges: [("a", "b", 1), ("a", "x", 3), ("b", "y", 3)])
        let result = simulate(graph, [0, 0, 1, 1])
        // a 0-1; a->x 1-4; b 1-2; b->y waits for the channel: 4-7; x 4-5; y 7-8.
        #expect(result.startMicros == [0, 1, 4, 7])
        #expect(result.transfers.map(\.startMicros) == [1, 4])

        // A device receiving cannot send at the same time: c on device 1 must wait to send.
        let busy = try makeGraph(nodes: [("a", 1), ("c", 1), ("x", 1), ("z", 1)],
                                 edges: [("a", "x", 5), ("c", "z", 1)])
        let result2 = simulate(busy, [0, 1, 1, 0])
        // a 0-1 and c 0-1; a->x holds both channels 1-6; c->z starts at 6, ends 7.
        #expect(result2.startMicros[3] == 7)
    }

    @Test func fig1PlacementFromTheDigest() throws {
        let result = simulate(try fig1(), [0, 0, 0, 0, 1, 1])
        #expect(result.makespanMicros == 8)
    }

    @Test func memoryOfAChain() throws {
        var nodes = [Node(name: "a", computeMicros: 1, temporaryBytes: 10, outputBytes: [100]),
                     Node(name: "b", computeMicros: 1, persistentBytes: 1000, temporaryBytes: 20, outputBytes: [50]),
                     Node(name: "c", computeMicros: 1, temporaryBytes: 5, outputBytes: [7])]
        let graph = try Graph(name: "g", nodes: nodes, edges: [Edge(source: 0, destination: 1), Edge(source: 1, destination: 2)])
        let result = simulate(graph, [0, 0, 0], count: 1)
        // t=1: parameters 1000 + a's output 100 + b's scratch 20 + b's output 50.
        #expect(result.peakMemoryBytes == [1170])
        #expect(result.peakTimeMicros == [1])
        #expect(result.peakNode == [1])
        #expect(result.persistentBytes == [1000])
        // Scratch memory larger than anything else peaks while its op runs.
        nodes[2].temporaryBytes = 500
        let graph2 = try Graph(name: "g", nodes: nodes, edges: graph.edges)
        // t=2: 1000 + b's output 50 + c's scratch 500 + c's output 7 (a's output was released at t=2).
        #expect(simulate(graph2, [0, 0, 0], count: 1).peakMemoryBytes == [1557])
    }

    @Test func receivedCopyHeldUntilItsLastConsumer() throws {
        let graph = try Graph(name: "g", nodes: [Node(name: "a", computeMicros: 1, outputBytes: [100]),
                                                  Node(name: "b", computeMicros: 1, outputBytes: [30])],
                              edges: [Edge(source: 0, destination: 1, commMicros: 2)])
        let result = simulate(graph, [0, 1])
        // a 0-1 on device 0, its output until b ends (4); copy on device 1 from 1 to 4, b 3-4 with output 30.
        #expect(result.peakMemoryBytes == [100, 130])
        let profile = MemoryProfile(result, graph: graph)
        #expect(profile.timeline[1].last?.bytes == 30)
    }
}

@Suite struct PreprocessingTests {
    @Test func coPlacementJoinsAnOpWithItsOnlyConsumer() throws {
        let graph = try makeGraph(nodes: [("a", 1), ("b", 1), ("c", 1)], edges: [("a", "b", 1), ("a", "c", 1), ("b", "c", 1)])
        let pg = PlacementGraph(graph: graph, link: .baechi, options: PreprocessingOptions(fusion: false))
        #expect(pg.units[0].group != pg.units[1].group)
        #expect(pg.units[1].group == pg.units[2].group)
        let fused = PlacementGraph(graph: graph, link: .baechi)
        #expect(fused.unitCount == 2)
        #expect(fused.units[1].members == [1, 2])
    }

    @Test func fusedUnitKeepsItsInternalTensors() throws {
        let graph = try Graph(name: "g", nodes: [
            Node(name: "a", computeMicros: 1, temporaryBytes: 10, outputBytes: [100]),
            Node(name: "b", computeMicros: 2, persistentBytes: 9, temporaryBytes: 20, outputBytes: [50]),
            Node(name: "c", computeMicros: 3, persistentBytes: 1, temporaryBytes: 5, outputBytes: [7]),
            Node(name: "d", computeMicros: 1), Node(name: "e", computeMicros: 1),
        ], edges: [Edge(source: 0, destination: 1), Edge(source: 1, destination: 2),
                   Edge(source: 2, destination: 3), Edge(source: 2, destination: 4)])
        let pg = PlacementGraph(graph: graph, link: .baechi)
        let unit = pg.units[Int(pg.unitOfNode[0])]
        #expect(unit.members == [0, 1, 2])
        #expect(unit.computeMicros == 6)
        #expect(unit.persistentBytes == 10)
        // While b runs: its scratch 20, a's output 100 (b reads it) and b's own output 50.
        #expect(unit.temporaryBytes == 170)
        #expect(unit.outputBytes == 7)
    }

    @Test func cycleGuardKeepsApartWhatAnotherPathJoins() throws {
        // a and b must share a device; a -> c -> b also joins them, so a->b is not contracted.
        var nodes = [("a", 1.0), ("b", 1.0), ("c", 1.0)].map { Node(name: $0.0, computeMicros: $0.1, outputBytes: [1]) }
        nodes[0].colocation = "g"
        nodes[1].colocation = "g"
        let edges = [Edge(source: 0, destination: 1), Edge(source: 0, destination: 2), Edge(source: 2, destination: 1)]
        let graph = try Graph(name: "g", nodes: nodes, edges: edges)
        let pg = PlacementGraph(graph: graph, link: .baechi, options: PreprocessingOptions(coPlacement: false))
        #expect(pg.unitCount == 3)
        #expect(pg.units[Int(pg.unitOfNode[0])].group == pg.units[Int(pg.unitOfNode[1])].group)
        let plan = try Planner(graph: graph, link: .baechi, options: PreprocessingOptions(coPlacement: false))
            .plan(.mETF, devices: devices(2)).get()
        #expect(plan.deviceOfNode[0] == plan.deviceOfNode[1])
    }

    @Test func pathCheckFusesWhenNoOtherPathExists() throws {
        // a -> b inside a group, a also feeds x and y also feeds b, but nothing else leads from a to b.
        var nodes = ["a", "b", "x", "y"].map { Node(name: $0, computeMicros: 1, outputBytes: [1]) }
        nodes[0].colocation = "g"
        nodes[1].colocation = "g"
        let edges = [Edge(source: 0, destination: 1), Edge(source: 0, destination: 2), Edge(source: 3, destination: 1)]
        let graph = try Graph(name: "g", nodes: nodes, edges: edges)
        let checked = PlacementGraph(graph: graph, link: .baechi, options: PreprocessingOptions(coPlacement: false))
        #expect(checked.unitOfNode[0] == checked.unitOfNode[1])
        let guarded = PlacementGraph(graph: graph, link: .baechi, options: PreprocessingOptions(coPlacement: false, fusionPathCheck: false))
        #expect(guarded.unitOfNode[0] != guarded.unitOfNode[1])
    }

    @Test func nodeWithoutEdgesJoinsItsGroup() throws {
        var nodes = ["a", "b", "lonely"].map { Node(name: $0, computeMicros: 1, outputBytes: [1]) }
        nodes[0].colocation = "g"
        nodes[2].colocation = "g"
        let graph = try Graph(name: "g", nodes: nodes, edges: [Edge(source: 0, destination: 1)])
        let pg = PlacementGraph(graph: graph, link: .baechi, options: PreprocessingOptions(coPlacement: false))
        #expect(pg.unitOfNode[2] == pg.unitOfNode[0])
    }

    @Test func everythingOffMeansOneUnitPerNode() throws {
        let pg = PlacementGraph(graph: try fig1(), link: .baechi, options: .none)
        #expect(pg.unitCount == 6 && pg.groupCount == 6)
        #expect(pg.edgeSource.count == 6)
    }
}
