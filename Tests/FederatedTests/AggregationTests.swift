import Basics
import Federated
import Testing

/// The pieces of federated aggregation that need no MPI: fixed point, pairwise masks, partitions and
/// the schedule with its audit.
struct FixedPointAndMaskTests {
    @Test func fixedPointRoundTripsWithinHalfAUnitAndRejectsWhatItCannotCarry() throws {
        for value in [0.0, 1.0, -1.0, 0.1, -123.456, 1e-9, 1e8, -1e9] {
            let decoded = FixedPoint.decode(try FixedPoint.encode(value))
            #expect(abs(decoded - value) <= 0x1p-33, "value \(value) decoded as \(decoded)")
        }
        #expect(throws: FixedPoint.OutOfRange.self) { try FixedPoint.encode(2e9) }
        #expect(throws: FixedPoint.OutOfRange.self) { try FixedPoint.encode(Double.nan) }
        #expect(throws: FixedPoint.OutOfRange.self) { try FixedPoint.encode(-Double.infinity) }
        // Negative values wrap around and come back.
        var sum = try FixedPoint.encode([2.5, -7.25])
        FixedPoint.add(&sum, try FixedPoint.encode([-3.0, 7.25]))
        #expect(FixedPoint.decode(sum) == [-0.5, 0])
    }

    /// Five sites with pairwise keys from X25519: masks cancel exactly in the sum over any set that
    /// holds both ends of every pair, and a single masked share is unrelated to the value under it.
    @Test func pairwiseMasksCancelInTheSumAndHideEachShare() throws {
        let sites = 5
        let secrets = (0..<sites).map { _ in SiteSecrets() }
        let keys = secrets.map(\.publicKey)
        let masks = try (0..<sites).map { try secrets[$0].pairwiseMasks(site: $0, publicKeys: keys) }
        let values = (0..<sites).map { i in (0..<64).map { Double(i * 100 + $0) / 7 - 20 } }
        let group = [0, 2, 3]
        let purpose = MaskPurpose(round: 1, iteration: 0, phase: .group)
        var sum = [UInt64](repeating: 0, count: 64)
        var plainSum = [Double](repeating: 0, count: 64)
        for i in group {
            var share = try FixedPoint.encode(values[i])
            let unmasked = share
            masks[i].mask(&share, members: group, purpose: purpose)
            // Each element differs from the value, and the high bits are spread out (not a small offset).
            #expect(zip(share, unmasked).allSatisfy { $0 != $1 })
            #expect(Set(share.map { $0 >> 60 }).count >= 8)
            FixedPoint.add(&sum, share)
            for e in 0..<64 { plainSum[e] += values[i][e] }
        }
        let decoded = FixedPoint.decode(sum)
        for e in 0..<64 { #expect(abs(decoded[e] - plainSum[e]) <= 3 * 0x1p-33) }
        // Another purpose gives other masks; a partial sum (two of three members) stays masked.
        var a = try FixedPoint.encode(values[0]), b = a
        masks[0].mask(&a, members: group, purpose: purpose)
        masks[0].mask(&b, members: group, purpose: MaskPurpose(round: 1, iteration: 1, phase: .group))
        #expect(a != b)
        var partial = [UInt64](repeating: 0, count: 64)
        for i in [0, 2] {
            var share = try FixedPoint.encode(values[i])
            masks[i].mask(&share, members: group, purpose: purpose)
            FixedPoint.add(&partial, share)
        }
        #expect(zip(FixedPoint.decode(partial), (0..<64).map { values[0][$0] + values[2][$0] }).allSatisfy { abs($0 - $1) > 1 })
    }
}

struct PartitionTests {
    let labels = (0..<3000).map { ($0 * 7 + $0 / 13) % 10 }

    func checkCoversEveryExampleOnce(_ parts: [[Int]]) {
        let all = parts.flatMap { $0 }
        #expect(all.count == labels.count)
        #expect(Set(all).count == labels.count)
    }

