import Basics
import Foundation

/// Who meets whom, in which iteration, with which rho: everything about one ADMM aggregation round
/// that the privacy audit judges, fixed before training starts and the same on every site.
public struct AggregationSchedule: Sendable {
    public let design: ResolvableDesign
    public let iterations: Int
    public let masked: Bool
    /// rho_1 ... rho_K as exact fractions: the audit needs them exact, training uses their Double value.
    public let rhos: [ExactRho]
    /// The width W of the duals' range: lambda_i^0 ~ U[-W/2, W/2) per coordinate.
    public let dualRange: Double

    /// The aggregation error every run must reach unless told otherwise (`--allow-inexact`).
    public static let errorTarget = 1e-6
    /// The default width of the duals' range (`--dual-range`).
    public static let defaultDualRange = 1.0
    /// The most iterations the chooser considers: with rho 0.001 after the first, each iteration
    /// divides the error by about 2000, so this is never the limit for ordinary models.
    static let mostIterationsChosen = 12

    public struct Failure: UserFacingError {
        public let description: String
        public var exitStatus: ExitStatus { .badInput }
    }

    /// rho_1 = `rho` and every later iteration `rhoAfter`: a large first penalty pulls z near the average
    /// despite the random duals, and after it the error shrinks by rho/(2+rho) per iteration (the digest's
    /// closed form), so a small `rhoAfter` reaches the exact average in three or four iterations.
    public init(sites: Int, iterations: Int, masked: Bool, rho: String, rhoAfter: String,
                dualRange: Double = defaultDualRange) throws(Failure) {
        try self.init(design: try Self.design(sites: sites), iterations: iterations, masked: masked, rho: rho,
                      rhoAfter: rhoAfter, dualRange: dualRange)
    }

    /// The same on a design already built and verified (the chooser tries many schedules on one).
    init(design: ResolvableDesign, iterations: Int, masked: Bool, rho: String, rhoAfter: String,
         dualRange: Double) throws(Failure) {
        self.design = design
        guard iterations >= 1, iterations <= 400 else {
            throw Failure(description: "--iterations must be between 1 and 400, got \(iterations)")
        }
        guard let first = ExactRho(decimal: rho) else {
            throw Failure(description: "--rho must be a positive decimal with at most 9 digits after the point, got \(rho)")
        }
        guard let later = ExactRho(decimal: rhoAfter) else {
            throw Failure(description: "--rho-after must be a positive decimal with at most 9 digits after the point, got \(rhoAfter)")
        }
        guard dualRange.isFinite, dualRange > 0 else {
            throw Failure(description: "--dual-range must be a positive number, got \(dualRange)")
        }
        // The largest message is about |lambda| / rho, which fixed point must carry with room for sums.
        let smallestRho = min(first.doubleValue, later.doubleValue)
        guard dualRange / smallestRho < FixedPoint.limit / 64 else {
            throw Failure(description: "--dual-range \(dualRange) with rho \(smallestRho) makes messages of about "
                          + "\(Int(dualRange / smallestRho)), beyond the fixed-point range of masked sums: "
                          + "narrow --dual-range or raise --rho-after")
        }
        self.iterations = iterations
        self.masked = masked
        self.dualRange = dualRange
        self.rhos = [first] + Array(repeating: later, count: iterations - 1)
    }

    /// The verified design for `sites` sites, or why there is none.
    static func design(sites: Int) throws(Failure) -> ResolvableDesign {
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
        return design
    }

    public var rhoValues: [Double] { rhos.map(\.doubleValue) }

    /// The class of iteration k (0-based): classes repeat after r iterations.
    public func parallelClass(iteration k: Int) -> [[Int]] { design.classes[k % design.classes.count] }

    /// The classes the round uses, in order of first use (at most r).
    public var classesUsed: Int { min(iterations, design.classes.count) }

