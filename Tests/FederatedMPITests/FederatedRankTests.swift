import Federated
import Foundation
import MPI
import Runtime
import Tensors
import Testing

/// Federated aggregation and training under a real `mpirun` with 9 and 15 ranks (scripts/test.sh):
/// distributed ADMM against a serial run of the same iteration, against the exact mean, and what
/// every site receives against what docs/privacy.md says it receives.
///
/// One test whose scenarios run in a fixed order on every rank (they are collectives); a thrown error
/// aborts the job instead of leaving ranks waiting.
@Suite(.serialized, .enabled(if: MPIEnvironment.isUnderLauncher, "runs only under mpirun (scripts/test.sh starts it)"))
struct FederatedRankTests {
    let dimension = 257

    @Test func aggregationAndTraining() throws {
        try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        for masked in [false, true] {
            scenario("ADMM (\(masked ? "masked" : "plain")) equals a serial run and the exact mean", world) {
                try admmMatchesSerialRun(world, masked: masked)
            }
            scenario("each site receives only what docs/privacy.md lists (\(masked ? "masked" : "plain"))", world) {
                try receivesOnlyWhatIsDocumented(world, masked: masked)
            }
        }
        scenario("masked group sums equal plain ones", world) { try maskedGroupSumsEqualPlainOnes(world) }
        scenario("training with ADMM ends where FedAvg ends", world) { try trainingMatchesFedAvg(world) }
    }

    func scenario(_ name: String, _ world: Communicator, _ body: () throws -> Void) {
        do {
            try body()
            try world.barrier()
        } catch {
            MPIEnvironment.abort(code: 70, message: "scenario '\(name)' threw: \(error)")
        }
    }

    /// Every site's model, duals and weight, from seeds every rank knows (only tests may do this).
    func inputs(site: Int, sites: Int) -> (theta: [Double], duals: [Double], weight: Double) {
        var random = SplitMix64(seed: 41, stream: "federated-test", index: UInt64(site))
        let theta = (0..<dimension).map { _ in Double(random.nextUnitFloat()) - 0.5 }
        let duals = (0..<dimension).map { _ in Double(random.nextUnitFloat()) }
        let total = Double(sites * (sites + 1) / 2)
        return (theta, duals, Double(site + 1) / total)
    }

    /// The default schedule reaches the mean; `moderate` keeps later rhos large enough that the rounding
    /// of one iteration's z is not amplified by 1/rho in the next messages, so that runs which round
    /// differently (serial double, fixed point, masked) can be compared iteration by iteration.
    func schedule(_ world: Communicator, masked: Bool, moderate: Bool = false) throws -> AggregationSchedule {
        try AggregationSchedule(sites: world.size, iterations: nil, masked: masked, rho: "3", rhoAfter: moderate ? "0.5" : "0.001")
    }

    func admmMatchesSerialRun(_ world: Communicator, masked: Bool) throws {
        let sites = world.size
        let mine = inputs(site: world.rank, sites: sites)
        let all = (0..<sites).map { inputs(site: $0, sites: sites) }
        let moderate = try schedule(world, masked: masked, moderate: true)
        let compared = try SiteAggregator(world: world, schedule: moderate, secretSeed: 5)
        let trace = try compared.aggregate(theta: mine.theta, weight: mine.weight, round: 1, initialDuals: mine.duals, trace: true)
        try compared.free()
        let serial = AdmmAveraging.run(thetas: all.map(\.theta), weights: all.map(\.weight), initialDuals: all.map(\.duals),
                                       rhos: moderate.rhoValues)
        #expect(trace.zHistory.count == moderate.iterations)
        for k in 0..<moderate.iterations {
            // Fixed point rounds each contribution to 2^-33.
            let gap = zip(trace.zHistory[k], serial.z[k]).map { abs($0 - $1) }.max()!
            #expect(gap < 1e-8, "iteration \(k + 1): z differs from the serial run by \(gap)")
        }

        let schedule = try schedule(world, masked: masked)
        let aggregator = try SiteAggregator(world: world, schedule: schedule, secretSeed: 5)
        defer { try? aggregator.free() }
        let result = try aggregator.aggregate(theta: mine.theta, weight: mine.weight, round: 1, initialDuals: mine.duals)
        let mean = (0..<dimension).map { d in all.reduce(0.0) { $0 + $1.weight * $1.theta[d] } }
        #expect(relativeError(result.z, mean) < 1e-6)
        let masked = try aggregator.maskedMean(theta: mine.theta, weight: mine.weight, round: 1)
        #expect(relativeError(masked, mean) < 1e-8)
        // z is the same on every site, bit for bit.
        let first = try world.allgather(result.z.map(\.bitPattern))
        #expect((0..<sites).allSatisfy { s in Array(first[(s * dimension)..<((s + 1) * dimension)]) == result.z.map(\.bitPattern) })
        // Agreed values cost nothing extra but the leaders' combine: bytes are counted.
        #expect(aggregator.bytesSent > 0)
    }

