import Basics
import Federated
import Foundation
import MPI
import Placement
import Tensors

/// What a federated run aggregates and how often.
public struct FederatedSettings: Sendable {
    public var rounds: Int
    /// Passes over its own data each site makes per round.
    public var localEpochs: Int
    /// Local steps per round instead of `localEpochs` passes.
    public var localSteps: Int?
    public var aggregation: AggregationKind
    /// How the training data is split among sites (nil: dirichlet:0.5 for images, natural for text).
    public var partition: PartitionScheme?
    /// ADMM iterations per round (nil: the fewest whose predicted error is within the target).
    public var iterations: Int?
    /// Masked group sums even where plain messages would not leak.
    public var masked: Bool
    public var rho: String
    public var rhoAfter: String
    public var dualRange: Double?
    /// No coalition of up to this many sites may learn another site's model (nil: 1).
    public var collusion: Int?
    /// Run a schedule the privacy audit flags (otherwise it is refused).
    public var allowLeaky: Bool
    /// Run an explicit `iterations` whose predicted error is above the target, and do not fail the run
    /// when the measured error is.
    public var allowInexact: Bool
    public var checkExactMean: Bool
    /// Every site's keys from the seed: INSECURE, for tests and experiments.
    public var insecureReproducibleSecrets: Bool
    /// How long a site waits for another before it calls that site lost and ends the job (`PeerWatch`);
    /// nil waits for ever.
    public var peerTimeout: Double?

    public init(rounds: Int = 5, localEpochs: Int = 1, localSteps: Int? = nil, aggregation: AggregationKind = .admm,
                partition: PartitionScheme? = nil, iterations: Int? = nil, masked: Bool = false, rho: String = "3",
                rhoAfter: String = "0.001", dualRange: Double? = nil, collusion: Int? = nil, allowLeaky: Bool = false,
                allowInexact: Bool = false, checkExactMean: Bool = false, insecureReproducibleSecrets: Bool = false,
                peerTimeout: Double? = PeerWatch.defaultTimeout) {
        self.rounds = rounds
        self.localEpochs = localEpochs
        self.localSteps = localSteps
        self.aggregation = aggregation
        self.partition = partition
        self.iterations = iterations
        self.masked = masked
        self.rho = rho
        self.rhoAfter = rhoAfter
        self.dualRange = dualRange
        self.collusion = collusion
        self.allowLeaky = allowLeaky
        self.allowInexact = allowInexact
        self.checkExactMean = checkExactMean
        self.insecureReproducibleSecrets = insecureReproducibleSecrets
        self.peerTimeout = peerTimeout
    }

    /// Refuses settings of ADMM's schedule or secrets beside an aggregation that has none: they would
    /// silently do nothing.
    public func checkAggregationOptions() throws {
        let admmOnly = iterations != nil || masked || dualRange != nil || collusion != nil || allowLeaky || allowInexact
            || checkExactMean || insecureReproducibleSecrets
        if aggregation != .admm, admmOnly {
            throw Refusal("--iterations, --masked, --dual-range, --collusion, --allow-leaky-schedule, --allow-inexact, "
                          + "--check-exact-mean and --insecure-reproducible-secrets apply to --aggregation admm only")
        }
    }
}

/// Federated training: every rank is a site with its own share of the training data; rounds of local
/// training and aggregation (private ADMM over the groups of a block design, FedAvg, or none); rank 0
/// reports each round. The privacy audit's rule is the driver's: a schedule it flags does not run
/// unless `allowLeaky` says so, whoever calls.
public struct FederatedDriver: TrainingDriver {
    public var settings: TrainingSettings
    public var federated: FederatedSettings
    public let reporter: any TrainingReporter

    public init(settings: TrainingSettings, federated: FederatedSettings, reporter: any TrainingReporter) {
        self.settings = settings
        self.federated = federated
        self.reporter = reporter
    }

    /// The schedule ADMM aggregation would run on `sites` sites for this model (what `fedbaechi audit
    /// --model` computes), or the reason it is refused.
    public static func schedule(_ federated: FederatedSettings, sites: Int, model: ModelKind, seed: UInt64) throws -> ScheduleChoice {
        try schedule(federated, sites: sites, recipe: ModelSpec(kind: model), seed: seed)
    }

    /// The schedule for the model `recipe` makes (its initial scale sizes the secret duals' effect).
    public static func schedule(_ federated: FederatedSettings, sites: Int, recipe: any ModelRecipe, seed: UInt64) throws -> ScheduleChoice {
        let request = ScheduleRequest(
            sites: sites, iterations: federated.iterations, masked: federated.masked ? true : nil, rho: federated.rho,
            rhoAfter: federated.rhoAfter, dualRange: federated.dualRange ?? AggregationSchedule.defaultDualRange,
            collusion: federated.collusion ?? 1, parameterRMS: recipe.build(seed: seed).parameters.rootMeanSquare,
            allowInexact: federated.allowInexact, allowLeaky: federated.allowLeaky)
        do { return try AggregationSchedule.choose(request) } catch { throw Refusal(error.description) }
    }

