import Basics
import Foundation

/// A penalty rho as an exact fraction, read from a decimal such as "2.9997".
public struct ExactRho: Sendable, Equatable {
    public let numerator: Int
    public let denominator: Int

    public init?(numerator: Int, denominator: Int) {
        guard denominator > 0, numerator > 0 else { return nil }
        self.numerator = numerator
        self.denominator = denominator
    }

    /// A positive decimal with at most 9 digits after the point.
    public init?(decimal text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = Int(parts[0].isEmpty ? "0" : String(parts[0])), whole >= 0 else { return nil }
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= 9, fraction.allSatisfy(\.isNumber) else { return nil }
        var scale = 1
        for _ in 0..<fraction.count { scale *= 10 }
        self.init(numerator: whole * scale + (Int(fraction) ?? 0), denominator: scale)
    }

    public var doubleValue: Double { Double(numerator) / Double(denominator) }

    /// rho_1 = initial, rho_{k+1} = rho_k - step: the digest's reference schedule is 3 and 0.0003.
    /// Nil when a rho would not stay positive.
    public static func linearSchedule(initial: String, step: String, iterations: Int) -> [ExactRho]? {
        guard let start = ExactRho(decimal: initial) else { return nil }
        let decrement: ExactRho? = step == "0" ? nil : ExactRho(decimal: step)
        if step != "0" && decrement == nil { return nil }
        var schedule: [ExactRho] = []
        for k in 0..<iterations {
            guard let d = decrement else { schedule.append(start); continue }
            let denominator = start.denominator / gcd(start.denominator, d.denominator) * d.denominator
            let numerator = start.numerator * (denominator / start.denominator) - k * d.numerator * (denominator / d.denominator)
            guard let rho = ExactRho(numerator: numerator, denominator: denominator) else { return nil }
            schedule.append(rho)
        }
        return schedule
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}

/// Decides exactly what an honest-but-curious site, or a coalition of sites, learns about other sites'
/// models from one aggregation round run on a design.
///
/// Model. Iteration k uses class (k-1) mod r of the design. Message m_i^k is affine in theta_i and
/// lambda_i^0 with coefficients (P_k, Q_k) that are the same for every site (`MessageModel`); the z
/// history is public, so its terms are known constants. Observers see, per iteration: their own
/// messages; in plain mode each group-mate's message; in masked mode only the sum over their group;
/// with `groupSumsPublic` also every other group's sum; always z^k = sum_i w_i m_i^k; and the round's
/// output, the weighted mean sum_i w_i theta_i (a row (1_B, 0) in the terms below). Each
/// observation is sum_{j in B} w_j (P_k theta_j + Q_k lambda_j) over a set B of non-observers (plus
/// known terms). Scaling unknowns by w_j and rows by 1/Q_k leaves rows (g_k 1_B, 1_B) with
/// g_k = P_k / Q_k, so weights do not matter. theta_j is determined iff (e_j, 0) is in the row space.
///
/// Exactness. Ranks are computed modulo primes p > 2^30. A rank modulo p is at most the rank over the
/// rationals and falls short only if p divides a non-zero minor; by Hadamard's inequality such a minor
/// of the integer-scaled rows has at most B bits (computed for each coalition's system from the heights
/// of the g_k and the cell sizes), so at most B/30 primes are bad for it. Using floor(B/30)+1 primes and
/// taking the largest rank gives the rational rank of the system and of the system with (e_j, 0)
/// added: the answer is exact, not probabilistic.
public struct PrivacyAudit {
    public struct Leak: Codable, Equatable, Sendable {
        public var observers: [Int]
        public var learns: Int
    }

    public struct Report: Sendable {
        public var sites: Int
        public var iterations: Int
        public var masked: Bool
        public var coalition: Int
        public var leaks: [Leak]
        public var coalitionsChecked: Int
        /// Largest coalition size for which no coalition learns anyone's model (0: single sites leak).
        public var largestCoalitionCleared: Int?
        /// False when the search for the largest cleared coalition stopped at the enumeration limit.
        public var largestCoalitionComplete: Bool
        public var primesUsed: Int
        public var leakFree: Bool { leaks.isEmpty }
    }

    public enum Failure: UserFacingError {
        public var exitStatus: ExitStatus { .badInput }