    /// An upper bound on the relative aggregation error ||z_K - mean|| / ||mean|| of a round, for models
    /// whose coordinates have root mean square `parameterRMS` (docs/privacy.md, "Aggregation error").
    ///
    /// After the first iteration sum_i w_i lambda_i = 0, and from then on each iteration multiplies the
    /// error by rho_k / (2 + rho_k). The first iteration leaves
    /// z_1 - mean = (2 sum_i w_i lambda_i^0 / rho_1 - rho_1 mean) / (2 + rho_1), whose norm relative to the
    /// mean's is at most rho_1 / (2 + rho_1) + W / (rho_1 (2 + rho_1) rms) with |lambda_i^0| <= W / 2.
    public func predictedError(parameterRMS: Double) -> Double {
        let rho = rhoValues
        var error = rho[0] / (2 + rho[0]) + dualRange / (rho[0] * (2 + rho[0]) * max(parameterRMS, .leastNormalMagnitude))
        for k in rho.indices.dropFirst() { error *= rho[k] / (2 + rho[k]) }
        return error
    }

    /// The exact audit of this schedule: every coalition of `collusion` sites, with everything a site
    /// receives (group messages or sums, z, and the round's published mean).
    public func audit(collusion: Int = 1) throws -> PrivacyAudit.Report {
        try PrivacyAudit(design: design, iterations: iterations, masked: masked, rhos: rhos)
            .report(coalitionSize: collusion, searchLargestCoalition: false)
    }
}

/// What a run asks of its aggregation, and the schedule that gives it: `train` and `audit` both
/// choose through `choose`, so what is audited is what runs.
public struct ScheduleRequest: Sendable {
    public var sites: Int
    /// Nil: the fewest iterations whose predicted error is within the target.
    public var iterations: Int?
    /// True: masked group sums. False: plain group messages only. Nil: plain when the audit clears
    /// them, masked when only masking is cleared (what `train` does without `--masked`).
    public var masked: Bool?
    public var rho: String
    public var rhoAfter: String
    public var dualRange: Double
    /// Coalitions up to this size must learn nothing.
    public var collusion: Int
    /// Root mean square of the model's coordinates (the initial model's, which every site knows).
    public var parameterRMS: Double
    /// Run an explicit `iterations` even when its predicted error is above the target.
    public var allowInexact: Bool
    /// Run a schedule the audit flags.
    public var allowLeaky: Bool

    public init(sites: Int, iterations: Int? = nil, masked: Bool? = nil, rho: String = "3", rhoAfter: String = "0.001",
                dualRange: Double = AggregationSchedule.defaultDualRange, collusion: Int = 1, parameterRMS: Double,
                allowInexact: Bool = false, allowLeaky: Bool = false) {
        self.sites = sites
        self.iterations = iterations
        self.masked = masked
        self.rho = rho
        self.rhoAfter = rhoAfter
        self.dualRange = dualRange
        self.collusion = collusion
        self.parameterRMS = parameterRMS
        self.allowInexact = allowInexact
        self.allowLeaky = allowLeaky
    }
}

/// The schedule a request gets, with the audit that cleared it (or flagged it, when allowed).
public struct ScheduleChoice: Sendable {
    public var schedule: AggregationSchedule
    public var audit: PrivacyAudit.Report
    public var predictedError: Double
    /// Why masking is on although the request did not ask for it (nil when it did, or when off).
    public var maskingReason: String?
}

extension AggregationSchedule {
    /// The schedule for a request: the fewest iterations (or the given number) whose predicted error is
    /// within `errorTarget`, plain if the audit clears every coalition of `collusion` sites, else
    /// masked; refused, with what would work, when neither is cleared or the error cannot be reached.
    public static func choose(_ request: ScheduleRequest) throws(Failure) -> ScheduleChoice {
        try choose(request, advise: true)
    }

