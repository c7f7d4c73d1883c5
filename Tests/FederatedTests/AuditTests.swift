import Basics
import Testing
@testable import Federated

@Suite struct AuditTests {
    static let reference3 = ExactRho.linearSchedule(initial: "3", step: "0.0003", iterations: 20)!

    func audit(_ v: Int, _ k: Int, masked: Bool = false, sumsPublic: Bool = false) throws -> PrivacyAudit {
        let design = try #require(Designs.make(sites: v))
        return try PrivacyAudit(design: design, iterations: k, masked: masked, groupSumsPublic: sumsPublic,
                                rhos: Array(Self.reference3.prefix(k)))
    }

    /// Pairs (o, j) that share a group in two different iterations of the first k: the leaks the
    /// digest's argument predicts for single observers in plain mode.
    func pairsMeetingTwice(_ design: ResolvableDesign, _ k: Int) -> Set<[Int]> {
        var meetings: [[Int]: Int] = [:]
        for iteration in 0..<k {
            for group in design.classes[iteration % design.classes.count] {
                for a in group { for b in group where a != b { meetings[[a, b], default: 0] += 1 } }
            }
        }
        return Set(meetings.filter { $0.value >= 2 }.keys)
    }

    @Test func messageCoefficientsMatchTheHandDerivation() {
        // m^1 = 2c theta + (2c/rho) lambda, c = 1/(2+rho); with rho = 3: 2/5 and 2/15.
        let one = MessageModel<Double>(rhos: [3])
        #expect(abs(one.theta[0] - 0.4) < 1e-15)
        #expect(abs(one.lambda[0] - 2.0 / 15) < 1e-15)
        // m^2: theta 2c2 (1 + 2 rho1 c1 / rho2), lambda 4 c1 c2 / rho2; determinant -4 c1 c2 / rho1.
        let (r1, r2) = (3.0, 2.0)
        let (c1, c2) = (1 / (2 + r1), 1 / (2 + r2))
        let two = MessageModel<Double>(rhos: [r1, r2])
        #expect(abs(two.theta[1] - 2 * c2 * (1 + 2 * r1 * c1 / r2)) < 1e-15)
        #expect(abs(two.lambda[1] - 4 * c1 * c2 / r2) < 1e-15)
        let determinant = two.theta[0] * two.lambda[1] - two.theta[1] * two.lambda[0]
        #expect(abs(determinant + 4 * c1 * c2 / r1) < 1e-15)
        // The ratios theta/lambda grow strictly, so two messages of one site are independent.
        let ratios = MessageModel<Double>(rhos: Self.reference3.map(\.doubleValue)).ratios
        #expect(zip(ratios, ratios.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test func affineModelReproducesARunAndTwoMessagesRevealTheta() {
        var generator = SplitMix64(seed: 7)
        let sites = 5, dimension = 3
        let thetas = (0..<sites).map { _ in (0..<dimension).map { _ in Double.random(in: -1...1, using: &generator) } }
        let duals = (0..<sites).map { _ in (0..<dimension).map { _ in Double.random(in: 0..<1, using: &generator) } }
        let weights = [0.1, 0.2, 0.3, 0.15, 0.25]
        let rhos = [3.0, 2.9997, 2.9994, 2.9991]
        let trace = AdmmAveraging.run(thetas: thetas, weights: weights, initialDuals: duals, rhos: rhos)
        let model = MessageModel<Double>(rhos: rhos)
        for k in 0..<rhos.count {
            for i in 0..<sites {
                for d in 0..<dimension {
                    var predicted = model.theta[k] * thetas[i][d] + model.lambda[k] * duals[i][d]
                    for l in 1..<(k + 1) { predicted += model.z[k][l] * trace.z[l - 1][d] }
                    #expect(abs(predicted - trace.messages[k][i][d]) < 1e-12)
                }
            }
        }
        // An eavesdropper with m_j^1 and m_j^3 solves the 2x2 system for theta_j.
        let j = 2
        for d in 0..<dimension {
            let m1 = trace.messages[0][j][d]
            var m3 = trace.messages[2][j][d]
            for l in 1..<3 { m3 -= model.z[2][l] * trace.z[l - 1][d] }
            let det = model.theta[0] * model.lambda[2] - model.theta[2] * model.lambda[0]
            let recovered = (m1 * model.lambda[2] - m3 * model.lambda[0]) / det
            #expect(abs(recovered - thetas[j][d]) < 1e-9)
        }
    }

