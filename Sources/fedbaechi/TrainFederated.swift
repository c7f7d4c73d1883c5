import ArgumentParser
import Federated
import Foundation
import MPI
import Placement
import Runtime
import Tensors

extension AggregationKind: ExpressibleByArgument {}

/// The flags only `--mode federated` reads.
struct FederatedOptions: ParsableArguments {
    @Option(help: "Federated: global rounds (local training, then aggregation).")
    var rounds = 5

    @Option(help: "Federated: passes over its own data each site makes per round.")
    var localEpochs = 1

    @Option(help: "Federated: admm (private, over block-design groups), fedavg (exact mean by allreduce) or local (none).")
    var aggregation: AggregationKind = .admm

    @Flag(help: "Federated ADMM: group members add pairwise masks, so each sees only its group's sum.")
    var masked = false

    @Option(help: ArgumentHelp("Federated: how the training data is split among sites: iid, dirichlet:ALPHA, shards:N or natural (default: dirichlet:0.5 for images, natural for fortunes).",
                               valueName: "scheme"))
    var partition: String?

    @Option(help: "Federated ADMM: iterations per round (default: the design's number of classes r, so no pair meets twice).")
    var iterations: Int?

    @Option(help: "Federated ADMM: rho of the first iteration, an exact decimal.")
    var rho = "3"

    @Option(help: "Federated ADMM: rho of every later iteration, an exact decimal (the error shrinks by rho/(2+rho) per iteration).")
    var rhoAfter = "0.001"

    @Flag(help: "Federated ADMM: run a schedule that the privacy audit flags (otherwise it is refused).")
    var allowLeakySchedule = false

    @Option(help: ArgumentHelp("Federated: seed of each site's secrets (duals, mask seeds): a number, or `random` for the operating system's random source on every rank, as sites that do not trust each other need (default: derived from --seed, reproducible).",
                               valueName: "seed"))
    var secretSeed: String?

    /// This rank's secret seed: `random` draws it here, on this rank, from the operating system.
    func secretSeed(runSeed: UInt64) -> UInt64 {
        switch secretSeed {
        case "random"?:
            var system = SystemRandomNumberGenerator()
            return system.next()
        case let text?:
            return UInt64(text) ?? 0
        case nil:
            var derived = SplitMix64(seed: runSeed, stream: "secret-seed")
            return derived.next()
        }
    }

    func validate() throws {
        guard rounds >= 1, rounds <= 100_000 else { throw ValidationError("--rounds must be between 1 and 100000") }
        guard localEpochs >= 1, localEpochs <= 10_000 else { throw ValidationError("--local-epochs must be between 1 and 10000") }
        if let iterations, !(1...400).contains(iterations) { throw ValidationError("--iterations must be between 1 and 400") }
        if let partition, PartitionScheme(parsing: partition) == nil {
            throw ValidationError("--partition: \"\(partition)\" is not iid, dirichlet:ALPHA (0.001 <= ALPHA <= 1e6), shards:N (1 <= N <= 10000) or natural")
        }
        if let secretSeed, secretSeed != "random", UInt64(secretSeed) == nil {
            throw ValidationError("--secret-seed must be a whole number from 0 to 2^64-1, or random")
        }
        if ExactRho(decimal: rho) == nil { throw ValidationError("--rho must be a positive decimal with at most 9 digits after the point") }
        if ExactRho(decimal: rhoAfter) == nil {
            throw ValidationError("--rho-after must be a positive decimal with at most 9 digits after the point")
        }
    }
}

/// One line of the metrics file per round.
struct FederatedRoundRecord: Codable {
    var kind = "round"
    var mode = "federated"
    var round: Int
    var rounds: Int
    var model: String
    var dataset: String
    var aggregation: String
    var masked: Bool
    var iterations: Int?
    var sites: Int
    var partition: String
    var seed: UInt64
    var globalLoss: Double
    var globalAccuracy: Double?
    var globalPerplexity: Double?
    var aggregationError: Double?
    var seconds: Double
    var localSecondsMax: Double
    var aggregationSecondsMax: Double
    var bytesSentMax: Int
    var perSite: [SiteRoundStats]

    enum CodingKeys: String, CodingKey {
        case kind, mode, round, rounds, model, dataset, aggregation, masked, iterations, sites, partition, seed, seconds
        case globalLoss = "global_loss", globalAccuracy = "global_accuracy", globalPerplexity = "global_perplexity"
        case aggregationError = "aggregation_error", localSecondsMax = "local_seconds_max"
        case aggregationSecondsMax = "aggregation_seconds_max", bytesSentMax = "bytes_sent_max", perSite = "per_site"
    }
}

