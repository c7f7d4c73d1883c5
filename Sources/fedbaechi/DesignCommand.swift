import ArgumentParser
import Basics
import Federated
import Foundation

/// Prints the communication schedule for V sites: a Kirkman triple system when V = 3 (mod 6),
/// otherwise the best resolvable packing the constructions reach, always checked by the verifier.
struct DesignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "design",
        abstract: "Print the group schedule (parallel classes) for a number of sites.",
        discussion: """
            Each class splits the sites into groups of 3 (4 or 5 where V is not a multiple of 3); no two \
            sites share a group twice. For V = 3 (mod 6) this is a Kirkman triple system with all \
            (V-1)/2 classes. Sites are numbered from 0. Exit status 2 for a bad argument.
            """
    )

    @Option(help: "Number of sites (3 to 150).")
    var sites: Int

    @Flag(help: "Print JSON: {\"sites\": V, \"classes\": [[[0,1,5], ...], ...]} plus the construction and bound.")
    var json = false

    @Flag(help: "Search harder (all class counts from the bound down, more seeds) instead of the recorded recipe; minutes for large V.")
    var thorough = false

    struct Output: Codable {
        var sites: Int
        var classes: [[[Int]]]
        var construction: String
        var kirkman: Bool
        var classBound: Int

        enum CodingKeys: String, CodingKey {
            case sites, classes, construction, kirkman
            case classBound = "class_bound"
        }
    }

    func run() throws {
        guard sites >= 3 else { throw Refusal("--sites must be at least 3, got \(sites)") }
        guard sites <= 150 else { throw Refusal("--sites must be at most 150 (larger designs take minutes to search), got \(sites)") }
        guard let design = Designs.make(sites: sites, thorough: thorough) else {
            throw Refusal("no design could be built for \(sites) sites", status: .runtime)
        }
        let problems = DesignVerifier.problems(in: design)
        guard problems.isEmpty else {
            throw Refusal("the design for \(sites) sites failed verification: \(problems[0])", status: .runtime)
        }
        let output = Output(sites: sites, classes: design.classes.map { $0.map { $0.sorted() } }, construction: design.construction,
                            kirkman: design.isKirkmanTripleSystem,
                            classBound: ResolvableDesign.classBound(sites: sites))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print(Self.render(design))
        }
    }

    static func render(_ design: ResolvableDesign) -> String {
        let v = design.sites
        var lines: [String] = []
        if design.isKirkmanTripleSystem {
            lines.append("Kirkman triple system KTS(\(v)): \(design.classes.count) classes of \(v / 3) triples, every pair of sites meets once")
        } else {
            let bound = ResolvableDesign.classBound(sites: v)
            let count = design.classes.count == 1 ? "1 class" : "\(design.classes.count) classes"
            lines.append("resolvable packing on \(v) sites: \(count) (at most \(bound) possible), no pair of sites meets twice")
        }
        lines.append("construction: \(design.construction)")
        lines.append("verified: every class splits all sites into groups of 3 to 5, no pair repeated")
        lines.append("")
        let width = String(design.classes.count).count
        for (index, parallelClass) in design.classes.enumerated() {
            let groups = parallelClass.map { "{" + $0.sorted().map(String.init).joined(separator: " ") + "}" }
            lines.append("class " + String(index + 1).leftPadding(width) + "  " + groups.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}