    /// How many classes hold at least 5% of a site's examples, averaged over sites.
    func classesPerSite(_ parts: [[Int]]) -> Double {
        let counts = parts.map { part -> Int in
            var byClass = [Int](repeating: 0, count: 10)
            for i in part { byClass[labels[i]] += 1 }
            return byClass.filter { Double($0) >= 0.05 * Double(part.count) }.count
        }
        return Double(counts.reduce(0, +)) / Double(parts.count)
    }

    @Test func iidSplitsEvenly() throws {
        let parts = try DataPartition.split(labels: labels, sites: 9, scheme: .iid, seed: 1)
        checkCoversEveryExampleOnce(parts)
        #expect(parts.allSatisfy { $0.count == 333 || $0.count == 334 })
        #expect(classesPerSite(parts) == 10)
    }

    @Test func shardsGiveFewClassesPerSite() throws {
        let parts = try DataPartition.split(labels: labels, sites: 15, scheme: .shards(perSite: 2), seed: 1)
        checkCoversEveryExampleOnce(parts)
        #expect(parts.allSatisfy { $0.count == 200 })
        for part in parts { #expect(Set(part.map { labels[$0] }).count <= 4) }
    }

    @Test func dirichletIsSeededAndSkewedBySmallAlpha() throws {
        let skewed = try DataPartition.split(labels: labels, sites: 9, scheme: .dirichlet(alpha: 0.1), seed: 3)
        let again = try DataPartition.split(labels: labels, sites: 9, scheme: .dirichlet(alpha: 0.1), seed: 3)
        let other = try DataPartition.split(labels: labels, sites: 9, scheme: .dirichlet(alpha: 0.1), seed: 4)
        let even = try DataPartition.split(labels: labels, sites: 9, scheme: .dirichlet(alpha: 100), seed: 3)
        checkCoversEveryExampleOnce(skewed)
        checkCoversEveryExampleOnce(even)
        #expect(skewed == again)
        #expect(skewed != other)
        #expect(skewed.allSatisfy { $0.count >= 10 })
        #expect(classesPerSite(skewed) < 5)
        #expect(classesPerSite(even) == 10)
    }

    /// The smallest alpha accepted still gives every site examples (no division by an underflowed total).
    @Test func theSmallestAlphaStillSplits() throws {
        let parts = try DataPartition.split(labels: labels, sites: 3, scheme: .dirichlet(alpha: 0.001), seed: 1)
        checkCoversEveryExampleOnce(parts)
    }

    @Test func gammaSamplesHaveTheirMean() {
        var random = SplitMix64(seed: 9)
        for shape in [0.3, 1.0, 4.0] {
            let n = 20_000
            let mean = (0..<n).reduce(0.0) { total, _ in total + DataPartition.gamma(shape: shape, &random) } / Double(n)
            // Standard error sqrt(shape / n): five of them.
            #expect(abs(mean - shape) < 5 * (shape / Double(n)).squareRoot(), "shape \(shape): mean \(mean)")
        }
    }

    @Test func groupsAreDealtEvenlyAndBadRequestsAreRejected() throws {
        let parts = try DataPartition.assignGroups(sizes: [50, 40, 30, 20, 10, 10], sites: 3)
        #expect(parts == [[0, 5], [1, 4], [2, 3]])
        #expect(throws: DataPartition.Failure.self) { try DataPartition.assignGroups(sizes: [1, 2], sites: 3) }
        #expect(throws: DataPartition.Failure.self) { try DataPartition.split(labels: [0, 1], sites: 3, scheme: .iid, seed: 1) }
        #expect(throws: DataPartition.Failure.self) { try DataPartition.split(labels: labels, sites: 3, scheme: .natural, seed: 1) }
        #expect(PartitionScheme(parsing: "dirichlet:0.5") == .dirichlet(alpha: 0.5))
        #expect(PartitionScheme(parsing: "shards:2") == .shards(perSite: 2))
        for bad in ["dirichlet", "dirichlet:0", "dirichlet:-1", "dirichlet:1e-300", "dirichlet:nan", "shards:0", "shards:x", "random", ""] {
            #expect(PartitionScheme(parsing: bad) == nil, "\(bad) should be rejected")
        }
    }
}

struct AggregationScheduleTests {
    /// The initial lenet's parameter RMS is about 0.027; the chooser's tests use scales around it.
    let lenetRMS = 0.027