extension Train {
    /// `--mode federated`: every rank is a site with its own share of the training data; rounds of local
    /// training and aggregation; rank 0 reports each round.
    func runFederated() throws {
        _ = try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        let isRoot = world.rank == 0
        func say(_ line: String) { if isRoot { print(line) } }
        let options = federatedOptions
        let model = chosenModel
        let datasetKind = dataset ?? model.dataset

        // Set-up without communication. Most failures here (arguments, the audit, the partition) are the
        // same on every rank; a file one node cannot read, or an empty share, is not. The ranks agree on
        // how many failed before any collective: all of them, and rank 0 says why once; some, and each
        // failing rank ends the job with its own message while the others wait to be ended.
        var schedule: AggregationSchedule?
        var audit: PrivacyAudit.Report?
        var scheme = PartitionScheme.iid
        var spec = ModelSpec(kind: model)
        var prepared: (configuration: FederatedConfiguration, data: (train: Examples, test: Examples, sizes: [Int], summary: String))?
        var setupFailure: CommandFailure?
        do {
            scheme = PartitionScheme(parsing: options.partition ?? (datasetKind == .fortunes ? "natural" : "dirichlet:0.5"))!
            if options.aggregation == .admm {
                do {
                    let made = try AggregationSchedule(sites: world.size, iterations: options.iterations, masked: options.masked,
                                                       rho: options.rho, rhoAfter: options.rhoAfter)
                    schedule = made
                    audit = try made.audit()
                } catch let failure as AggregationSchedule.Failure {
                    throw CommandFailure(failure.description, status: .badInput)
                }
                if let audit, !audit.leakFree, !options.allowLeakySchedule {
                    throw CommandFailure(leakMessage(audit, schedule: schedule!), status: .badInput)
                }
            } else {
                guard options.iterations == nil, !options.masked else {
                    throw CommandFailure("--iterations and --masked apply to --aggregation admm only", status: .badInput)
                }
                schedule = nil
                audit = nil
            }
            let data = try federatedData(datasetKind, scheme: scheme, spec: &spec, world: world)
            let configuration = FederatedConfiguration(
                spec: spec, optimizer: optimizer.make(learningRate: learningRate ?? optimizer.defaultLearningRate), seed: seed,
                secretSeed: options.secretSeed(runSeed: seed), aggregation: options.aggregation, schedule: schedule,
                localEpochs: options.localEpochs, batchSize: batchSize ?? model.defaultBatchSize)
            prepared = (configuration, data)
        } catch let failure as CommandFailure {
            setupFailure = failure
        }
        let failedRanks = try world.allreduce(setupFailure == nil ? 0 : 1, .sum)
        if let setupFailure {
            if failedRanks == world.size { setupFailure.exitEveryRank(world) }
            setupFailure.exitProcess()
        }
        guard failedRanks == 0, let (configuration, data) = prepared else {
            try world.barrier()  // never completes: the failing ranks' MPI_Abort ends this one
            return
        }
        let site: FederatedSite
        do {
            site = try FederatedSite(configuration: configuration, world: world, train: data.train, test: data.test)
        } catch let error as FederatedError {
            throw CommandFailure(error.description, status: .runtime)
        }
        say("model \(model.rawValue): \(site.trainer.model.parameters.count) parameters; \(data.summary); "
            + "\(world.size) sites, partition \(scheme): \(data.sizes.min() ?? 0) to \(data.sizes.max() ?? 0) "
            + "training examples per site; \(optimizer.rawValue) learning rate \(learningRate ?? optimizer.defaultLearningRate), "
            + "batch \(configuration.batchSize), \(options.localEpochs) local epoch\(options.localEpochs == 1 ? "" : "s") "
            + "per round, seed \(seed)")
        if let schedule, let audit {
            let rhos = schedule.rhoValues.map { String(format: "%g", $0) }
            say("aggregation: ADMM, \(schedule.masked ? "masked" : "plain") group sums, \(schedule.iterations) iteration"
                + "\(schedule.iterations == 1 ? "" : "s") per round on \(schedule.classesUsed) of \(schedule.design.classes.count) "
                + "classes (\(schedule.design.construction)); rho \(rhos.count > 1 ? "\(rhos[0]) then \(rhos[1])" : rhos[0]); "
                + (audit.leakFree ? "privacy audit: no site learns another's model"
                   : "privacy audit: LEAKY (\(audit.leaks.count) leaks), run because of --allow-leaky-schedule"))
        } else {
            say("aggregation: \(options.aggregation == .fedavg ? "FedAvg, the exact weighted mean by MPI allreduce (no privacy)" : "none, every site keeps its own model")")
        }

        // Checkpoints at round boundaries: each site saves its model, optimizer, step counter and secrets.
        let identity = runIdentity(extra: [
            "ranks": "\(world.size)", "aggregation": options.aggregation.rawValue, "masked": "\(options.masked)",
            "partition": scheme.description, "iterations": schedule.map { "\($0.iterations)" } ?? "-",
            "rho": options.rho, "rho_after": options.rhoAfter, "local_epochs": "\(options.localEpochs)",
        ])
        let checkpoints = try openCheckpoints(identity, unit: "round", world: world)
        let checkpointLog = CheckpointLog()
        if let checkpoints, let resumed = checkpoints.resumed {
            do { try site.restore(resumed) } catch { throw CommandFailure("\(error)", status: .badInput) }
            if alreadyComplete(checkpoints, target: options.rounds, unit: "round", speaks: isRoot) {
                try site.free()
                try world.barrier()
                return
            }
            say("resuming after round \(site.round) of \(options.rounds) (\(checkpoints.directory.path))")
        }
        let metricsFile = try isRoot ? metrics.map { try openMetrics($0, appending: site.round > 0) } : nil
        for round in (site.round + 1)..<max(site.round + 1, options.rounds + 1) {
            // Every site reports its own local training (at most every 10 s, and when it is done).
            var lastShown = Date()
            let roundStarted = Date()
            let report = try site.runRound { step, total, loss in
                guard step == total || Date().timeIntervalSince(lastShown) > 10 else { return }
                lastShown = Date()
                let rate = Double(step * configuration.batchSize) / max(Date().timeIntervalSince(roundStarted), 1e-9)
                print("round \(round)/\(options.rounds): site \(world.rank) local step \(step)/\(total) loss \(String(format: "%.4f", loss)), "
                      + String(format: "%.0f examples/s", rate)
                      + (step < total ? ", " + ProgressReporter.duration(Double((total - step) * configuration.batchSize) / rate) + " left" : ""))
            }
            guard report.global.loss.isFinite else {
                throw CommandFailure("training diverged in round \(round) (loss is not a number): lower --learning-rate",
                                     status: .runtime)
            }
            if isRoot { print(roundLine(report, rounds: options.rounds)) }
            let record = FederatedRoundRecord(
                round: round, rounds: options.rounds, model: model.rawValue, dataset: datasetKind.rawValue,
                aggregation: options.aggregation.rawValue, masked: options.masked, iterations: schedule?.iterations,
                sites: world.size, partition: scheme.description, seed: seed, globalLoss: report.global.loss,
                globalAccuracy: report.global.accuracy, globalPerplexity: report.global.perplexity,
                aggregationError: report.aggregationError, seconds: report.seconds,
                localSecondsMax: report.sites.map(\.localSeconds).max() ?? 0,
                aggregationSecondsMax: report.sites.map(\.aggregationSeconds).max() ?? 0,
                bytesSentMax: report.sites.map(\.bytesSent).max() ?? 0, perSite: report.sites)
            try writeLine(record, to: metricsFile)
            if checkpointOptions.due(round, of: options.rounds, defaultEvery: 1) {
                try save(site.checkpoint(run: identity.configuration), to: checkpoints, log: checkpointLog)
            }
            try stopIfInterrupted(at: round, log: checkpointLog, world: world) {
                try save(site.checkpoint(run: identity.configuration), to: checkpoints, log: checkpointLog)
            }
            if round == options.rounds, isRoot { print(siteTable(report)) }
        }
        try metricsFile?.close()
        if let summary = checkpointLog.summary(rank: world.rank) { say(summary) }
        try site.free()
        try world.barrier()
    }

