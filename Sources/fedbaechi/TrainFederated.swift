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

    @Flag(help: "Federated ADMM: group members add pairwise masks, so each sees only its group's sum (default: on where plain messages would leak).")
    var masked = false

    @Option(help: ArgumentHelp("Federated: how the training data is split among sites: iid, dirichlet:ALPHA, shards:N or natural (default: dirichlet:0.5 for images, natural for fortunes).",
                               valueName: "scheme"))
    var partition: String?

    @Option(help: "Federated ADMM: iterations per round (default: the fewest whose predicted aggregation error is at most 1e-6).")
    var iterations: Int?

    @Option(help: "Federated ADMM: rho of the first iteration, an exact decimal.")
    var rho = "3"

    @Option(help: "Federated ADMM: rho of every later iteration, an exact decimal (the error shrinks by rho/(2+rho) per iteration).")
    var rhoAfter = "0.001"

    @Option(help: ArgumentHelp("Federated ADMM: width W of the secret duals' range, U[-W/2, W/2): the first message hides a model coordinate in a band of width W/rho; a wider range needs more iterations (docs/privacy.md).",
                               valueName: "W"))
    var dualRange: Double?

    @Option(help: "Federated ADMM: no coalition of up to C sites may learn another site's model (default 1: single curious sites).")
    var collusion: Int?

    @Flag(help: "Federated ADMM: run a schedule that the privacy audit flags (otherwise it is refused).")
    var allowLeakySchedule = false

    @Flag(help: "Federated ADMM: run an explicit --iterations whose predicted aggregation error is above 1e-6.")
    var allowInexact = false

    @Flag(help: "Federated ADMM: also form the exact mean each round (a sum under cryptographic masks over all sites) to check the aggregation error against it.")
    var checkExactMean = false

    @Flag(help: "Federated ADMM: derive every site's keys from --seed so runs repeat bit for bit. INSECURE: any site can then compute every other site's masks and duals; for tests and experiments only.")
    var insecureReproducibleSecrets = false

    /// Flags that mean something only for ADMM aggregation.
    var admmOnlyFlagsGiven: Bool {
        iterations != nil || masked || dualRange != nil || collusion != nil || allowLeakySchedule || allowInexact
            || checkExactMean || insecureReproducibleSecrets
    }

    func validate() throws {
        guard rounds >= 1, rounds <= 100_000 else { throw ValidationError("--rounds must be between 1 and 100000") }
        guard localEpochs >= 1, localEpochs <= 10_000 else { throw ValidationError("--local-epochs must be between 1 and 10000") }
        if let iterations, !(1...400).contains(iterations) { throw ValidationError("--iterations must be between 1 and 400") }
        if let partition, PartitionScheme(parsing: partition) == nil {
            throw ValidationError("--partition: \"\(partition)\" is not iid, dirichlet:ALPHA (0.001 <= ALPHA <= 1e6), shards:N (1 <= N <= 10000) or natural")
        }
        if let dualRange, !(dualRange > 0 && dualRange <= 1e6) { throw ValidationError("--dual-range must be a number above 0 and at most 1000000") }
        if let collusion, !(1...149).contains(collusion) { throw ValidationError("--collusion must be between 1 and 149") }
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
    var exactAggregationError: Double?
    var predictedAggregationError: Double?
    var collusion: Int?
    var dualRange: Double?
    var secrets: String?
    var seconds: Double
    var localSecondsMax: Double
    var aggregationSecondsMax: Double
    var bytesSentMax: Int
    var perSite: [SiteRoundStats]

    enum CodingKeys: String, CodingKey {
        case kind, mode, round, rounds, model, dataset, aggregation, masked, iterations, sites, partition, seed, seconds
        case globalLoss = "global_loss", globalAccuracy = "global_accuracy", globalPerplexity = "global_perplexity"
        case aggregationError = "aggregation_error", exactAggregationError = "exact_aggregation_error"
        case predictedAggregationError = "predicted_aggregation_error", collusion, dualRange = "dual_range", secrets
        case localSecondsMax = "local_seconds_max"
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
        var choice: ScheduleChoice?
        var scheme = PartitionScheme.iid
        var spec = ModelSpec(kind: model)
        var prepared: (configuration: FederatedConfiguration, data: (train: Examples, test: Examples, sizes: [Int], summary: String))?
        var setupFailure: CommandFailure?
        do {
            scheme = PartitionScheme(parsing: options.partition ?? (datasetKind == .fortunes ? "natural" : "dirichlet:0.5"))!
            if options.aggregation != .admm, options.admmOnlyFlagsGiven {
                throw CommandFailure("--iterations, --masked, --dual-range, --collusion, --allow-leaky-schedule, --allow-inexact, "
                                     + "--check-exact-mean and --insecure-reproducible-secrets apply to --aggregation admm only",
                                     status: .badInput)
            }
            if options.aggregation == .admm {
                // Chosen before any data is read, for the initial model's scale (the same on every site,
                // and what `fedbaechi audit --model` computes).
                let request = ScheduleRequest(
                    sites: world.size, iterations: options.iterations, masked: options.masked ? true : nil, rho: options.rho,
                    rhoAfter: options.rhoAfter, dualRange: options.dualRange ?? AggregationSchedule.defaultDualRange,
                    collusion: options.collusion ?? 1, parameterRMS: ModelSpec(kind: model).build(seed: seed).parameters.rootMeanSquare,
                    allowInexact: options.allowInexact, allowLeaky: options.allowLeakySchedule)
                do { choice = try AggregationSchedule.choose(request) } catch {
                    throw CommandFailure(error.description, status: .badInput)
                }
            }
            let data = try federatedData(datasetKind, scheme: scheme, spec: &spec, world: world)
            let configuration = FederatedConfiguration(
                spec: spec, optimizer: optimizer.make(learningRate: learningRate ?? optimizer.defaultLearningRate), seed: seed,
                secrets: options.insecureReproducibleSecrets ? .insecureReproducible(seed: seed) : .random,
                aggregation: options.aggregation, schedule: choice?.schedule,
                localEpochs: options.localEpochs, batchSize: batchSize ?? model.defaultBatchSize,
                exactMeanDiagnostic: options.checkExactMean)
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
            // Set-up failures (a malformed public key among them) are met alike on every site.
            CommandFailure(error.description, status: .runtime).exitEveryRank(world)
        }
        say("model \(model.rawValue): \(site.trainer.model.parameters.count) parameters; \(data.summary); "
            + "\(world.size) sites, partition \(scheme): \(data.sizes.min() ?? 0) to \(data.sizes.max() ?? 0) "
            + "training examples per site; \(optimizer.rawValue) learning rate \(learningRate ?? optimizer.defaultLearningRate), "
            + "batch \(configuration.batchSize), \(options.localEpochs) local epoch\(options.localEpochs == 1 ? "" : "s") "
            + "per round, seed \(seed)")
        if let choice {
            let schedule = choice.schedule
            let rhos = schedule.rhoValues.map { String(format: "%g", $0) }
            let collusion = options.collusion ?? 1
            let observers = collusion == 1 ? "no site learns" : "no coalition of up to \(collusion) sites learns"
            say("aggregation: ADMM, \(schedule.masked ? "masked" : "plain") group sums, \(schedule.iterations) iteration"
                + "\(schedule.iterations == 1 ? "" : "s") per round on \(schedule.classesUsed) of \(schedule.design.classes.count) "
                + "class\(schedule.design.classes.count == 1 ? "" : "es") (\(schedule.design.construction)); "
                + "rho \(rhos.count > 1 ? "\(rhos[0]) then \(rhos[1])" : rhos[0]); duals U[-\(String(format: "%g", schedule.dualRange / 2)), "
                + "\(String(format: "%g", schedule.dualRange / 2))); predicted aggregation error at most "
                + String(format: "%.1e", choice.predictedError))
            if let reason = choice.maskingReason { say("masking is on: \(reason)") }
            say(choice.audit.leakFree ? "privacy audit: \(observers) another's model"
                : "privacy audit: LEAKY (\(choice.audit.leaks.count) leaks), run because of --allow-leaky-schedule")
            if options.insecureReproducibleSecrets {
                // Every site says it, so that no site's log suggests its secrets were private.
                print("site \(world.rank): INSECURE secrets (--insecure-reproducible-secrets): every site's keys derive from --seed, "
                      + "so any site can compute every other site's masks and duals; the privacy audit's verdict does not hold")
            } else {
                say("secrets: X25519 key agreement between every pair of sites, masks and duals from ChaCha20 keystreams "
                    + "under HKDF-derived keys; fresh random keys on every site")
            }
        } else {
            say("aggregation: \(options.aggregation == .fedavg ? "FedAvg, the exact weighted mean by MPI allreduce (no privacy)" : "none, every site keeps its own model")")
        }

        // Checkpoints at round boundaries: each site saves its model, optimizer and step counter (no secrets).
        let identity = runIdentity(extra: [
            "ranks": "\(world.size)", "aggregation": options.aggregation.rawValue,
            "masked": "\(choice?.schedule.masked ?? false)", "partition": scheme.description,
            "iterations": choice.map { "\($0.schedule.iterations)" } ?? "-", "rho": options.rho, "rho_after": options.rhoAfter,
            "dual_range": choice.map { "\($0.schedule.dualRange)" } ?? "-", "local_epochs": "\(options.localEpochs)",
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
        // Rounds whose z is not the sites' average to 1e-6 (the same figure on every site).
        var worstError: Double?
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
                aggregation: options.aggregation.rawValue, masked: choice?.schedule.masked ?? false,
                iterations: choice?.schedule.iterations, sites: world.size, partition: scheme.description, seed: seed,
                globalLoss: report.global.loss, globalAccuracy: report.global.accuracy, globalPerplexity: report.global.perplexity,
                aggregationError: report.aggregationError, exactAggregationError: report.exactAggregationError,
                predictedAggregationError: choice?.predictedError, collusion: choice.map { _ in options.collusion ?? 1 },
                dualRange: choice?.schedule.dualRange,
                secrets: choice.map { _ in options.insecureReproducibleSecrets ? "insecure-reproducible" : "random" },
                seconds: report.seconds,
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
            if let error = report.aggregationError, error > AggregationSchedule.errorTarget {
                worstError = max(worstError ?? 0, error)
            }
        }
        try metricsFile?.close()
        if let summary = checkpointLog.summary(rank: world.rank) { say(summary) }
        try site.free()
        try world.barrier()
        if let worstError, !options.allowInexact {
            CommandFailure(String(format: "the aggregation error reached %.1e, above %.0e: the global model is not the sites' average; "
                                  + "leave --iterations to the default, narrow --dual-range, or pass --allow-inexact", worstError,
                                  AggregationSchedule.errorTarget), status: .runtime).exitEveryRank(world)
        }
    }

    private func roundLine(_ report: FederatedRoundReport, rounds: Int) -> String {
        let quality = report.global.accuracy.map { "global test accuracy \(String(format: "%.4f", $0))" }
            ?? "global test perplexity \(String(format: "%.2f", report.global.perplexity ?? .nan))"
        let own = report.sites.compactMap { $0.testAccuracy ?? ($0.testExamples > 0 ? exp($0.testLoss) : nil) }
        let ownText = own.isEmpty ? "" : String(format: " (sites' own models %.4f to %.4f)", own.min()!, own.max()!)
        var error = report.aggregationError.map { String(format: ", aggregation error %.2e", $0) } ?? ""
        if let exact = report.exactAggregationError { error += String(format: " (against the exact mean %.2e)", exact) }
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
