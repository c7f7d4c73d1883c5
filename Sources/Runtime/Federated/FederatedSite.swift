import Basics
import Federated
import Foundation
import MPI
import Tensors

/// How the sites combine their models after local training.
public enum AggregationKind: String, CaseIterable, Sendable {
    /// Private ADMM over block-design groups (`SiteAggregator`).
    case admm
    /// The exact weighted mean by one MPI allreduce: the baseline, with no privacy.
    case fedavg
    /// No aggregation: every site keeps its own model (the lower baseline).
    case local
}

/// What a federated job trains and how it aggregates: the same on every site.
public struct FederatedConfiguration: Sendable {
    public var spec: any ModelRecipe
    public var optimizer: any Optimizer
    public var seed: UInt64
    /// Where each site's keys come from (`SiteSecrets`).
    public var secrets: SecretSource
    /// Also form the exact mean each round, by a sum masked over all sites, to check the aggregation
    /// error against it (a diagnostic: the error estimate from the public z history needs no mean).
    public var exactMeanDiagnostic: Bool
    public var aggregation: AggregationKind
    /// The ADMM schedule (only for `.admm`).
    public var schedule: AggregationSchedule?
    public var localEpochs: Int
    /// Local steps per round instead of `localEpochs` whole passes: the site trains on its next
    /// `localSteps` batches, continuing through its seeded epochs from round to round.
    public var localSteps: Int?
    public var batchSize: Int
    /// Local batches in a seeded order each epoch (the default), or in file order.
    public var shuffle = true

    public init(spec: any ModelRecipe, optimizer: any Optimizer, seed: UInt64, secrets: SecretSource = .random, aggregation: AggregationKind,
                schedule: AggregationSchedule?, localEpochs: Int, localSteps: Int? = nil, batchSize: Int,
                exactMeanDiagnostic: Bool = false) {
        self.spec = spec
        self.optimizer = optimizer
        self.seed = seed
        self.secrets = secrets
        self.exactMeanDiagnostic = exactMeanDiagnostic
        self.aggregation = aggregation
        self.schedule = schedule
        self.localEpochs = localEpochs
        self.localSteps = localSteps
        self.batchSize = batchSize
    }
}

/// Where a site's keys come from.
public enum SecretSource: Sendable, Equatable {
    /// The operating system's cryptographic generator on each site: what real runs use.
    case random
    /// Derived from this seed and the site's rank: runs repeat bit for bit, and every site can compute
    /// every other site's secrets. Tests and experiments only (`--insecure-reproducible-secrets`).
    case insecureReproducible(seed: UInt64)

    public func secrets(site: Int) -> SiteSecrets {
        switch self {
        case .random: SiteSecrets()
        case .insecureReproducible(let seed): SiteSecrets(insecureReproducibleFrom: seed, site: site)
        }
    }
}

/// One site's figures for one round, as every site learns them at the round's end.
public struct SiteRoundStats: Sendable, Codable {
    public var site: Int
    public var trainExamples: Int
    /// Mean training loss of the round's local epochs.
    public var trainLoss: Double
    /// The site's own model after local training (before aggregation), on the site's slice of the test set.
    public var testLoss: Double
    public var testAccuracy: Double?
    public var testExamples: Int
    /// Bytes of the site's data handed to MPI during the round's aggregation.
    public var bytesSent: Int
    public var localSeconds: Double
    public var aggregationSeconds: Double

    enum CodingKeys: String, CodingKey {
        case site
        case trainExamples = "train_examples", trainLoss = "train_loss", testLoss = "test_loss"
        case testAccuracy = "test_accuracy", testExamples = "test_examples", bytesSent = "bytes_sent"
        case localSeconds = "local_seconds", aggregationSeconds = "aggregation_seconds"
    }
}

extension SiteRoundStats {
    /// How many doubles `packed` holds: every site sends this many, and site s's are the s-th run of them.
    static let packedCount = 8

