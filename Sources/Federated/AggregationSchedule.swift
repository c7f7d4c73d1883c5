/// Who meets whom, in which iteration, with which rho: everything about one ADMM aggregation round
/// that the privacy audit judges, fixed before training starts and the same on every site.
public struct AggregationSchedule: Sendable {
    public let design: ResolvableDesign
    public let iterations: Int
    public let masked: Bool
    /// rho_1 ... rho_K as exact fractions: the audit needs them exact, training uses their Double value.
    public let rhos: [ExactRho]

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// rho_1 = `rho` and every later iteration `rhoAfter`: a large first penalty pulls z near the average
    /// despite the random duals, and after it the error shrinks by rho/(2+rho) per iteration (the digest's
    /// closed form), so a small `rhoAfter` reaches the exact average in three or four iterations.
    public init(sites: Int, iterations: Int?, masked: Bool, rho: String, rhoAfter: String) throws(Failure) {
        guard sites >= 3 else {
            throw Failure(description: "ADMM aggregation needs at least 3 sites (ranks), got \(sites): use --aggregation fedavg")
        }
        guard let design = Designs.make(sites: sites), !design.classes.isEmpty else {
            throw Failure(description: "no block design for \(sites) sites: use --aggregation fedavg")
        }
        let problems = DesignVerifier.problems(in: design)
        guard problems.isEmpty else {
            throw Failure(description: "the design for \(sites) sites fails verification: \(problems[0])")
        }
        let k = iterations ?? design.classes.count
        guard k >= 1, k <= 400 else { throw Failure(description: "--iterations must be between 1 and 400, got \(k)") }
        guard let first = ExactRho(decimal: rho) else {
            throw Failure(description: "--rho must be a positive decimal with at most 9 digits after the point, got \(rho)")
        }
        guard let later = ExactRho(decimal: rhoAfter) else {
            throw Failure(description: "--rho-after must be a positive decimal with at most 9 digits after the point, got \(rhoAfter)")
        }
        self.design = design
        self.iterations = k
        self.masked = masked
        self.rhos = [first] + Array(repeating: later, count: k - 1)
    }

    public var rhoValues: [Double] { rhos.map(\.doubleValue) }

    /// The class of iteration k (0-based): classes repeat after r iterations.
    public func parallelClass(iteration k: Int) -> [[Int]] { design.classes[k % design.classes.count] }

    /// The classes the round uses, in order of first use (at most r).
    public var classesUsed: Int { min(iterations, design.classes.count) }

    /// The exact audit of this schedule for single honest-but-curious sites (coalitions of one).
    public func audit() throws -> PrivacyAudit.Report {
        try PrivacyAudit(design: design, iterations: iterations, masked: masked, rhos: rhos)
            .report(coalitionSize: 1, searchLargestCoalition: false)
    }
}
