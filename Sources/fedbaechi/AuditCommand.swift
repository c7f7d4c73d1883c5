import ArgumentParser
import Basics
import Federated
import Foundation
import Tensors

/// Decides exactly which sites' models an observer, or a coalition of observers, can recover from one
/// aggregation round on the design for V sites: the same choice of schedule and the same audit that
/// `train --mode federated` makes with the same flags.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check exactly whether any site (or coalition) can solve for another site's model.",
        discussion: """
            Chooses the schedule `train --mode federated` would run with the same flags (the fewest \
            iterations whose predicted aggregation error is at most 1e-6, plain group messages when the \
            audit clears them, masked group sums otherwise) and audits it: iteration k uses class \
            (k-1) mod r; plain mode shows a site each group-mate's message, masked mode only its \
            group's sum; every site sees every z and the round's published mean. A leak (observers, j) \
            means the observers' view determines site j's model exactly.

            Exit status: 0 when training would run the schedule (no leak, predicted error within \
            1e-6), 4 when it would refuse it (a leak, or the error above 1e-6; the output says which), \
            2 for a bad argument.
            """
    )

    @Option(help: "Number of sites (3 to 150).")
    var sites: Int

    @Option(help: "ADMM iterations per round (default: as training chooses them).")
    var iterations: Int?

    @Flag(help: "Masked group sums (training's --masked).")
    var masked = false

    @Flag(help: "Plain group messages only, even where training would switch masking on.")
    var plain = false

    @Option(name: [.customLong("collusion"), .customLong("coalition")],
            help: "Size of the colluding coalition (1 to sites-1); every coalition of this size is checked.")
    var collusion = 1

    @Flag(help: "Also let every site see every group's sum (a variant training never runs; it shows why group sums stay in their group).")
    var groupSumsPublic = false

    @Option(help: "Penalty rho of the first iteration, an exact decimal (training's --rho).")
    var rho = "3"

    @Option(help: "Penalty rho of every later iteration, an exact decimal (training's --rho-after).")
    var rhoAfter = "0.001"

    @Option(help: "Width W of the duals' range U[-W/2, W/2) (training's --dual-range).")
    var dualRange = AggregationSchedule.defaultDualRange

    @Option(help: "The model whose initial parameters set the scale of the predicted error: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var model: ModelKind = .lenet

    @Option(help: "Seed of the model's initial parameters (training's --seed).")
    var seed: UInt64 = 1

    @Flag(help: "Print JSON: {\"runs\": bool, \"leak_free\": bool, \"leaks\": [{\"observers\": [..], \"learns\": j}], ...}.")
    var json = false

    /// Exit status when training would refuse the schedule.
    static let refused: Int32 = 4

    struct Output: Codable {
        var sites: Int
        var iterations: Int
        var classes: Int
        var mode: String
        var maskingReason: String?
        var coalition: Int
        var coalitionsChecked: Int
        var leakFree: Bool
        var leaks: [PrivacyAudit.Leak]
        var largestCoalitionCleared: Int?
        var largestCoalitionComplete: Bool?
        var primesUsed: Int
        var predictedError: Double
        var errorTarget: Double
        var runs: Bool

        enum CodingKeys: String, CodingKey {
            case sites, iterations, classes, mode, coalition, leaks, runs
            case maskingReason = "masking_reason"
            case coalitionsChecked = "coalitions_checked"
            case leakFree = "leak_free"
            case largestCoalitionCleared = "largest_coalition_cleared"
            case largestCoalitionComplete = "largest_coalition_complete"
            case primesUsed = "primes_max"
            case predictedError = "predicted_error"
            case errorTarget = "error_target"
        }
    }

    func run() throws {
        guard sites >= 3 else { throw Refusal("--sites must be at least 3, got \(sites)") }
        guard sites <= 150 else { throw Refusal("--sites must be at most 150, got \(sites)") }
        if let iterations {
            guard iterations >= 1 else { throw Refusal("--iterations must be at least 1, got \(iterations)") }
            guard iterations <= 400 else { throw Refusal("--iterations must be at most 400, got \(iterations)") }
        }
        guard !(masked && plain) else { throw Refusal("--masked and --plain exclude each other") }
        let request = ScheduleRequest(
            sites: sites, iterations: iterations, masked: masked ? true : plain ? false : nil, rho: rho, rhoAfter: rhoAfter,
            dualRange: dualRange, collusion: collusion, parameterRMS: ModelSpec(kind: model).build(seed: seed).parameters.rootMeanSquare,
            allowInexact: true, allowLeaky: true)
        let choice: ScheduleChoice
        do { choice = try AggregationSchedule.choose(request) } catch { throw Refusal(error.description) }
        var report = choice.audit
        let schedule = choice.schedule
        do {
            let audit = try PrivacyAudit(design: schedule.design, iterations: schedule.iterations, masked: schedule.masked,
                                         groupSumsPublic: groupSumsPublic, rhos: schedule.rhos)
            report = try audit.report(coalitionSize: collusion, searchLargestCoalition: schedule.masked)
        } catch let failure as PrivacyAudit.Failure {
            throw Refusal(failure.description)
        }
        let output = Output(sites: sites, iterations: schedule.iterations, classes: schedule.design.classes.count,
                            mode: schedule.masked ? "masked" : "plain", maskingReason: choice.maskingReason, coalition: collusion,
                            coalitionsChecked: report.coalitionsChecked, leakFree: report.leakFree, leaks: report.leaks,
                            largestCoalitionCleared: report.largestCoalitionCleared,
                            largestCoalitionComplete: schedule.masked ? report.largestCoalitionComplete : nil,
                            primesUsed: report.primesUsed, predictedError: choice.predictedError,
                            errorTarget: AggregationSchedule.errorTarget,
                            runs: report.leakFree && choice.predictedError <= AggregationSchedule.errorTarget)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print(Self.render(output))
        }
        if !output.runs { throw ExitCode(Self.refused) }
    }

    static func render(_ output: Output) -> String {
        var lines: [String] = []
        let who = output.coalition == 1 ? "single sites" : "coalitions of \(output.coalition) sites"
        lines.append("\(output.sites) sites, \(output.iterations) iterations on \(output.classes) classes, \(output.mode) mode, observers: \(who) (\(output.coalitionsChecked) checked)")
        if let reason = output.maskingReason { lines.append("masking is on: \(reason)") }
        if output.iterations > output.classes {
            lines.append("note: iterations beyond \(output.classes) reuse classes, so some groups meet again")
        }
        if output.leakFree {
            lines.append("LEAK-FREE: no observer set can solve for another site's model")
        } else {
            lines.append("LEAKS: \(output.leaks.count) (observers, learns) pairs")
            lines.append("observers".padding(24) + "learns model of site")
            for leak in output.leaks {
                lines.append(("{" + leak.observers.map(String.init).joined(separator: " ") + "}").padding(24) + String(leak.learns))
            }
        }
        if let cleared = output.largestCoalitionCleared {
            let complete = output.largestCoalitionComplete ?? true
            let text = cleared == 0 ? "none (single sites already learn a model)" : cleared == 1 ? "1 site" : "\(cleared) sites"
            lines.append("largest coalition cleared (masked): \(text)" + (complete ? "" : " (larger coalitions too many to enumerate)"))
        }
        lines.append(String(format: "predicted aggregation error: at most %.1e (target %.0e)", output.predictedError, output.errorTarget))
        lines.append("exact: ranks modulo up to \(output.primesUsed) primes above 2^30, as many as Hadamard's bound requires")
        lines.append(output.runs ? "verdict: training runs this schedule"
                     : "verdict: training refuses this schedule (" + (output.leakFree ? "predicted error above the target" : "a leak") + ")")
        return lines.joined(separator: "\n")
    }
}
