import Foundation
import Placement
import Testing

/// Plan files (`place --plan`) damaged: every mutant is either judged (a finite step, a plan file
/// and a chart) or rejected with one line, never a trap or a hang.
@Suite struct PlanFileFuzzTests {
    @Test(.timeLimit(.minutes(FuzzBudget.timeLimitMinutes)))
    func mutatedPlanFilesAreJudgedOrRejected() throws {
        let graph = try GraphJSONImporter().importGraph(from: GraphSeeds.fixture("fig1.json"), name: "fig1")
        let devices = DeviceSpec.uniform(count: 2, memoryBytes: 1 << 30)
        // A plan the planner wrote (with its schedule and transfers), and placements alone.
        let written = try Planner(graph: graph, link: .baechi, options: .none).plan(.mETF, devices: devices).get().json()
        let seeds = [
            Data(written.utf8),
            Data(#"{"placement": {"0": 0, "1": 0, "2": 0, "3": 0, "4": 1, "5": 1}}"#.utf8),
            Data(#"{"placement": {"0": 1, "1": 1, "2": 0, "3": 0, "4": 1, "5": 0}, "schedule": [{"node": "0", "start_us": 0}], "transfers": []}"#.utf8),
        ]
        for seed in seeds.prefix(2) {
            #expect(throws: Never.self) { try JudgedPlan(file: seed, named: "seed", graph: graph, link: .baechi, devices: devices) }
        }
        let tokens = [#""placement""#, #""schedule""#, #""transfers""#, #""node""#, #""start_us""#, #""tensor""#, #""to""#,
                      #""consumer""#, #""0:0""#, #""5:control""#, "null", "[]", "{}", ",", ":", "\"", "-1", "2", "99"]
        var mutator = Mutator(seed: FuzzBudget.seed ^ stableHash("plan-file"), seeds: seeds, tokens: tokens + Mutator.hostileNumbers)
        let report = fuzz("plan-file", mutator: &mutator, count: max(100, FuzzBudget.inputs / 4), seed: FuzzBudget.seed) { input in
            do throws(PlanFileError) {
                let judged = try JudgedPlan(file: Data(input), named: "fuzz", graph: graph, link: .baechi, devices: devices)
                #expect(judged.makespanMicros.isFinite && judged.makespanMicros >= 0)
                #expect(!judged.json().isEmpty)
                #expect(GanttChart.svg(for: judged).hasPrefix("<svg"))
                return .accepted
            } catch {
                return .rejected(error.description)
            }
        }
        #expect(report.accepted > 0 && report.rejected > report.inputs / 10, "\(report)")
    }
}
