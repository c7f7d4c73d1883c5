import Foundation
import Testing
@testable import Placement

/// The Gantt chart of a plan on five devices of which only some are used (a 60-op layered graph that
/// m-ETF spreads over three devices of 30 MB, as `place synthetic:layered:60:3 --devices 5 --memory
/// 30MB --algorithm m-etf` does).
@Suite struct GanttTests {
    let plan: PlacementPlan = {
        let planner = Planner(graph: SyntheticGraphs.layered(nodes: 60, width: 3), link: .baechi)
        guard case .success(let plan) = planner.plan(.mETF, devices: devices(5, memory: 30_000_000)) else { fatalError("no plan") }
        return plan
    }()

    var svg: String { GanttChart.svg(for: plan) }
    var used: [Int] {
        Set(plan.simulation.deviceOfNode.map(Int.init) + plan.simulation.transfers.flatMap { [Int($0.fromDevice), Int($0.toDevice)] }).sorted()
    }

    @Test func idleDevicesShareOneLineAndEveryUsedDeviceHasALane() throws {
        let idle = (0..<5).filter { !used.contains($0) }
        try #require(!idle.isEmpty && used.count >= 2, "the plan uses \(used)")
        for d in used { #expect(svg.contains(">\(plan.devices[d].name) #\(d)</text>")) }
        for d in idle { #expect(!svg.contains(">\(plan.devices[d].name) #\(d)</text>")) }
        #expect(svg.contains("idle (no op placed, no transfer): \(idle.count) devices: " + idle.map { plan.devices[$0].name }.joined(separator: ", ")))
    }

    /// The legend promises a red dashed line at each device's memory: one per lane, inside the chart.
    @Test func everyLaneHasItsMemoryLine() {
        #expect(svg.components(separatedBy: "stroke-dasharray=\"4 3\"").count - 1 == used.count)
    }

    /// The coloured layers or groups have colours that differ from each other and from "other".
    @Test func legendColoursAreDistinct() throws {
        let swatches = svg.matches(of: /<rect x="[\d.]+" y="[\d.]+" width="12" height="12" fill="(#[0-9a-f]{6})"\/>/).map { String($0.1) }
        try #require(swatches.count >= 3)
        #expect(Set(swatches).count == swatches.count, "\(swatches)")
        // No two palette colours are near each other (each channel within 24 of the other's).
        func rgb(_ hex: String) -> [Int] { stride(from: 1, to: 7, by: 2).map { Int(hex.dropFirst($0).prefix(2), radix: 16)! } }
        for (i, a) in (GanttChart.palette + [GanttChart.otherColor]).enumerated() {
            for b in (GanttChart.palette + [GanttChart.otherColor]).dropFirst(i + 1) {
                #expect(zip(rgb(a), rgb(b)).contains { abs($0 - $1) > 24 }, "\(a) and \(b) look alike")
            }
        }
    }

    /// A transfer wide enough names the device at its other end; the number matches the simulation.
    @Test func transfersNameTheOtherEnd() throws {
        let labels = svg.matches(of: /<text x="[\d.]+" y="[\d.]+" fill="white" font-size="8">(→|←)(\d+)<\/text>/)
        try #require(!labels.isEmpty, "no transfer is labelled")
        let ends = Set(plan.simulation.transfers.flatMap { ["→\($0.toDevice)", "←\($0.fromDevice)"] })
        for label in labels { #expect(ends.contains(String(label.1) + String(label.2))) }
    }
}