    @Test func digestUnitCaseAndContraction() {
        let m = [0.1, 0.2, 0.3, 0.4]
        let rhos = AdmmAveraging.decayingSchedule(initial: 0.01, factor: 0.5, every: 2, iterations: 10)
        var generator = SplitMix64(seed: 3)
        let duals = (0..<2).map { _ in (0..<4).map { _ in Double.random(in: 0..<1, using: &generator) } }
        let trace = AdmmAveraging.run(thetas: [m, m.map { -$0 }], weights: [0.8, 0.2], initialDuals: duals, rhos: rhos)
        let expected = [0.06, 0.12, 0.18, 0.24]
        for d in 0..<4 { #expect(abs(trace.z[9][d] - expected[d]) < 5e-4) }
        // z_k - avg = rho_k / (2 + rho_k) (z_{k-1} - avg) from the second iteration on.
        let short = AdmmAveraging.run(thetas: [m, m.map { -$0 }], weights: [0.8, 0.2], initialDuals: duals, rhos: [3, 3, 1])
        for k in 1..<3 {
            let r = [3.0, 3, 1][k]
            for d in 0..<4 {
                #expect(abs((short.z[k][d] - expected[d]) - r / (2 + r) * (short.z[k - 1][d] - expected[d])) < 1e-12)
            }
        }
    }

    @Test func threeSitesWorkedByHand() throws {
        // One class {0,1,2}. K = 1: a site sees m_1 and m_2 once each; two unknowns each, clean.
        #expect(try audit(3, 1).leaks(coalitionSize: 1).leaks.isEmpty)
        // K = 2 reuses the class: every site sees both others twice and learns both.
        let twice = try audit(3, 2).leaks(coalitionSize: 1).leaks
        #expect(Set(twice.map { [$0.observers[0], $0.learns] }) == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]])
        // Masked, K = 2: a site sees only the group sum, which is z: it learns w1 theta1 + w2 theta2, no single theta.
        #expect(try audit(3, 2, masked: true).leaks(coalitionSize: 1).leaks.isEmpty)
        // Two colluders know their own models and the average: the third model follows (K >= 2) ...
        let pair = try audit(3, 2, masked: true).leaks(coalitionSize: 2).leaks
        #expect(pair.count == 3 && pair.contains(PrivacyAudit.Leak(observers: [0, 1], learns: 2)))
        // ... and from one iteration too: z^1 still carries lambda_2, but the round's output, the
        // mean, is published (every site loads it), and the audit counts it.
        let once = try audit(3, 1, masked: true).leaks(coalitionSize: 2).leaks
        #expect(once.count == 3 && once.contains(PrivacyAudit.Leak(observers: [0, 1], learns: 2)))
    }

    @Test func referenceScheduleIsFlaggedAndShortRoundsAreClean() throws {
        for v in [9, 15] {
            let design = try #require(Designs.make(sites: v))
            let r = design.classes.count
            for k in [1, r] {
                #expect(try audit(v, k).leaks(coalitionSize: 1).leaks.isEmpty, "V=\(v) K=\(k)")
            }
            // The reference code's 2r - 1 iterations: exactly the pairs that meet twice leak.
            let leaks = try audit(v, 2 * r - 1).leaks(coalitionSize: 1).leaks
            #expect(!leaks.isEmpty)
            #expect(Set(leaks.map { [$0.observers[0], $0.learns] }) == pairsMeetingTwice(design, 2 * r - 1))
        }
    }

    @Test func maskedSumsAndCoalitions() throws {
        let design = try #require(Designs.make(sites: 9))
        let masked = try audit(9, 4, masked: true)
        #expect(try masked.leaks(coalitionSize: 1).leaks.isEmpty)
        #expect(try masked.leaks(coalitionSize: 3).leaks.isEmpty)
        #expect(masked.largestCoalitionCleared() == (3, true))
        // Reusing classes (K = 2r - 1) keeps single sites blind but lets two group-mates of j see m_j twice.
        let repeated = try audit(9, 7, masked: true)
        #expect(try repeated.leaks(coalitionSize: 1).leaks.isEmpty)
        #expect(repeated.largestCoalitionCleared() == (1, true))
        // Four colluders holding both other members of two of site j's groups see m_j alone twice.
        let j = 0
        let groupsOfJ = design.classes.prefix(2).map { $0.first { $0.contains(j) }! }
        let coalition = groupsOfJ.flatMap { $0.filter { $0 != j } }.sorted()
        #expect(masked.learned(by: coalition).contains(j))
        // Plain mode: two colluders who each met j in a different iteration see m_j twice.
        let plain = try audit(9, 4)
        let a = groupsOfJ[0].first { $0 != j }!, b = groupsOfJ[1].first { $0 != j }!
        #expect(plain.learned(by: [a, b].sorted()).contains(j))
    }

    @Test func publicGroupSumsChangeTheVerdict() throws {
        // If every group sum were broadcast, 15 sites over 7 iterations give 35 sums for 28 unknowns.
        let open = try audit(15, 7, masked: true, sumsPublic: true)
        #expect(!open.learned(by: [0]).isEmpty)
        #expect(try audit(15, 7, masked: true).learned(by: [0]).isEmpty)
    }

    @Test func exactRhoParsing() {
        #expect(ExactRho(decimal: "2.9997") == ExactRho(numerator: 29997, denominator: 10000))
        #expect(ExactRho(decimal: "abc") == nil)
        #expect(ExactRho(decimal: "-1") == nil)
        #expect(ExactRho.linearSchedule(initial: "1", step: "0.5", iterations: 3) == nil)
        #expect(ExactRho.linearSchedule(initial: "3", step: "0", iterations: 2)?.count == 2)
    }
}