    /// The default schedule for every site count from 3 to 40 that has a design: within 1e-6 by the
    /// closed form and cleared by the audit (plain, or masked where plain leaks), or refused.
    @Test func everySiteCountGetsAnExactAndClearedScheduleOrARefusal() throws {
        var chosen: [Int: ScheduleChoice] = [:]
        for sites in 3...40 {
            do {
                let choice = try AggregationSchedule.choose(ScheduleRequest(sites: sites, parameterRMS: lenetRMS))
                #expect(choice.predictedError <= AggregationSchedule.errorTarget, "\(sites) sites")
                #expect(choice.audit.leakFree, "\(sites) sites")
                // The audit the choice carries is the schedule's own, recomputed here.
                #expect(try choice.schedule.audit().leakFree)
                if choice.schedule.masked {
                    #expect(try !choice.schedule.withMasking(false).audit().leakFree, "\(sites) sites: masking chosen without need")
                    #expect(choice.maskingReason != nil)
                }
                chosen[sites] = choice
            } catch {
                #expect("\(error)".contains("--aggregation fedavg"), "\(sites) sites: \(error)")
            }
        }
        // The site counts the issue names: each aggregates within 1e-6 by default.
        for sites in [4, 9, 10, 15] { #expect(chosen[sites] != nil, "\(sites) sites got no schedule") }
        // One class (4 and 10 sites): repeated classes need masking; 9 and 15 sites stay plain.
        #expect(chosen[4]?.schedule.masked == true && chosen[10]?.schedule.masked == true)
        #expect(chosen[9]?.schedule.masked == false && chosen[15]?.schedule.masked == false)
    }

    /// An explicit --iterations above the error target is refused with what would reach it; a schedule
    /// the audit flags in both modes is refused with what would work.
    @Test func inexactAndLeakyRequestsAreRefusedWithAdvice() throws {
        do {
            _ = try AggregationSchedule.choose(ScheduleRequest(sites: 9, iterations: 1, parameterRMS: lenetRMS))
            Issue.record("one iteration was accepted")
        } catch {
            #expect("\(error)".contains("--iterations 1 leaves a predicted aggregation error"))
            #expect("\(error)".contains("use --iterations 3 or more"))
        }
        let inexact = try AggregationSchedule.choose(ScheduleRequest(sites: 9, iterations: 1, parameterRMS: lenetRMS, allowInexact: true))
        #expect(inexact.predictedError > 1)
        // Plain repeats classes beyond r = 4; masked K = 7 clears single sites but not pairs.
        do {
            _ = try AggregationSchedule.choose(ScheduleRequest(sites: 9, iterations: 7, collusion: 2, parameterRMS: lenetRMS))
            Issue.record("a leaky schedule was accepted")
        } catch {
            #expect("\(error)".contains("the privacy audit flags every schedule of 7 iterations"))
            #expect("\(error)".contains("a smaller --collusion"))
            #expect("\(error)".contains("--aggregation fedavg"))
        }
        let leaky = try AggregationSchedule.choose(ScheduleRequest(sites: 9, iterations: 7, masked: false, parameterRMS: lenetRMS,
                                                                   allowLeaky: true))
        #expect(!leaky.audit.leakFree && !leaky.schedule.masked)
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule.choose(ScheduleRequest(sites: 9, collusion: 9, parameterRMS: lenetRMS))
        }
    }

    /// The reference code's K = 2r - 1 plain iterations: flagged, exactly as `fedbaechi audit` says.
    @Test func theReferenceScheduleIsFlagged() throws {
        let schedule = try AggregationSchedule(sites: 9, iterations: 7, masked: false, rho: "3", rhoAfter: "0.001")
        let report = try schedule.audit()
        #expect(!report.leakFree)
        #expect(report.leaks.contains { $0.observers.count == 1 })
    }

