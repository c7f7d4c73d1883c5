import Basics
import Foundation
import Testing
@testable import Placement

/// Plans read from a file and judged (`JudgedPlan`).
@Suite struct JudgedPlanTests {
    func judge(_ text: String, _ graph: Graph, count: Int = 2, memory: Int = ample, colocation: Bool = true) throws(PlanFileError) -> JudgedPlan {
        try JudgedPlan(file: Data(text.utf8), named: "plan.json", graph: graph, link: testLink, devices: devices(count, memory: memory),
                       colocation: colocation)
    }

    func rejection(_ text: String, _ graph: Graph, count: Int = 2) -> String? {
        do {
            _ = try judge(text, graph, count: count)
            return nil
        } catch { return error.description }
    }

    /// A plan written by the planner, read back: the same step, order and memory.
    @Test(arguments: Array(UInt64(1)...15))
    func writtenPlansJudgeToTheirOwnStep(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 977)
        let graph = randomGraph(seed: seed + 40000, nodes: random.between(5, 50))
        let count = random.between(1, 4)
        for algorithm in [Algorithm.mETF, .mSCT, .mTOPO, .auto] {
            let plan = try Planner(graph: graph, link: testLink)
                .plan(algorithm, devices: devices(count), search: SearchOptions(orders: 4, seed: seed)).get()
            let judged = try judge(plan.json(), graph, count: count)
            #expect(judged.followsFileOrder)
            #expect(judged.makespanMicros == plan.makespanMicros, "seed \(seed) \(algorithm.rawValue)")
            #expect(judged.simulation.startMicros == plan.simulation.startMicros)
            #expect(judged.simulation.peakMemoryBytes == plan.simulation.peakMemoryBytes)
            #expect(judged.queueMakespanMicros == plan.queueMakespanMicros)
            #expect(judged.memoryProblem == nil)
        }
    }

    @Test func aPlacementAloneIsOrderedByBaechisSimulator() throws {
        let graph = try fig1()
        let judged = try judge(#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 1}}"#, graph)
        #expect(!judged.followsFileOrder)
        #expect(judged.makespanMicros == 8)
        #expect(judged.makespanMicros == Simulator.simulate(graph, link: testLink, deviceOfNode: [0, 0, 0, 0, 1, 1], deviceCount: 2).makespanMicros)
        #expect(judged.queueMakespanMicros == 8)
    }

    @Test func memoryAboveTheLimitsIsReportedNotRejected() throws {
        let graph = try makeGraph(nodes: [("a", 1), ("b", 1)], edges: [("a", "b", 1)], outputBytes: 100)
        let judged = try judge(#"{"placement": {"a": 0, "b": 0}}"#, graph, memory: 150)
        #expect(judged.devicesOverMemory == [0])
        #expect(judged.memoryProblem?.contains("needs 200 B on device 0") == true)
        let fits = try judge(#"{"placement": {"a": 0, "b": 0}}"#, graph, memory: 200)
        #expect(fits.memoryProblem == nil)
    }

    @Test func badPlansAreRejectedInOneLine() throws {
        let graph = try fig1()
        let cases: [(String, String)] = [
            ("not json", "not a plan file"),
            (#"{"devices": []}"#, "placement is missing"),
            (#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 1, "ghost": 0}}"#, "does not have: \"ghost\""),
            (#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1}}"#, "does not place op \"5\""),
            (#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 2}}"#, "placed on device 2, but there are 2 devices"),
            (#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": "one"}}"#, "expected a number"),
            (#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 1}, "schedule": [], "transfers": []}"#, "does not run \"0\""),
        ]
        for (text, expected) in cases {
            let message = rejection(text, graph)
            #expect(message?.contains(expected) == true, "\(text): \(message ?? "accepted")")
            #expect(message.map { !$0.contains("\n") } == true)
        }
    }

    @Test func aSplitColocationGroupIsRejectedUnlessColocationIsOff() throws {
        var nodes = ["a", "b", "c"].map { Node(name: $0, computeMicros: 1, outputBytes: [1]) }
        nodes[0].colocation = "g"
        nodes[2].colocation = "g"
        let graph = try Graph(name: "g", nodes: nodes, edges: [Edge(source: 0, destination: 1), Edge(source: 1, destination: 2)])
        let split = #"{"placement": {"a": 0, "b": 0, "c": 1}}"#
        #expect(rejection(split, graph)?.contains("ops \"a\" and \"c\" must share a device (colocation \"g\") but are on devices 0 and 1") == true)
        #expect(throws: Never.self) { try judge(split, graph, colocation: false) }
        #expect(rejection(#"{"placement": {"a": 1, "b": 0, "c": 1}}"#, graph) == nil)
    }
}