    private func leakMessage(_ audit: PrivacyAudit.Report, schedule: AggregationSchedule) -> String {
        let first = audit.leaks[0]
        let r = schedule.design.classes.count
        return "the privacy audit flags this schedule: with \(schedule.iterations) \(schedule.masked ? "masked" : "plain") "
            + "iterations on \(r) classes, site \(first.observers[0]) learns site \(first.learns)'s model "
            + "(\(audit.leaks.count) leaks in all); use --iterations \(r) or fewer, or --allow-leaky-schedule to run it anyway"
    }

    private func roundLine(_ report: FederatedRoundReport, rounds: Int) -> String {
        let quality = report.global.accuracy.map { "global test accuracy \(String(format: "%.4f", $0))" }
            ?? "global test perplexity \(String(format: "%.2f", report.global.perplexity ?? .nan))"
        let own = report.sites.compactMap { $0.testAccuracy ?? ($0.testExamples > 0 ? exp($0.testLoss) : nil) }
        let ownText = own.isEmpty ? "" : String(format: " (sites' own models %.4f to %.4f)", own.min()!, own.max()!)
        let error = report.aggregationError.map { String(format: ", aggregation error %.2e", $0) } ?? ""
        let bytes = report.sites.map(\.bytesSent).max() ?? 0
        return "round \(report.round)/\(rounds): \(quality)\(ownText)\(error), "
            + "\(Quantity.formatBytes(bytes)) sent per site, local \(String(format: "%.1f", report.sites.map(\.localSeconds).max() ?? 0)) s, "
            + "aggregation \(String(format: "%.3f", report.sites.map(\.aggregationSeconds).max() ?? 0)) s"
    }