    /// The published mean is part of every site's view: with it, V - 1 colluders learn the last
    /// site's model even from one masked iteration.
    @Test func thePublishedMeanIsAudited() throws {
        let schedule = try AggregationSchedule(sites: 9, iterations: 1, masked: true, rho: "3", rhoAfter: "0.001")
        let report = try schedule.audit(collusion: 8)
        #expect(report.leaks.count == 9)
        #expect(report.leaks.allSatisfy { !$0.observers.contains($0.learns) })
    }

    @Test func badSchedulesAreRejected() {
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 2, iterations: 3, masked: false, rho: "3", rhoAfter: "0.001")
        }
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 9, iterations: 0, masked: false, rho: "3", rhoAfter: "0.001")
        }
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 9, iterations: 3, masked: false, rho: "-1", rhoAfter: "0.001")
        }
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 9, iterations: 3, masked: false, rho: "3", rhoAfter: "0")
        }
        // Duals so wide that messages leave the fixed-point range.
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 9, iterations: 3, masked: false, rho: "3", rhoAfter: "0.001", dualRange: 1e6)
        }
    }

    /// The closed form against a serial run in doubles, for several dual ranges and model scales: the
    /// predicted error bounds the measured one, the per-iteration factor is rho/(2+rho), and the
    /// estimate from the public z history equals the measured error.
    @Test func theClosedFormBoundsTheErrorAndTheZHistoryMeasuresIt() throws {
        var random = SplitMix64(seed: 2)
        func unit() -> Double { Double(random.next() >> 11) * 0x1p-53 }
        for (range, rms) in [(1.0, 0.03), (10.0, 0.03), (1.0, 0.3), (0.1, 0.01)] {
            let schedule = try AggregationSchedule(sites: 9, iterations: 4, masked: false, rho: "3", rhoAfter: "0.001", dualRange: range)
            let dimension = 200
            // Uniform on [-a, a] has RMS a / sqrt(3).
            let thetas = (0..<9).map { _ in (0..<dimension).map { _ in (2 * unit() - 1) * rms * 3.0.squareRoot() } }
            let duals = (0..<9).map { _ in (0..<dimension).map { _ in (unit() - 0.5) * range } }
            let sizes = (1...9).map(Double.init)
            let weights = sizes.map { $0 / sizes.reduce(0, +) }
            let mean = (0..<dimension).map { d in (0..<9).reduce(0.0) { $0 + weights[$1] * thetas[$1][d] } }
            let trace = AdmmAveraging.run(thetas: thetas, weights: weights, initialDuals: duals, rhos: schedule.rhoValues)
            func error(_ z: [Double]) -> Double { zip(z, mean).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() }
            let norm = mean.map { $0 * $0 }.reduce(0, +).squareRoot()
            for k in 1..<4 {
                let bound = try AggregationSchedule(sites: 9, iterations: k, masked: false, rho: "3", rhoAfter: "0.001", dualRange: range)
                    .predictedError(parameterRMS: norm / Double(dimension).squareRoot())
                #expect(error(trace.z[k - 1]) / norm <= bound, "range \(range), rms \(rms), \(k) iterations")
                if k >= 2 {
                    let rho = schedule.rhoValues[k - 1]
                    #expect(abs(error(trace.z[k - 1]) / error(trace.z[k - 2]) / (rho / (2 + rho)) - 1) < 1e-2)
                    // z_k - mean = (z_(k-1) - z_k) rho_k / 2, from public values only.
                    let estimate = (0..<dimension).map { (trace.z[k - 2][$0] - trace.z[k - 1][$0]) * rho / 2 }
                    let gap = zip(estimate, (0..<dimension).map { trace.z[k - 1][$0] - mean[$0] }).map { abs($0 - $1) }.max()!
                    #expect(gap <= 1e-2 * error(trace.z[k - 1]) + 1e-12)
                }
            }
        }
    }
}

extension AggregationSchedule {
    /// The same schedule with masking on or off.
    func withMasking(_ masked: Bool) throws -> AggregationSchedule {
        try AggregationSchedule(sites: design.sites, iterations: iterations, masked: masked, rho: "3", rhoAfter: "0.001", dualRange: dualRange)
    }
}
