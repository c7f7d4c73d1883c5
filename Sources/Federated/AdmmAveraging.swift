/// The ADMM iteration that computes a weighted average without a server (digest:
/// minimise sum_i ||x_i - theta_i||^2 subject to x_i = z), on plain [Double] vectors.
///
/// One iteration k with penalty rho_k, for every site i:
///   x_i = (2 theta_i - lambda_i + rho z) / (2 + rho)
///   m_i = x_i + lambda_i / rho                       (the message other sites may see)
///   z   = sum_i w_i m_i                              (formed from group sums)
///   lambda_i = lambda_i + rho (x_i - z)
/// The privacy audit derives its message coefficients from the same recurrences (`MessageModel`), and
/// federated training calls these functions, so what is audited is what runs.
public enum AdmmAveraging {
    /// x_i: the closed-form minimiser of the local augmented Lagrangian.
    public static func localUpdate(theta: [Double], dual: [Double], z: [Double], rho: Double) -> [Double] {
        (0..<theta.count).map { (2 * theta[$0] - dual[$0] + rho * z[$0]) / (2 + rho) }
    }

    /// m_i = x_i + lambda_i / rho: what a site contributes to the group sum.
    public static func message(x: [Double], dual: [Double], rho: Double) -> [Double] {
        (0..<x.count).map { x[$0] + dual[$0] / rho }
    }

    /// lambda_i <- lambda_i + rho (x_i - z).
    public static func dualUpdate(dual: [Double], x: [Double], z: [Double], rho: Double) -> [Double] {
        (0..<dual.count).map { dual[$0] + rho * (x[$0] - z[$0]) }
    }

    /// One iteration's local part in one pass over memory, for models of millions of values: x_i into
    /// `x` and the weighted message w_i m_i into `contribution`. The expressions are those of
    /// `localUpdate` and `message`, term for term, so the numbers are the same.
    public static func localStep(theta: [Double], dual: [Double], z: [Double], rho: Double, weight: Double,
                                 x: inout [Double], contribution: inout [Double]) {
        precondition(theta.count == dual.count && theta.count == z.count && x.count == theta.count && contribution.count == theta.count)
        theta.withUnsafeBufferPointer { t in dual.withUnsafeBufferPointer { l in z.withUnsafeBufferPointer { zz in
            x.withUnsafeMutableBufferPointer { (xx: inout UnsafeMutableBufferPointer<Double>) in
                contribution.withUnsafeMutableBufferPointer { (c: inout UnsafeMutableBufferPointer<Double>) in
                    Self.localStep(theta: t, dual: l, z: zz, rho: rho, weight: weight, x: xx, contribution: c)
                }
            }
        } } }
    }

    /// `localStep` on one slice of the vectors (every buffer the same slice): the aggregation runs it
    /// chunk by chunk, so that the transfer of one chunk overlaps the arithmetic of the next.
    public static func localStep(theta t: UnsafeBufferPointer<Double>, dual l: UnsafeBufferPointer<Double>,
                                 z zz: UnsafeBufferPointer<Double>, rho: Double, weight: Double,
                                 x xx: UnsafeMutableBufferPointer<Double>, contribution c: UnsafeMutableBufferPointer<Double>) {
        precondition(t.count == l.count && t.count == zz.count && xx.count == t.count && c.count == t.count)
        for i in 0..<t.count {
            let xi = (2 * t[i] - l[i] + rho * zz[i]) / (2 + rho)
            xx[i] = xi
            c[i] = weight * (xi + l[i] / rho)
        }
    }

    /// `dualUpdate` in place.
    public static func dualStep(dual: inout [Double], x: [Double], z: [Double], rho: Double) {
        precondition(dual.count == x.count && dual.count == z.count)
        x.withUnsafeBufferPointer { xx in z.withUnsafeBufferPointer { zz in
            dual.withUnsafeMutableBufferPointer { (l: inout UnsafeMutableBufferPointer<Double>) in Self.dualStep(dual: l, x: xx, z: zz, rho: rho) }
        } }
    }

    /// `dualStep` on one slice of the vectors.
    public static func dualStep(dual l: UnsafeMutableBufferPointer<Double>, x xx: UnsafeBufferPointer<Double>,
                                z zz: UnsafeBufferPointer<Double>, rho: Double) {
        precondition(l.count == xx.count && l.count == zz.count)
        for i in 0..<l.count { l[i] = l[i] + rho * (xx[i] - zz[i]) }
    }