        case tooManyCoalitions(Int)
        case boundTooLarge(Int)

        public var description: String {
            switch self {
            case .tooManyCoalitions(let n): "\(n) coalitions to check exceed the limit of \(PrivacyAudit.coalitionLimit)"
            case .boundTooLarge(let n): "exactness needs \(n) primes, more than the \(PrimeArithmetic.primes.count) available; use a schedule with shorter decimals"
            }
        }
    }

    public static let coalitionLimit = 20_000

    public let design: ResolvableDesign
    public let iterations: Int
    public let masked: Bool
    public let groupSumsPublic: Bool
    public let rhos: [ExactRho]

    /// g_k modulo each prime used, and the bit height of g_k (numerator and denominator bound).
    private let ratiosModPrime: [(p: UInt64, g: [UInt64])]
    private let heights: [Double]

    public init(design: ResolvableDesign, iterations: Int, masked: Bool, groupSumsPublic: Bool = false, rhos: [ExactRho]) throws {
        self.design = design
        self.iterations = iterations
        self.masked = masked
        self.groupSumsPublic = groupSumsPublic
        self.rhos = rhos
        // g_k = sum_{i<=k} rho_i prod_{l<i} (2 + rho_l) / 2; over the common denominator prod 2 d_l the
        // numerator is at most 2k prod (2 d_l + n_l).
        var heights: [Double] = []
        var logProduct = 0.0
        for (k, rho) in rhos.prefix(iterations).enumerated() {
            logProduct += log2(Double(2 * rho.denominator + rho.numerator))
            heights.append(logProduct + log2(Double(2 * (k + 1))))
        }
        self.heights = heights
        // Enough primes for the largest system any coalition can produce: a minor has at most 2V rows,
        // at most V from one iteration (its cells are disjoint), each of norm <= sqrt(2V) 2^height.
        let v = design.sites
        // The published mean adds one row of norm sqrt(V).
        let rowBits = heights.flatMap { [Double](repeating: $0 + 0.5 * log2(Double(2 * v)), count: v) } + [0.5 * log2(Double(v))]
        let bound = rowBits.sorted(by: >).prefix(2 * v).reduce(0, +)
        let needed = Int(bound / 30) + 1
        var chosen: [(UInt64, [UInt64])] = []
        for p in PrimeArithmetic.primes where chosen.count < needed {
            var modRhos: [ModPrime] = []
            for rho in rhos.prefix(iterations) {
                guard let r = ModPrime(numerator: rho.numerator, denominator: rho.denominator, modulus: p),
                      (r + ModPrime(2)).value != 0 else { break }
                modRhos.append(r)
            }
            guard modRhos.count == iterations else { continue }
            let model = MessageModel(rhos: modRhos)
            guard model.lambda.allSatisfy({ $0.value != 0 }) else { continue }
            chosen.append((p, model.ratios.map(\.value)))
        }
        guard chosen.count == needed else { throw Failure.boundTooLarge(needed) }
        ratiosModPrime = chosen
    }

    public var primesUsed: Int { ratiosModPrime.count }

    /// The sets of non-observers whose weighted message sum the observers see in each iteration.
    func observedCells(observers: Set<Int>) -> [[[Int]]] {
        (0..<iterations).map { k in
            let parallelClass = design.classes[k % design.classes.count]
            var cells: [[Int]] = []
            var seen = Set<Int>()
            for group in parallelClass {
                let others = group.filter { !observers.contains($0) }
                guard !others.isEmpty else { continue }
                let mine = others.count < group.count
                if mine && !masked {
                    cells += others.map { [$0] }
                } else if mine || groupSumsPublic {
                    cells.append(others)
                } else {
                    continue
                }
                seen.formUnion(others)
            }
            // z^k gives the sum over all non-observers, so the unseen rest is one more cell.
            let rest = (0..<design.sites).filter { !observers.contains($0) && !seen.contains($0) }
            if !rest.isEmpty { cells.append(rest) }
            return cells
        }
    }