    func receivesOnlyWhatIsDocumented(_ world: Communicator, masked: Bool) throws {
        let sites = world.size
        let schedule = try schedule(world, masked: masked, moderate: true)
        let log = ReceiveLog()
        let aggregator = try SiteAggregator(world: world, schedule: schedule, secretSeed: 6) { log.values.append($0) }
        defer { try? aggregator.free() }
        let mine = inputs(site: world.rank, sites: sites)
        let result = try aggregator.aggregate(theta: mine.theta, weight: mine.weight, round: 3, initialDuals: mine.duals, trace: true)
        _ = try aggregator.maskedMean(theta: mine.theta, weight: mine.weight, round: 3)
        let all = (0..<sites).map { inputs(site: $0, sites: sites) }
        let serial = AdmmAveraging.run(thetas: all.map(\.theta), weights: all.map(\.weight), initialDuals: all.map(\.duals),
                                       rhos: schedule.rhoValues)

        // Set-up: one seed from each lower-numbered site.
        let seeds = log.values.filter { $0.kind == .pairSeed }
        #expect(seeds.compactMap(\.fromSite).sorted() == Array(0..<world.rank))
        var senders = Set<Int>()
        for k in 0..<schedule.iterations {
            let group = schedule.parallelClass(iteration: k).first { $0.contains(world.rank) }!.sorted()
            // Only the group's leader (its lowest site) hears from the others.
            let mates = group[0] == world.rank ? Set(group).subtracting([world.rank]) : []
            let received = log.values.filter { $0.iteration == k }
            // Individual messages (plain) or masked shares (masked), from exactly the group-mates.
            let individual = received.filter { $0.kind == (masked ? .maskedShare : .groupMessage) }
            #expect(Set(individual.compactMap(\.fromSite)) == mates && individual.count == mates.count)
            #expect(received.filter { $0.kind == (masked ? .groupMessage : .maskedShare) }.isEmpty)
            // Nothing but those and z.
            #expect(received.allSatisfy { [.groupMessage, .maskedShare, .z].contains($0.kind) })
            #expect(received.filter { $0.kind == .z }.count == 1)
            for value in individual {
                let j = value.fromSite!
                let truth = serial.messages[k][j].map { all[j].weight * $0 }
                switch value.content {
                case .plain(let values):
                    #expect(zip(values, truth).allSatisfy { abs($0 - $1) < 1e-8 }, "site \(j)'s message in iteration \(k + 1)")
                case .fixedPoint(let share):
                    // A masked share is nowhere near the message under it.
                    let decoded = FixedPoint.decode(share)
                    #expect(zip(decoded, truth).filter { abs($0 - $1) < 1 }.count < 3, "site \(j)'s share looks unmasked")
                }
            }
            senders.formUnion(individual.compactMap(\.fromSite).map { $0 * 1000 + k % schedule.classesUsed })
            if case .fixedPoint(let z)? = received.first(where: { $0.kind == .z })?.content {
                #expect(FixedPoint.decode(z) == result.zHistory[k])
            }
        }
        // With K <= r nobody is heard from twice: every (sender, class) pair is a different sender.
        #expect(Set(senders.map { $0 / 1000 }).count == senders.count)
        // The mean for the error measurement, and nothing else outside the iterations.
        #expect(log.values.filter { $0.iteration == -1 && $0.kind != .pairSeed }.map(\.kind) == [.mean])
    }