    /// The figures as one site sends them to every other (the site is the sender's rank, not sent);
    /// a test accuracy of nil (language models) travels as -1.
    var packed: [Double] {
        [trainLoss, testLoss, testAccuracy ?? -1, Double(testExamples), Double(trainExamples), Double(bytesSent),
         localSeconds, aggregationSeconds]
    }

    /// The figures site `site` sent as `packed`.
    init(site: Int, packed v: ArraySlice<Double>) throws {
        guard v.count == Self.packedCount else {
            throw LogicError("site \(site) sent \(v.count) round figures, \(Self.packedCount) expected")
        }
        let v = Array(v)
        self.init(site: site, trainExamples: Int(v[4]), trainLoss: v[0], testLoss: v[1],
                  testAccuracy: v[2] < 0 ? nil : v[2], testExamples: Int(v[3]), bytesSent: Int(v[5]),
                  localSeconds: v[6], aggregationSeconds: v[7])
    }
}

/// A round as rank 0 reports it.
public struct FederatedRoundReport: Sendable {
    public var round: Int
    /// The aggregated model on the whole test set (for `.local`: each site's own model on its slice,
    /// combined: the accuracy a user of a random site's model would see).
    public var global: Evaluation
    public var sites: [SiteRoundStats]
    /// ||z - mean|| / ||mean|| from the public z history (ADMM with two or more iterations; FedAvg's z
    /// is the exact mean).
    public var aggregationError: Double?
    /// The same against the exact mean, with `exactMeanDiagnostic` only.
    public var exactAggregationError: Double?
    public var seconds: Double
}

/// One rank's site: its private training data, its model, and its side of aggregation.
///
/// Every site starts from the same initial model (seeded by the run's seed); shuffling and dropout are
/// seeded per site. Each round: local epochs, aggregation, then the test figures of every site on
/// every site. Every public method is collective over the world.
public final class FederatedSite: @unchecked Sendable {
    // @unchecked: one thread uses a site; MPI serialises the rest.
    public let configuration: FederatedConfiguration
    public let world: Communicator
    public let trainer: Trainer
    public let train: Examples
    /// This site's slice of the shared test set (sites score in parallel, then combine).
    public let test: Examples
    /// w_i = |D_i| / sum |D|.
    public let weight: Double
    public let aggregator: SiteAggregator?
    public private(set) var round = 0
    /// The most local steps any site takes in a round: a site done sooner waits that much longer for the
    /// others, and its peer watch allows for it.
    public let mostLocalStepsPerRound: Int

    public init(configuration: FederatedConfiguration, world: Communicator, train: Examples, test: Examples,
                observer: ((ReceivedValue) -> Void)? = nil) throws {
        self.configuration = configuration
        self.world = world
        self.train = train
        self.test = test
        var siteSeeds = SplitMix64(seed: configuration.seed, stream: "site", index: UInt64(world.rank))
        let siteSeed = siteSeeds.next()
        trainer = Trainer(model: configuration.spec.build(seed: configuration.seed), optimizer: configuration.optimizer,
                          seed: siteSeed)
        let total = try world.allreduce(Double(train.count), .sum)
        guard total > 0 else { throw FederatedError("no site has training examples") }
        weight = Double(train.count) / total
        let ownSteps = configuration.localSteps ?? configuration.localEpochs
            * Batching(examples: train.count, batchSize: configuration.batchSize, shuffle: configuration.shuffle).stepsPerEpoch
        mostLocalStepsPerRound = try world.allreduce(ownSteps, .max)
        if configuration.aggregation == .admm {
            guard let schedule = configuration.schedule else { throw FederatedError("ADMM aggregation needs a schedule") }
            aggregator = try SiteAggregator(world: world, schedule: schedule, secrets: configuration.secrets.secrets(site: world.rank),
                                            observer: observer)
        } else {
            aggregator = nil
        }
    }

    /// How this site's data is cut into steps.
    public var batching: Batching { Batching(examples: train.count, batchSize: configuration.batchSize, shuffle: configuration.shuffle) }