    public func run() throws {
        _ = try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        let isRoot = world.rank == 0
        func say(_ line: String) { if isRoot { reporter.say(line) } }
        let options = federated
        let scheme = options.partition ?? (settings.dataset == .fortunes ? .natural : .dirichlet(alpha: 0.5))

        // Set-up without communication: the schedule is chosen before any data is read, for the initial
        // model's scale (the same on every site).
        let (choice, configuration, data) = try agreeOnSetup(world) {
            try options.checkAggregationOptions()
            let choice = options.aggregation == .admm
                ? try Self.schedule(options, sites: world.size, recipe: settings.recipe(settings.modelSpec()), seed: settings.seed) : nil
            var spec = settings.modelSpec()
            let data = try SiteData.load(settings, scheme: scheme, spec: &spec, site: world.rank, sites: world.size)
            let configuration = FederatedConfiguration(
                spec: settings.recipe(spec), optimizer: settings.optimizer.make(learningRate: settings.chosenLearningRate), seed: settings.seed,
                secrets: options.insecureReproducibleSecrets ? .insecureReproducible(seed: settings.seed) : .random,
                aggregation: options.aggregation, schedule: choice?.schedule, localEpochs: options.localEpochs,
                localSteps: options.localSteps, batchSize: settings.chosenBatchSize, exactMeanDiagnostic: options.checkExactMean)
            var shuffled = configuration
            shuffled.shuffle = settings.shuffle
            return (choice, shuffled, data)
        }
        let site: FederatedSite
        do {
            site = try FederatedSite(configuration: configuration, world: world, train: data.train, test: data.test)
        } catch let error as FederatedError {
            throw JobFailure(error, everyRank: true)  // set-up failures (a malformed public key among them) are met alike
        }
        // From here on every wait for another site is watched: a site lost to the network ends the job, named.
        PeerWatch.shared.start(timeout: options.peerTimeout, rank: world.rank, hosts: try world.processorNames(), noun: "site")
        let rate = settings.chosenLearningRate
        let local = options.localSteps.map { "\($0) local step\($0 == 1 ? "" : "s")" }
            ?? "\(options.localEpochs) local epoch\(options.localEpochs == 1 ? "" : "s")"
        say("model \(settings.modelName): \(site.trainer.model.parameters.count) parameters; \(data.summary); "
            + (data.sizes.isEmpty ? "\(world.size) sites with their own data; "
                : "\(world.size) sites, partition \(scheme): \(data.sizes.min() ?? 0) to \(data.sizes.max() ?? 0) training examples per site; ")
            + "\(settings.optimizer.rawValue) learning rate \(rate), "
            + "batch \(configuration.batchSize), \(local) per round, seed \(settings.seed)")
        if let choice {
            describe(choice, site: world.rank, say: say)
        } else {
            say("aggregation: \(options.aggregation == .fedavg ? "FedAvg, the exact weighted mean by MPI allreduce (no privacy)" : "none, every site keeps its own model")")
        }

        // Checkpoints at round boundaries: each site saves its model, optimizer and step counter (no secrets).
        var extra = [
            "ranks": "\(world.size)", "aggregation": options.aggregation.rawValue,
            "masked": "\(choice?.schedule.masked ?? false)", "partition": scheme.description,
            "iterations": choice.map { "\($0.schedule.iterations)" } ?? "-", "rho": options.rho, "rho_after": options.rhoAfter,
            "dual_range": choice.map { "\($0.schedule.dualRange)" } ?? "-", "local_epochs": "\(options.localEpochs)",
        ]
        if let steps = options.localSteps { extra["local_steps"] = "\(steps)" }
        let identity = settings.identity(mode: "federated", extra: extra)
        let checkpoints = try CheckpointSession(settings.checkpoints, identity: identity, unit: "round", world: world, reporter: reporter)
        if let resumed = checkpoints.resumed {
            do { try site.restore(resumed) } catch { throw Refusal("\(error)") }
            if checkpoints.alreadyComplete(target: options.rounds) {
                try site.free()
                try world.barrier()
                return
            }
            say("resuming after round \(site.round) of \(options.rounds) (\(checkpoints.directoryPath!))")
        }
        let metrics = try isRoot ? openMetrics(settings.metricsPath, appending: site.round > 0) : nil
        // Rounds whose z is not the sites' average to the target (the same figure on every site).
        var worstError: Double?
        for round in (site.round + 1)..<max(site.round + 1, options.rounds + 1) {
            // Every site reports its own local training (at most every 10 s, and when it is done).
            var lastShown = Date()
            let roundStarted = Date()
            let stepsBefore = (round - 1) * site.localStepsPerRound
            var stepRecords: [StepRecord] = []
            let report = try site.runRound { step, total, loss in
                if let every = settings.logEvery, isRoot, (stepsBefore + step) % every == 0 {
                    stepRecords.append(StepRecord(step: stepsBefore + step, round: round, loss: Double(loss)))
                }
                guard step == total || Date().timeIntervalSince(lastShown) > 10 else { return }
                lastShown = Date()
                let perSecond = Double(step * configuration.batchSize) / max(Date().timeIntervalSince(roundStarted), 1e-9)
                reporter.say("round \(round)/\(options.rounds): site \(world.rank) local step \(step)/\(total) loss \(String(format: "%.4f", loss)), "
                             + String(format: "%.0f examples/s", perSecond)
                             + (step < total ? ", " + describeDuration(Double((total - step) * configuration.batchSize) / perSecond) + " left" : ""))
            }
            guard report.global.loss.isFinite else {
                throw JobFailure("training diverged in round \(round) (loss is not a number): lower --learning-rate",
                                 status: .runtime, everyRank: true)
            }
            say(Self.roundLine(report, rounds: options.rounds))
            for record in stepRecords { try metrics?.write(record) }
            try metrics?.write(FederatedRoundRecord(
                round: round, rounds: options.rounds, model: settings.modelName, dataset: settings.datasetName,
                aggregation: options.aggregation.rawValue, masked: choice?.schedule.masked ?? false,
                iterations: choice?.schedule.iterations, sites: world.size, partition: scheme.description, seed: settings.seed,
                globalLoss: report.global.loss, globalAccuracy: report.global.accuracy, globalPerplexity: report.global.perplexity,
                aggregationError: report.aggregationError, exactAggregationError: report.exactAggregationError,
                predictedAggregationError: choice?.predictedError, collusion: choice.map { _ in options.collusion ?? 1 },
                dualRange: choice?.schedule.dualRange,
                secrets: choice.map { _ in options.insecureReproducibleSecrets ? "insecure-reproducible" : "random" },
                seconds: report.seconds,
                localSecondsMax: report.sites.map(\.localSeconds).max() ?? 0,
                aggregationSecondsMax: report.sites.map(\.aggregationSeconds).max() ?? 0,
                bytesSentMax: report.sites.map(\.bytesSent).max() ?? 0, perSite: report.sites))
            try checkpoints.saveIfDue(round, of: options.rounds, defaultEvery: 1) { site.checkpoint(run: identity.configuration) }
            try checkpoints.stopIfInterrupted(at: round) { site.checkpoint(run: identity.configuration) }
            if round == options.rounds { say(Self.siteTable(report)) }
            if let error = report.aggregationError, error > AggregationSchedule.errorTarget {
                worstError = max(worstError ?? 0, error)
            }
        }
        try metrics?.close()
        if let summary = checkpoints.summary { say(summary) }
        // Site 0 writes the model the sites agreed on.
        if isRoot, let file = settings.file {
            try file.export(parameters: site.trainer.model.parameters.state.values)
            if let path = file.exportPath { say("trained model written to \(path)") }
        }
        try site.free()
        try world.barrier()
        if let worstError, !options.allowInexact {
            throw JobFailure(String(format: "the aggregation error reached %.1e, above %.0e: the global model is not the sites' average; "
                                    + "leave --iterations to the default, narrow --dual-range, or pass --allow-inexact", worstError,
                                    AggregationSchedule.errorTarget), status: .runtime, everyRank: true)
        }
    }

