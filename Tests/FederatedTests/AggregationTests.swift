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

    /// Five sites with pairwise seeds: masks cancel exactly in the sum over any set that holds both ends
    /// of every pair, and a single masked share is unrelated to the value under it.
    @Test func pairwiseMasksCancelInTheSumAndHideEachShare() throws {
        let sites = 5
        var generator = SeededGenerator(seed: 11)
        var pairSeeds = [[UInt64]](repeating: [UInt64](repeating: 0, count: sites), count: sites)
        for i in 0..<sites { for j in (i + 1)..<sites { pairSeeds[i][j] = generator.next(); pairSeeds[j][i] = pairSeeds[i][j] } }
        let masks = (0..<sites).map { i in
            PairwiseMasks(site: i, seeds: Dictionary(uniqueKeysWithValues: (0..<sites).filter { $0 != i }.map { ($0, pairSeeds[i][$0]) }))
        }
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
        var random = SeededGenerator(seed: 9)
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
    @Test func defaultIterationsAreTheClassCountAndTheAuditClearsThem() throws {
        for sites in [9, 15] {
            let schedule = try AggregationSchedule(sites: sites, iterations: nil, masked: false, rho: "3", rhoAfter: "0.001")
            #expect(schedule.iterations == (sites - 1) / 2)
            #expect(schedule.rhoValues.first == 3 && schedule.rhoValues.dropFirst().allSatisfy { $0 == 0.001 })
            #expect(try schedule.audit().leakFree)
        }
    }

    /// The reference code's K = 2r - 1 plain iterations: flagged, exactly as `fedbaechi audit` says.
    @Test func theReferenceScheduleIsFlagged() throws {
        let schedule = try AggregationSchedule(sites: 9, iterations: 7, masked: false, rho: "3", rhoAfter: "0.001")
        let report = try schedule.audit()
        #expect(!report.leakFree)
        #expect(report.leaks.contains { $0.observers.count == 1 })
    }

    @Test func badSchedulesAreRejected() {
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 2, iterations: nil, masked: false, rho: "3", rhoAfter: "0.001")
        }
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 9, iterations: 0, masked: false, rho: "3", rhoAfter: "0.001")
        }
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 9, iterations: nil, masked: false, rho: "-1", rhoAfter: "0.001")
        }
        #expect(throws: AggregationSchedule.Failure.self) {
            try AggregationSchedule(sites: 9, iterations: nil, masked: false, rho: "3", rhoAfter: "0")
        }
    }

    /// The digest's oracle on the default schedule: after the first iteration the error shrinks by
    /// rho/(2+rho) exactly, so K = r iterations reach the weighted mean far below 1e-6.
    @Test func theDefaultScheduleContractsAsTheClosedFormSays() throws {
        let schedule = try AggregationSchedule(sites: 9, iterations: nil, masked: false, rho: "3", rhoAfter: "0.001")
        var random = SeededGenerator(seed: 2)
        func unit() -> Double { Double(random.next() >> 11) * 0x1p-53 }
        let thetas = (0..<9).map { _ in (0..<20).map { _ in unit() - 0.5 } }
        let duals = (0..<9).map { _ in (0..<20).map { _ in unit() } }
        let sizes = (1...9).map(Double.init)
        let weights = sizes.map { $0 / sizes.reduce(0, +) }
        let mean = (0..<20).map { d in (0..<9).reduce(0.0) { $0 + weights[$1] * thetas[$1][d] } }
        let trace = AdmmAveraging.run(thetas: thetas, weights: weights, initialDuals: duals, rhos: schedule.rhoValues)
        func error(_ z: [Double]) -> Double { zip(z, mean).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() }
        for k in 1..<trace.z.count {
            let rho = schedule.rhoValues[k]
            // Rounding in messages of size 1/rho limits how closely the tiny late errors can be compared.
            #expect(abs(error(trace.z[k]) / error(trace.z[k - 1]) / (rho / (2 + rho)) - 1) < 1e-2)
        }
        let norm = mean.map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(error(trace.z.last!) / norm < 1e-6)
    }
}