    /// Local training steps in each round.
    public var localStepsPerRound: Int { configuration.localSteps ?? configuration.localEpochs * batching.stepsPerEpoch }

    /// The model's trainable values, flattened in the parameter store's order.
    public var parameters: [Double] {
        let store = trainer.model.parameters
        return store.names.flatMap { store.values(of: $0)!.map(Double.init) }
    }

    public func load(_ values: [Double]) throws {
        let store = trainer.model.parameters
        var offset = 0
        for name in store.names {
            let count = store.tensor(name)!.count
            try store.set(name, values[offset..<(offset + count)].map { Float($0) })
            offset += count
        }
    }

    /// One round: local training, aggregation, scoring. `progress(step, steps, loss)` reports local
    /// training on this site.
    public func runRound(progress: (Int, Int, Float) -> Void = { _, _, _ in }) throws -> FederatedRoundReport {
        round += 1
        let started = Date()
        let trainLoss = trainer.train(train, batching: batching, count: localStepsPerRound, progress: progress)
        let localSeconds = Date().timeIntervalSince(started)
        let own = trainer.evaluate(test)

        // Sites with more data finish later: wait for all of them here, so that the aggregation time
        // measures aggregation, not the slowest site's training.
        let ownSteps = localStepsPerRound
        let extraSteps = mostLocalStepsPerRound - ownSteps
        try waitForEverySite(allowance: ownSteps > 0 ? 2 * Double(extraSteps) * localSeconds / Double(ownSteps) : 0)
        let aggregationStarted = Date()
        let bytesBefore = aggregator?.bytesSent ?? 0
        var bytes = 0
        var aggregationError: Double?
        var exactAggregationError: Double?
        let theta = configuration.aggregation == .local ? [] : parameters
        var aggregationSeconds = 0.0
        switch configuration.aggregation {
        case .local:
            break
        case .fedavg:
            var mean = theta.map { weight * $0 }
            try PeerWatch.shared.waiting(for: otherSites, "the FedAvg allreduce of round \(round)") {
                () throws(MPIError) in try world.allreduce(&mean, .sum)
            }
            bytes = mean.count * 8
            aggregationSeconds = Date().timeIntervalSince(aggregationStarted)
            try load(mean)
        case .admm:
            let aggregator = aggregator!
            let result = try aggregator.aggregate(theta: theta, weight: weight, round: round)
            aggregationSeconds = Date().timeIntervalSince(aggregationStarted)
            bytes = aggregator.bytesSent - bytesBefore
            aggregationError = result.errorEstimate
            if configuration.exactMeanDiagnostic {
                let exact = try aggregator.maskedMean(theta: theta, weight: weight, round: round)
                exactAggregationError = Self.relativeError(result.z, exact)
            }
            try load(result.z)
        }

        // Every site's figures on every site.
        let mine = SiteRoundStats(site: world.rank, trainExamples: train.count, trainLoss: trainLoss, testLoss: own.loss,
                                  testAccuracy: own.accuracy, testExamples: test.count, bytesSent: bytes,
                                  localSeconds: localSeconds, aggregationSeconds: aggregationSeconds)
        let all = try PeerWatch.shared.waiting(for: otherSites, "the sites' figures of round \(round)") {
            () throws(MPIError) in try world.allgather(mine.packed)
        }
        let n = SiteRoundStats.packedCount
        let sites = try (0..<world.size).map { s in try SiteRoundStats(site: s, packed: all[(s * n)..<((s + 1) * n)]) }
        let global: Evaluation
        if configuration.aggregation == .local {
            global = Self.combine(sites.map { ($0.testLoss, $0.testAccuracy, $0.testExamples) }, task: trainer.model.task)
        } else {
            let score = trainer.evaluate(test)
            let n = Double(test.count)
            var sums = [n * score.loss, n * (score.accuracy ?? 0), n]
            try PeerWatch.shared.waiting(for: otherSites, "the sites' scores of round \(round)") {
                () throws(MPIError) in try world.allreduce(&sums, .sum)
            }
            global = Self.combine(sums: sums, task: trainer.model.task)
        }
        return FederatedRoundReport(round: round, global: global, sites: sites, aggregationError: aggregationError,
                                    exactAggregationError: exactAggregationError, seconds: Date().timeIntervalSince(started))
    }