    /// Everything one aggregation round produces: the public z after each iteration and each site's
    /// message in each iteration (messages[k][i]).
    public struct Trace: Sendable {
        public var z: [[Double]]
        public var messages: [[[Double]]]
        public var finalDuals: [[Double]]
    }

    /// Runs `rhos.count` iterations from z = 0. `weights` should sum to 1 (|D_i| / sum |D|, or 1/n).
    public static func run(thetas: [[Double]], weights: [Double], initialDuals: [[Double]], rhos: [Double]) -> Trace {
        let dimension = thetas.first?.count ?? 0
        var z = [Double](repeating: 0, count: dimension)
        var duals = initialDuals
        var trace = Trace(z: [], messages: [], finalDuals: [])
        for rho in rhos {
            let xs = thetas.indices.map { localUpdate(theta: thetas[$0], dual: duals[$0], z: z, rho: rho) }
            let messages = thetas.indices.map { message(x: xs[$0], dual: duals[$0], rho: rho) }
            var next = [Double](repeating: 0, count: dimension)
            for i in thetas.indices { for d in 0..<dimension { next[d] += weights[i] * messages[i][d] } }
            z = next
            duals = thetas.indices.map { dualUpdate(dual: duals[$0], x: xs[$0], z: z, rho: rho) }
            trace.z.append(z)
            trace.messages.append(messages)
        }
        trace.finalDuals = duals
        return trace
    }

    /// rho_1 ... rho_K where rho is multiplied by `factor` every `every` iterations (the digest's
    /// unit case: 0.01 halved every 2 iterations).
    public static func decayingSchedule(initial: Double, factor: Double, every: Int, iterations: Int) -> [Double] {
        (0..<iterations).map { k in initial * pow(factor, Double(k / max(every, 1))) }
    }

    private static func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        for _ in 0..<Int(exponent) { result *= base }
        return result
    }
}

/// A field in which the message coefficients can be computed: Double for checks against a run,
/// integers modulo a prime for the exact audit.
public protocol CoefficientField {
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    init(_ value: Int)
}

extension Double: CoefficientField {}

/// Each message is affine in its site's two secrets with public coefficients:
///   m_i^k = theta[k] * theta_i + lambda[k] * lambda_i^0 + sum_{l < k} z[k][l] * z^l
/// (z^0 = 0 is listed for completeness), derived symbolically from the ADMM recurrences: every
/// quantity of site i is tracked as an affine form in (theta_i, lambda_i^0, z^0, ..., z^K).
public struct MessageModel<F: CoefficientField> {
    public var theta: [F]
    public var lambda: [F]
    public var z: [[F]]

    public init(rhos: [F]) {
        let count = rhos.count
        let width = 2 + count + 1  // theta, lambda0, z^0 ... z^K
        func unit(_ index: Int) -> [F] { (0..<width).map { F($0 == index ? 1 : 0) } }
        func combine(_ a: [F], _ sa: F, _ b: [F], _ sb: F) -> [F] { (0..<width).map { sa * a[$0] + sb * b[$0] } }
        var dual = unit(1)
        theta = []
        lambda = []
        z = []
        for k in 0..<count {
            let rho = rhos[k]
            let c = F(1) / (F(2) + rho)
            // x = c (2 theta - lambda + rho z^{k})   (z^{k} is the z before this iteration)
            var x = combine(unit(0), F(2) * c, dual, F(0) - c)
            x = combine(x, F(1), unit(2 + k), rho * c)
            let message = combine(x, F(1), dual, F(1) / rho)
            theta.append(message[0])
            lambda.append(message[1])
            z.append(Array(message[2..<(2 + k + 1)]))
            // lambda <- lambda + rho (x - z^{k+1})
            dual = combine(dual, F(1), x, rho)
            dual = combine(dual, F(1), unit(2 + k + 1), F(0) - rho)
        }
    }

    /// theta[k] / lambda[k]: the ratio that tells iterations apart. It grows strictly with k for positive
    /// rho, which is why any two messages of one site reveal theta_i.
    public var ratios: [F] { (0..<theta.count).map { theta[$0] / lambda[$0] } }
}