    func maskedGroupSumsEqualPlainOnes(_ world: Communicator) throws {
        let mine = inputs(site: world.rank, sites: world.size)
        var sums: [[[Double]]] = []
        for masked in [false, true] {
            let aggregator = try SiteAggregator(world: world, schedule: try schedule(world, masked: masked, moderate: true), secretSeed: 7)
            sums.append(try aggregator.aggregate(theta: mine.theta, weight: mine.weight, round: 1, initialDuals: mine.duals,
                                                 trace: true).groupSums)
            try aggregator.free()
        }
        // Plain: the double sum rounded once; masked: each of (up to 5) contributions rounded. From the
        // second iteration on the two runs' z differ by that rounding too. Leaders hold group sums.
        let plan = try schedule(world, masked: false, moderate: true)
        let led = (0..<plan.iterations).filter { k in plan.parallelClass(iteration: k).contains { $0.min() == world.rank } }
        #expect(sums[0].count == led.count && sums[1].count == led.count)
        if led.first == 0 { #expect(zip(sums[0][0], sums[1][0]).allSatisfy { abs($0 - $1) <= 6 * 0x1p-33 }) }
        for (plain, masked) in zip(sums[0], sums[1]) {
            #expect(zip(plain, masked).allSatisfy { abs($0 - $1) <= 1e-8 })
        }
    }

    /// Same initial model and local training on every site, then FedAvg's exact mean or ADMM's z: after
    /// two rounds the parameters agree to 1e-5 relative; local-only training leaves sites apart.
    func trainingMatchesFedAvg(_ world: Communicator) throws {
        var spec = ModelSpec(kind: .mlp)
        spec.hidden = [24]
        spec.dropout = 0.25
        var random = SplitMix64(seed: 3, stream: "site-data", index: UInt64(world.rank))
        let count = 20 + 3 * world.rank
        let images = Tensor(shape: [count, 1, 28, 28]) { out in for i in 0..<out.count { out[i] = 2 * random.nextUnitFloat() - 1 } }
        let labels = Tensor(shape: [count], data: (0..<count).map { _ in Float(random.nextIndex(below: 10)) })
        let train = Examples.images(LabeledImages(images: images, labels: labels))
        let test = train.prefix(8)
        var finals: [AggregationKind: [Double]] = [:]
        for kind in [AggregationKind.fedavg, .admm, .local] {
            let configuration = FederatedConfiguration(
                spec: spec, optimizer: Adam(learningRate: 0.01), seed: 9, secretSeed: 4, aggregation: kind,
                schedule: kind == .admm ? try schedule(world, masked: true) : nil, localEpochs: 1, batchSize: 8)
            let site = try FederatedSite(configuration: configuration, world: world, train: train, test: test)
            for _ in 0..<2 {
                let report = try site.runRound()
                #expect(report.sites.count == world.size)
                #expect(report.global.loss.isFinite && report.global.accuracy != nil)
                if kind == .admm { #expect(report.aggregationError! < 1e-6) } else { #expect(report.aggregationError == nil) }
                if kind == .local { #expect(report.sites.allSatisfy { $0.bytesSent == 0 }) }
            }
            finals[kind] = site.parameters
            try site.free()
        }
        #expect(relativeError(finals[.admm]!, finals[.fedavg]!) < 1e-5)
        // Every site holds the same aggregated model; local models differ between sites.
        for kind in [AggregationKind.fedavg, .local] {
            let gathered = try world.allgather(finals[kind]!)
            let n = finals[kind]!.count
            let same = (0..<world.size).allSatisfy { Array(gathered[($0 * n)..<(($0 + 1) * n)]) == finals[kind]! }
            #expect(same == (kind == .fedavg))
        }
    }

    func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        let difference = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
        let norm = b.map { $0 * $0 }.reduce(0, +)
        return (difference / norm).squareRoot()
    }
}

/// Receives recorded by a site's observer (one thread).
final class ReceiveLog: @unchecked Sendable {
    var values: [ReceivedValue] = []
}