    public func free() throws { try aggregator?.free() }

    private var otherSites: [Int] { (0..<world.size).filter { $0 != world.rank } }

    /// Returns once every site has finished its local training of the round (a barrier made of one
    /// word from each site to each, so that the peer watch can name the sites not heard from). The
    /// watch allows `allowance` seconds beyond its timeout: the sites with more data train longer.
    private func waitForEverySite(allowance: Double) throws {
        let others = otherSites
        let tag = MessageTags.World.siteTrained
        var pending = try others.map { (site: $0, request: try world.receiveAsync(UInt8.self, count: 1, from: $0, tag: tag)) }
        let sends = try others.map { try world.sendAsync([UInt8(1)], to: $0, tag: tag) }
        try PeerWatch.shared.waiting(for: others, "the other sites to finish the local training of round \(round)", allowance: allowance) {
            () throws(MPIError) in
            while !pending.isEmpty {
                var still: [(site: Int, request: ReceiveRequest<UInt8>)] = []
                for entry in pending where try entry.request.request.test() == nil { still.append(entry) }
                if still.count < pending.count { PeerWatch.shared.stillWaiting(for: still.map(\.site)) }
                pending = still
                if !pending.isEmpty { usleep(200) }
            }
            try Request.waitAll(sends)
        }
    }

    /// This site's state after `round` rounds: its model and optimizer state and its step counter
    /// (dropout masks). No secret is written: a resumed job agrees new keys, and its duals derive from
    /// them (with reproducible secrets they are the same keys, hence the same duals).
    public func checkpoint(run: [String: String]) -> Checkpoint {
        var checkpoint = Checkpoint(position: round, rank: world.rank, ranks: world.size, run: run)
        checkpoint.parameters = trainer.model.parameters.state
        checkpoint.scalars["steps"] = trainer.steps
        return checkpoint
    }

    /// Continues from a checkpoint of the same run, as if the rounds before it had just been run.
    public func restore(_ checkpoint: Checkpoint) throws {
        guard checkpoint.rank == world.rank, checkpoint.ranks == world.size else {
            throw FederatedError("the checkpoint is rank \(checkpoint.rank)'s of \(checkpoint.ranks), this is rank \(world.rank) of \(world.size)")
        }
        try trainer.model.parameters.restore(checkpoint.parameters)
        trainer.resume(atStep: checkpoint.scalars["steps"] ?? 0)
        round = checkpoint.position
    }

    static func relativeError(_ z: [Double], _ exact: [Double]) -> Double {
        var difference = 0.0
        var norm = 0.0
        for i in z.indices {
            difference += (z[i] - exact[i]) * (z[i] - exact[i])
            norm += exact[i] * exact[i]
        }
        return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
    }

    static func combine(_ parts: [(loss: Double, accuracy: Double?, count: Int)], task: Tensors.Task) -> Evaluation {
        var sums = [0.0, 0.0, 0.0]
        for part in parts {
            let n = Double(part.count)
            sums[0] += n * part.loss
            sums[1] += n * (part.accuracy ?? 0)
            sums[2] += n
        }
        return combine(sums: sums, task: task)
    }

    static func combine(sums: [Double], task: Tensors.Task) -> Evaluation {
        let n = max(sums[2], 1)
        switch task {
        case .classification: return Evaluation(loss: sums[0] / n, accuracy: sums[1] / n)
        case .languageModel: return Evaluation(loss: sums[0] / n, perplexity: exp(sums[0] / n))
        case .supervised(let supervised):
            guard case .crossEntropy = supervised.objective else { return Evaluation(loss: sums[0] / n) }
            return Evaluation(loss: sums[0] / n, accuracy: sums[1] / n)
        }
    }
}