    /// The sites whose theta the coalition `observers` determines exactly.
    public func learned(by observers: [Int]) -> [Int] {
        let observerSet = Set(observers)
        let others = (0..<design.sites).filter { !observerSet.contains($0) }
        var column = [Int](repeating: -1, count: design.sites)
        for (i, site) in others.enumerated() { column[site] = i }
        let n = others.count
        guard n > 0 else { return [] }
        let cells = observedCells(observers: observerSet)
        // Hadamard's bound for this system alone: a minor uses at most min(rows + 1, 2n) rows, the
        // probe row has norm 1 and a row for cell B of iteration k at most sqrt(2|B|) 2^height(k).
        let rowBits = (cells.enumerated().flatMap { k, iterationCells in
            iterationCells.map { heights[k] + 0.5 * log2(Double(2 * $0.count)) }
        } + [0.5 * log2(Double(n))]).sorted(by: >)
        let bound = rowBits.prefix(min(rowBits.count + 1, 2 * n)).reduce(0, +)
        let needed = min(Int(bound / 30) + 1, ratiosModPrime.count)
        var maxRank = -1
        var maxRankWithProbe = [Int](repeating: -1, count: n)
        for (p, g) in ratiosModPrime.prefix(needed) {
            var rows: [[UInt64]] = []
            for (k, iterationCells) in cells.enumerated() {
                for cell in iterationCells {
                    var row = [UInt64](repeating: 0, count: 2 * n)
                    for site in cell {
                        row[column[site]] = g[k]
                        row[n + column[site]] = 1
                    }
                    rows.append(row)
                }
            }
            // The round's output, sum_j w_j theta_j, is public: every site loads it, and from two
            // iterations on the z history gives it exactly (docs/privacy.md).
            var mean = [UInt64](repeating: 0, count: 2 * n)
            for j in 0..<n { mean[j] = 1 }
            rows.append(mean)
            let (rank, contains) = PrimeArithmetic.rowSpace(rows, columns: 2 * n, probe: n, p: p)
            maxRank = max(maxRank, rank)
            for j in 0..<n { maxRankWithProbe[j] = max(maxRankWithProbe[j], rank + (contains[j] ? 0 : 1)) }
        }
        return (0..<n).filter { maxRankWithProbe[$0] == maxRank }.map { others[$0] }
    }

    /// Every coalition of `size` sites, with what each learns.
    public func leaks(coalitionSize size: Int) throws -> (leaks: [Leak], checked: Int) {
        let count = Self.binomial(design.sites, size)
        guard count <= Self.coalitionLimit else { throw Failure.tooManyCoalitions(count) }
        var leaks: [Leak] = []
        var coalition = Array(0..<size)
        var checked = 0
        while true {
            checked += 1
            for j in learned(by: coalition) { leaks.append(Leak(observers: coalition, learns: j)) }
            // Next combination in lexicographic order.
            var i = size - 1
            while i >= 0 && coalition[i] == design.sites - size + i { i -= 1 }
            if i < 0 { break }
            coalition[i] += 1
            for j in (i + 1)..<size { coalition[j] = coalition[j - 1] + 1 }
        }
        return (leaks, checked)
    }

    /// The largest c such that no coalition of c sites learns any model, searching c = 1, 2, ... until
    /// a leak or the enumeration limit; the flag says whether the answer is final.
    public func largestCoalitionCleared() -> (size: Int, complete: Bool) {
        var cleared = 0
        for c in 1..<design.sites {
            guard let result = try? leaks(coalitionSize: c) else { return (cleared, false) }
            if !result.leaks.isEmpty { return (cleared, true) }
            cleared = c
        }
        return (cleared, true)
    }

    public func report(coalitionSize: Int, searchLargestCoalition: Bool) throws -> Report {
        let (found, checked) = try leaks(coalitionSize: coalitionSize)
        var report = Report(sites: design.sites, iterations: iterations, masked: masked, coalition: coalitionSize,
                            leaks: found, coalitionsChecked: checked, largestCoalitionCleared: nil,
                            largestCoalitionComplete: true, primesUsed: primesUsed)
        if searchLargestCoalition {
            let (size, complete) = largestCoalitionCleared()
            report.largestCoalitionCleared = size
            report.largestCoalitionComplete = complete
        }
        return report
    }

    static func binomial(_ n: Int, _ k: Int) -> Int {
        guard k >= 0 && k <= n else { return 0 }
        var result = 1
        for i in 0..<min(k, n - k) {
            result = result * (n - i) / (i + 1)
            if result > 1 << 40 { return result }
        }
        return result
    }
}