    /// The aggregation, its privacy verdict and where the secrets come from.
    private func describe(_ choice: ScheduleChoice, site: Int, say: (String) -> Void) {
        let schedule = choice.schedule
        let rhos = schedule.rhoValues.map { String(format: "%g", $0) }
        let collusion = federated.collusion ?? 1
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
        if federated.insecureReproducibleSecrets {
            // Every site says it, so that no site's log suggests its secrets were private.
            reporter.say("site \(site): INSECURE secrets (--insecure-reproducible-secrets): every site's keys derive from --seed, "
                         + "so any site can compute every other site's masks and duals; the privacy audit's verdict does not hold")
        } else {
            say("secrets: X25519 key agreement between every pair of sites, masks and duals from ChaCha20 keystreams "
                + "under HKDF-derived keys; fresh random keys on every site")
        }
    }

    static func roundLine(_ report: FederatedRoundReport, rounds: Int) -> String {
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

    static func siteTable(_ report: FederatedRoundReport) -> String {
        let classification = report.sites.contains { $0.testAccuracy != nil }
        var lines = ["site  train examples  train loss  own model \(classification ? "accuracy" : "perplexity")  sent"]
        for s in report.sites {
            let quality = s.testAccuracy.map { String(format: "%.4f", $0) } ?? String(format: "%.2f", exp(s.testLoss))
            lines.append(String(format: "%4d  %14d  %10.4f  %18@  ", s.site, s.trainExamples, s.trainLoss, quality)
                         + Quantity.formatBytes(s.bytesSent))
        }
        return lines.joined(separator: "\n")
    }
}