    private func siteTable(_ report: FederatedRoundReport) -> String {
        let classification = report.sites.contains { $0.testAccuracy != nil }
        var lines = ["site  train examples  train loss  own model \(classification ? "accuracy" : "perplexity")  sent"]
        for s in report.sites {
            let quality = s.testAccuracy.map { String(format: "%.4f", $0) } ?? String(format: "%.2f", exp(s.testLoss))
            lines.append(String(format: "%4d  %14d  %10.4f  %18@  ", s.site, s.trainExamples, s.trainLoss, quality)
                         + Quantity.formatBytes(s.bytesSent))
        }
        return lines.joined(separator: "\n")
    }

    /// This site's training share and test slice. Every rank reads the public dataset and computes the
    /// same split from the seed; a site then keeps only its own part.
    private func federatedData(_ kind: KnownDataset, scheme: PartitionScheme, spec: inout ModelSpec,
                               world: Communicator) throws -> (train: Examples, test: Examples, sizes: [Int], summary: String) {
        let sites = world.size
        var train: Examples
        var test: Examples
        var sizes: [Int]
        var summary: String
        do {
            if kind == .fortunes, scheme == .natural {
                let corpus = try FortunesCorpus.load(directory: dataDirectory ?? kind.defaultDirectory, steps: spec.steps)
                spec.vocabulary = corpus.vocabulary.count
                let perSiteLimit = limitTrain.map { max(1, $0 / sites) }
                let categoryTrain = corpus.categories.map { corpus.train[$0] ?? TokenSequences(steps: spec.steps) }
                let assignment = try DataPartition.assignGroups(sizes: categoryTrain.map(\.count), sites: sites)
                sizes = assignment.map { groups in
                    let total = groups.reduce(0) { $0 + categoryTrain[$1].count }
                    return perSiteLimit.map { min($0, total) } ?? total
                }
                var mine = TokenSequences(steps: spec.steps)
                for group in assignment[world.rank] { mine.append(categoryTrain[group]) }
                train = .text(mine)
                if let perSiteLimit { train = train.prefix(perSiteLimit) }
                test = .text(corpus.allTest)
                summary = "fortunes (\(corpus.categories.count) categories, vocabulary \(corpus.vocabulary.count); "
                    + "site 0 holds \(assignment[0].count) categories)"
            } else {
                let loaded = try loadExamples(kind, directory: dataDirectory, spec: &spec, trainLimit: limitTrain, testLimit: nil)
                let labels = loaded.train.classLabels
                    ?? (0..<loaded.train.count).map { _ in 0 }  // text without categories: only iid is meaningful
                if loaded.train.classLabels == nil, scheme != .iid {
                    throw CommandFailure("partition \(scheme) needs class labels; fortunes takes natural or iid", status: .badInput)
                }
                let parts = try DataPartition.split(labels: labels, sites: sites, scheme: scheme, seed: seed)
                sizes = parts.map(\.count)
                train = loaded.train.subset(parts[world.rank])
                test = loaded.test
                summary = loaded.summary
            }
        } catch let failure as DataPartition.Failure {
            throw CommandFailure(failure.description, status: .badInput)
        }
        if let limitTest { test = test.prefix(limitTest) }
        guard train.count > 0, test.count > 0 else {
            throw CommandFailure("site \(world.rank) has \(train.count) training and the job \(test.count) test examples", status: .badInput)
        }
        // Sites score their slices of the test set in parallel.
        let slice = (test.count * world.rank / sites)..<(test.count * (world.rank + 1) / sites)
        test = test.subset(slice)
        summary += ": \(sizes.reduce(0, +)) training examples split among the sites"
        return (train, test, sizes, summary)
    }
}
