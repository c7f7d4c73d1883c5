import ArgumentParser
import Federated
import Foundation

/// Decides exactly which sites' models an observer, or a coalition of observers, can recover from one
/// aggregation round on the design for V sites.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check exactly whether any site (or coalition) can solve for another site's model.",
        discussion: """
            Models K ADMM iterations on the design for V sites (iteration k uses class (k-1) mod r).
            Plain mode: a site sees each group-mate's message. Masked mode: only its group's sum.
            Every site sees every z. A leak (observers, j) means the observers' view determines site j's
            model exactly. Exit status 0 with the verdict in the output; 2 for a bad argument.
            """
    )

    @Option(help: "Number of sites (3 to 150).")
    var sites: Int

    @Option(help: "ADMM iterations per round (at least 1).")
    var iterations: Int

    @Flag(help: "Group members add masks, so only group sums are seen.")
    var masked = false

    @Option(help: "Size of the colluding coalition (1 to sites-1); every coalition of this size is checked.")
    var coalition = 1

    @Flag(help: "Also let every site see every group's sum (a plain all-reduce of group sums).")
    var groupSumsPublic = false

    @Option(help: "Penalty rho of the first iteration, an exact decimal.")
    var rho = "3"

    @Option(help: "Amount rho decreases each iteration, an exact decimal (the reference schedule: 3 and 0.0003).")
    var rhoStep = "0.0003"

    @Flag(help: "Print JSON: {\"leak_free\": bool, \"leaks\": [{\"observers\": [..], \"learns\": j}], ...}.")
    var json = false

    struct Output: Codable {
        var sites: Int
        var iterations: Int
        var classes: Int
        var mode: String
        var coalition: Int
        var coalitionsChecked: Int
        var leakFree: Bool
        var leaks: [PrivacyAudit.Leak]
        var largestCoalitionCleared: Int?
        var largestCoalitionComplete: Bool?
        var primesUsed: Int

        enum CodingKeys: String, CodingKey {
            case sites, iterations, classes, mode, coalition, leaks
            case coalitionsChecked = "coalitions_checked"
            case leakFree = "leak_free"
            case largestCoalitionCleared = "largest_coalition_cleared"
            case largestCoalitionComplete = "largest_coalition_complete"
            case primesUsed = "primes_max"
        }
    }

    func run() throws {
        guard sites >= 3 else { throw CommandFailure("--sites must be at least 3, got \(sites)") }
        guard sites <= 150 else { throw CommandFailure("--sites must be at most 150, got \(sites)") }
        guard iterations >= 1 else { throw CommandFailure("--iterations must be at least 1, got \(iterations)") }
        guard iterations <= 400 else { throw CommandFailure("--iterations must be at most 400, got \(iterations)") }
        guard coalition >= 1 else { throw CommandFailure("--coalition must be at least 1, got \(coalition)") }
        guard coalition < sites else {
            throw CommandFailure("--coalition must be smaller than --sites (\(sites)), got \(coalition)")
        }
        guard let rhos = ExactRho.linearSchedule(initial: rho, step: rhoStep, iterations: iterations) else {
            throw CommandFailure("--rho and --rho-step must be decimals with rho staying positive for \(iterations) iterations")
        }
        guard let design = Designs.make(sites: sites) else {
            throw CommandFailure("no design could be built for \(sites) sites", status: .runtime)
        }
        let report: PrivacyAudit.Report
        do {
            let audit = try PrivacyAudit(design: design, iterations: iterations, masked: masked,
                                         groupSumsPublic: groupSumsPublic, rhos: rhos)
            report = try audit.report(coalitionSize: coalition, searchLargestCoalition: masked)
        } catch let failure as PrivacyAudit.Failure {
            throw CommandFailure(failure.description)
        }
        let output = Output(sites: sites, iterations: iterations, classes: design.classes.count,
                            mode: masked ? "masked" : "plain", coalition: coalition,
                            coalitionsChecked: report.coalitionsChecked, leakFree: report.leakFree, leaks: report.leaks,
                            largestCoalitionCleared: report.largestCoalitionCleared,
                            largestCoalitionComplete: masked ? report.largestCoalitionComplete : nil,
                            primesUsed: report.primesUsed)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print(Self.render(output))
        }
    }

    static func render(_ output: Output) -> String {
        var lines: [String] = []
        let who = output.coalition == 1 ? "single sites" : "coalitions of \(output.coalition) sites"
        lines.append("\(output.sites) sites, \(output.iterations) iterations on \(output.classes) classes, \(output.mode) mode, observers: \(who) (\(output.coalitionsChecked) checked)")
        if output.iterations > output.classes {
            lines.append("note: iterations beyond \(output.classes) reuse classes, so some pairs meet again")
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
        lines.append("exact: ranks modulo up to \(output.primesUsed) primes above 2^30, as many as Hadamard's bound requires")
        return lines.joined(separator: "\n")
    }
}
