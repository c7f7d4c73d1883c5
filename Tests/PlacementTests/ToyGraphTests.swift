import Foundation
import Testing
@testable import Placement

/// Baechi's toy graphs (node compute times and edge communication times, ample memory): fig1 from
/// the paper (reference digest), fig2, fig21 and fig3 from the PyTorch reference code's
/// `dummy_graphs.py` (fig3 is the example of Hanen and Munier's paper, on 3 devices), as the
/// fixtures `Tests/Fixtures/fig*.json` hold them.
enum ToyGraphs {
    static func named(_ name: String) throws -> Graph {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(name).json")
        return try GraphJSONImporter().importGraph(from: try Data(contentsOf: url), name: name)
    }

    /// The fastest step over every placement on `count` devices, by Baechi's simulator.
    static func bestPlacement(_ graph: Graph, count: Int) -> Double {
        let n = graph.nodes.count
        var best = Double.infinity
        var placement = [Int32](repeating: 0, count: n)
        for code in 0..<Int(pow(Double(count), Double(n))) {
            var rest = code
            for i in 0..<n {
                placement[i] = Int32(rest % count)
                rest /= count
            }
            best = min(best, Simulator.simulate(graph, link: .baechi, deviceOfNode: placement, deviceCount: count).makespanMicros)
        }
        return best
    }
}

@Suite struct ToyGraphTests {
    /// Default preprocessing co-places fig1's two branches (each op has one consumer) into one
    /// group: one run gives one device's 12. The default search also places without co-placement
    /// and reaches Baechi's published 8 with m-ETF, m-SCT and auto.
    @Test(arguments: [Algorithm.mETF, .mSCT, .auto])
    func fig1ReachesBaechisPublishedStepWithDefaultFlags(_ algorithm: Algorithm) throws {
        let planner = Planner(graph: try fig1(), link: .baechi)
        let once = try planner.plan(algorithm, devices: devices(2)).get()
        #expect(once.makespanMicros == 12)
        let searched = try Planner(graph: try fig1(), link: .baechi)
            .plan(algorithm, devices: devices(2), search: SearchOptions.standard(for: try fig1())).get()
        #expect(searched.makespanMicros == 8)
        #expect(searched.makespanMicros <= ToyGraphs.bestPlacement(try fig1(), count: 2))
    }

    /// Baechi's m-TOPO (uniform) gives 12 on fig1; so does ours, searched or not.
    @Test func fig1MTopoMatchesBaechi() throws {
        let searched = try Planner(graph: try fig1(), link: .baechi)
            .plan(.mTOPO, devices: devices(2), search: SearchOptions.standard(for: try fig1())).get()
        #expect(searched.makespanMicros <= 12)
    }

    /// The other toy graphs have no published steps; the search with default flags reaches the
    /// best placement in Baechi's simulator, found by trying every placement, or comes within 10%.
    @Test(arguments: [("fig2", 2), ("fig21", 2), ("fig3", 3)])
    func searchReachesTheBestPlacement(_ name: String, _ count: Int) throws {
        let graph = try ToyGraphs.named(name)
        let best = ToyGraphs.bestPlacement(graph, count: count)
        for algorithm in [Algorithm.mETF, .mSCT, .auto] {
            let plan = try Planner(graph: graph, link: .baechi)
                .plan(algorithm, devices: devices(count), search: SearchOptions.standard(for: graph)).get()
            #expect(plan.makespanMicros <= best * 1.1, "\(name) \(algorithm.rawValue): \(plan.makespanMicros) against \(best)")
            #expect(plan.makespanMicros < graph.totalComputeMicros, "\(name) \(algorithm.rawValue): faster than one device")
        }
    }
}