    /// `advise`: on refusal, search nearby site counts for one that works (not when already searching).
    static func choose(_ request: ScheduleRequest, advise: Bool) throws(Failure) -> ScheduleChoice {
        // Too few sites, or none that a design serves: said first.
        let design = try Self.design(sites: request.sites)
        guard request.collusion >= 1, request.collusion < request.sites else {
            throw Failure(description: "--collusion must be between 1 and the number of sites less one (\(request.sites - 1)), got \(request.collusion)")
        }
        let target = errorTarget
        func make(_ k: Int, masked: Bool) throws(Failure) -> AggregationSchedule {
            try AggregationSchedule(design: design, iterations: k, masked: masked, rho: request.rho,
                                    rhoAfter: request.rhoAfter, dualRange: request.dualRange)
        }
        let iterations: Int
        if let given = request.iterations {
            iterations = given
            let predicted = try make(given, masked: request.masked ?? false).predictedError(parameterRMS: request.parameterRMS)
            if predicted > target, !request.allowInexact {
                let enough = (given...mostIterationsChosen).first { k in
                    (try? make(k, masked: request.masked ?? false).predictedError(parameterRMS: request.parameterRMS)).map { $0 <= target } ?? false
                }
                throw Failure(description: "--iterations \(given) leaves a predicted aggregation error of "
                              + "\(scientific(predicted)), above \(scientific(target)): "
                              + (enough.map { "use --iterations \($0) or more (or leave it out), " } ?? "")
                              + "or --allow-inexact to run it anyway")
            }
        } else {
            guard let fewest = (1...mostIterationsChosen).first(where: { k in
                (try? make(k, masked: request.masked ?? false).predictedError(parameterRMS: request.parameterRMS)).map { $0 <= target } ?? false
            }) else {
                _ = try make(1, masked: request.masked ?? false)  // a bad flag says so first
                throw Failure(description: "no schedule of up to \(mostIterationsChosen) iterations reaches an aggregation error of "
                              + "\(scientific(target)) for models of parameter RMS \(scientific(request.parameterRMS)) "
                              + "with --dual-range \(request.dualRange): narrow --dual-range or lower --rho-after")
            }
            iterations = fewest
        }
        var flagged: (AggregationSchedule, PrivacyAudit.Report)?
        for masked in request.masked.map({ [$0] }) ?? [false, true] {
            let schedule = try make(iterations, masked: masked)
            let report: PrivacyAudit.Report
            do { report = try schedule.audit(collusion: request.collusion) } catch {
                throw Failure(description: "the privacy audit cannot check this schedule: \(error)")
            }
            let predicted = schedule.predictedError(parameterRMS: request.parameterRMS)
            if report.leakFree {
                let reason = masked && request.masked == nil
                    ? "plain group messages leak (\(describe(flagged!.1))); masked group sums do not" : nil
                return ScheduleChoice(schedule: schedule, audit: report, predictedError: predicted, maskingReason: reason)
            }
            if flagged == nil { flagged = (schedule, report) }
        }
        let (schedule, report) = flagged!
        if request.allowLeaky {
            return ScheduleChoice(schedule: schedule, audit: report, predictedError: schedule.predictedError(parameterRMS: request.parameterRMS),
                                  maskingReason: nil)
        }
        throw Failure(description: "the privacy audit flags every schedule of \(iterations) iteration\(iterations == 1 ? "" : "s") on "
                      + "\(schedule.design.classes.count) class\(schedule.design.classes.count == 1 ? "" : "es") for "
                      + "\(request.sites) sites (\(describe(report))): "
                      + (advise ? advice(request) : "use --aggregation fedavg (no privacy)"))
    }

    /// "site 1 learns site 0's model (and 5 more leaks)".
    static func describe(_ report: PrivacyAudit.Report) -> String {
        guard let first = report.leaks.first else { return "no leak" }
        let who = first.observers.count == 1 ? "site \(first.observers[0])" : "sites \(first.observers.map(String.init).joined(separator: ", "))"
        let more = report.leaks.count > 1 ? " (and \(report.leaks.count - 1) more leak\(report.leaks.count == 2 ? "" : "s"))" : ""
        return "\(who) \(first.observers.count == 1 ? "learns" : "learn") site \(first.learns)'s model\(more)"
    }

    /// What would work instead: fewer colluders, a nearby site count, or the baseline without privacy.
    static func advice(_ request: ScheduleRequest) -> String {
        var options: [String] = []
        if request.collusion > 1 { options.append("a smaller --collusion") }
        // Audits of coalitions grow as V^C: nearby site counts are searched for single sites only.
        let candidates = request.collusion == 1 ? Array(max(3, request.sites - 4)...(request.sites + 4)) : []
        let nearby = candidates.filter { $0 != request.sites }.filter { v in
            var other = request
            other.sites = v
            other.collusion = min(request.collusion, v - 1)
            other.allowLeaky = false
            return (try? choose(other, advise: false)) != nil
        }
        if let closest = nearby.min(by: { abs($0 - request.sites) < abs($1 - request.sites) }) {
            options.append("\(closest) sites")
        }
        options.append("--aggregation fedavg (no privacy)")
        return "use " + options.joined(separator: ", or ") + "; --allow-leaky-schedule runs it anyway"
    }

    static func scientific(_ value: Double) -> String { String(format: "%.1e", value) }
}
