import Basics
import Foundation
import MPI
import Placement
import Tensors

/// What a model-parallel run places and how.
public struct ModelParallelSettings: Sendable {
    public var algorithm: Algorithm
    /// Memory of each rank the plan must fit.
    public var memoryBytes: Int
    /// A saved profile (`fedbaechi profile`) to place instead of profiling now.
    public var profilePath: String?
    /// A device file with the links `fedbaechi calibrate --link` measured between this job's ranks, to
    /// place with instead of `ModelParallelPlan.localLink`.
    public var linksPath: String?

    /// How long a rank waits for another during training before it calls that rank lost and ends the job
    /// (`PeerWatch`); nil waits for ever.
    public var peerTimeout: Double?

    public init(algorithm: Algorithm = .mSCT, memoryBytes: Int = 512 << 20, profilePath: String? = nil, linksPath: String? = nil,
                peerTimeout: Double? = PeerWatch.defaultTimeout) {
        self.algorithm = algorithm
        self.memoryBytes = memoryBytes
        self.profilePath = profilePath
        self.linksPath = linksPath
        self.peerTimeout = peerTimeout
    }
}

extension MeasuredLinks {
    /// The links in a few lines, as the run opens: every pair's fit (the first 8 pairs of a larger job).
    public func summary(path: String) -> String {
        var lines = ["links measured in \(path):"]
        for pair in pairs.prefix(8) {
            lines.append("  ranks \(pair.ranks[0])-\(pair.ranks[1]) (\(pair.hosts[0] == pair.hosts[1] ? "one host" : "two hosts")): "
                         + "\(Quantity.formatBandwidth(bytesPerSecond: pair.bandwidthBytesPerSecond)) + \(Quantity.formatMicros(pair.latencyMicros)) per message")
        }
        if pairs.count > 8 { lines.append("  ... and \(pairs.count - 8) more pairs") }
        return lines.joined(separator: "\n")
    }

    /// Why these links do not describe a job whose ranks run on `hosts` (by rank), or nil when they do:
    /// the same number of ranks, each on the host it was measured on.
    public func mismatch(jobHosts hosts: [String]) -> String? {
        guard rankCount == hosts.count else {
            return "they were measured between \(rankCount) ranks and this job has \(hosts.count); measure this job's ranks with `mpirun -np \(hosts.count) fedbaechi calibrate --link`"
        }
        for rank in hosts.indices where hosts[rank] != self.hosts[rank] {
            return "rank \(rank) runs on \(MessageText.quoted(hosts[rank])), the links were measured with it on \(MessageText.quoted(self.hosts[rank])); measure on this job's hosts with `fedbaechi calibrate --link`"
        }
        return nil
    }

    /// The links of `path` if they describe the ranks of `world`, running on `hosts`, read on every rank;
    /// every rank meets the same refusal otherwise.
    static func read(path: String, hosts: [String], world: Communicator) throws -> MeasuredLinks {
        try agreeOnSetup(world) {
            let links = try MeasuredLinks.read(path: path)
            if let mismatch = links.mismatch(jobHosts: hosts) { throw Refusal("--links \(path): \(mismatch)") }
            return links
        }
    }
}

/// Model-parallel training on the ranks of an MPI job, where no process ever holds the whole model: the
/// ranks profile the training graph op by op together, rank 0 places it and broadcasts the plan; every
/// rank makes only its own parameters, loads only the inputs its nodes read and runs its part of every
/// step and of every evaluation pass; rank 0 reports progress, the test score per epoch and each rank's
/// time and memory (counted, and resident as the operating system reports it).
public struct ModelParallelDriver: TrainingDriver {
    public var settings: TrainingSettings
    public var placement: ModelParallelSettings
    public var length: TrainingLength
    public let reporter: any TrainingReporter

    public init(settings: TrainingSettings, placement: ModelParallelSettings, length: TrainingLength,
                reporter: any TrainingReporter) {
        self.settings = settings
        self.placement = placement
        self.length = length
        self.reporter = reporter
    }

    public func run() throws {
        ResidentMemory.returnLargeBlocksToTheSystem()
        _ = try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        // A rank whose system limit cannot hold its share says so now, not with a failed allocation mid-run.
        try agreeOnSetup(world) { try RankMemoryGuard.checkAddressSpace(rank: world.rank, limitBytes: placement.memoryBytes) }
        BLAS.reserveWorkBuffers()
        // What the runtime, MPI and the libraries hold before any model or data: the fixed part of a rank.
        let startResidentBytes = ResidentMemory.currentBytes ?? 0
        let isRoot = world.rank == 0
        func say(_ line: String) { if isRoot { reporter.say(line) } }
        // Where every rank runs: measured links are checked against it, and a lost rank is named with it.
        let hosts = try world.processorNames()

        // Counts, not examples: a rank loads only the inputs its nodes read, once the plan says which.
        let (spec, description) = try agreeOnSetup(world) {
            var spec = settings.modelSpec()
            let description = try RankData.describe(settings, spec: &spec)
            try description.requireExamples(spec: spec)
            return (spec, description)
        }
        var configuration = ModelParallelConfiguration(
            spec: settings.recipe(spec), optimizer: settings.optimizer.make(learningRate: settings.chosenLearningRate), seed: settings.seed,
            algorithm: placement.algorithm, memoryBytes: placement.memoryBytes, profilePath: placement.profilePath)
        if let path = placement.linksPath {
            let measured = try MeasuredLinks.read(path: path, hosts: hosts, world: world)
            configuration.links = measured.links
            say(measured.summary(path: path))
        }
        // The directory is this run's before anything is placed: a fresh run into another run's directory is
        // refused before its plan.json is touched. Each rank saves what it owns; the plan beside the
        // checkpoints keeps ownership fixed when the run resumes.
        let identity = settings.identity(mode: "model-parallel", extra: [
            "ranks": "\(world.size)", "algorithm": placement.algorithm.rawValue, "device_memory": "\(placement.memoryBytes)",
            "profile": placement.profilePath ?? "-",
        ])
        let checkpoints = try CheckpointSession(settings.checkpoints, identity: identity, unit: "step", world: world, reporter: reporter)
        configuration.planFile = checkpoints.directoryPath.map { $0 + "/" + CheckpointRun.planFileName }
        var loop = EpochLoop(settings: settings, data: description, length: length, speaks: isRoot, reporter: reporter,
                             checkpoints: checkpoints)
        if checkpoints.alreadyComplete(target: loop.totalSteps) {
            try world.barrier()
            return
        }
        if let resumed = checkpoints.resumed, let planFile = configuration.planFile, !FileManager.default.fileExists(atPath: planFile) {
            throw JobFailure("cannot resume from \(checkpoints.directoryPath!): the checkpoints of step \(resumed.position) are there "
                             + "but the plan they were saved under (\(planFile)) is missing; restore it, or start again with --overwrite",
                             status: .badInput, everyRank: true)
        }

        // The model's parameters are declared, not made: the executor makes only this rank's own.
        let graph = TrainingGraph(model: settings.recipe(spec).build(seed: settings.seed, holding: .none), optimizer: configuration.optimizer,
                                  seed: settings.seed)
        say(loop.opening(parameters: graph.model.parameters.declaredCount))
        let batchSize = loop.batching.batchSize
        let sample = syntheticExamples(for: graph.model, count: batchSize, steps: spec.steps, seed: settings.seed)
        let plan: ModelParallelPlan
        do {
            plan = try ModelParallelJob.distributePlan(configuration, world: world, feeds: graph.model.feeds(sample, 0..<batchSize))
        } catch let error as any UserFacingError where !(error is MPIError) {
            throw JobFailure(error, everyRank: true)  // rank 0 broadcast it, or every rank met it alike
        }
        say(Self.placementSummary(plan, graph: graph))

        let executor = try RankExecutor(graph: graph, plan: plan, communicator: world)
        RankMemoryGuard.install(rank: world.rank, limitBytes: plan.memoryLimitBytes)
        // Rank 0 scores the evaluation: it holds the test labels (or target tokens) besides what its nodes read.
        var testFeeds = executor.neededEvaluationFeeds
        if isRoot { testFeeds.insert(graph.model.targetFeed) }
        let data = try agreeOnSetup(world) {
            try RankData.load(settings, description: description, spec: spec, trainFeeds: executor.neededFeeds, testFeeds: testFeeds)
        }
        let resumed = checkpoints.resumed
        if let resumed {
            do { try graph.model.parameters.restore(resumed.parameters) } catch {
                throw Refusal("\(checkpoints.filePath(position: resumed.position)): \(error)")
            }
            say("resuming from step \(resumed.position) of \(loop.totalSteps) (\(checkpoints.directoryPath!))")
        }
        loop.metrics = try isRoot ? openMetrics(settings.metricsPath, appending: resumed != nil) : nil
        // From here on every wait for another rank is watched: a rank lost to the network ends the job, named.
        PeerWatch.shared.start(timeout: placement.peerTimeout, rank: world.rank, hosts: hosts)
        var stepTimes: [RankStepTimes] = []
        let steps = try loop.run(
            from: resumed?.position ?? 0, lossSum: Double(checkpointBits: resumed?.scalars["epoch_loss_sum"]),
            step: { examples, position in
                let (loss, times) = try executor.step(feeds: data.feeds(graph.model, training: true, examples), step: position)
                stepTimes.append(times)
                return loss
            },
            evaluate: {
                // In batches of the training size: the memory the plan was made for.
                var tally = EvaluationTally(task: graph.model.task)
                for start in stride(from: 0, to: description.testCount, by: batchSize) {
                    let indices = start..<min(start + batchSize, description.testCount)
                    let feeds = data.feeds(graph.model, training: false, indices)
                    guard let (logits, loss) = try executor.evaluate(feeds: feeds, batchSize: indices.count) else { continue }
                    guard let labels = feeds[graph.model.targetFeed] else { throw LogicError("rank 0 holds no test labels") }
                    tally.add(logits: logits, loss: loss, labels: labels)
                }
                return isRoot ? tally.evaluation : nil
            },
            checkpoint: { position, lossSum in
                var checkpoint = Checkpoint(position: position, rank: world.rank, ranks: world.size, run: identity.configuration)
                checkpoint.parameters = graph.model.parameters.state
                checkpoint.scalars["epoch_loss_sum"] = lossSum.bitPattern
                return checkpoint
            })

        if let report = try ModelParallelReport.gather(executor, stepTimes: stepTimes, startResidentBytes: startResidentBytes,
                                                       dataBytes: data.heldBytes, world: world) {
            reporter.say(report.table)
            try loop.metrics?.write(ModelParallelRecord(
                model: settings.modelName, algorithm: plan.algorithm, ranks: plan.rankCount, steps: steps,
                medianStepMs: report.medianStepSeconds * 1000, predictedStepMs: report.predictedStepSeconds * 1000,
                memoryLimitBytes: plan.memoryLimitBytes, withinMemory: report.withinMemory,
                placementSeconds: plan.placementSeconds, profilingSeconds: plan.profilingSeconds, profilingRanks: plan.profilingRanks,
                fixedOverheadBytes: ResidentMemory.fixedOverheadBytes, residentWithinLimit: report.residentWithinLimit,
                perRank: report.ranks.map {
                    .init(rank: $0.rank, nodes: $0.nodes, computeMs: $0.compute * 1000, predictedComputeMs: $0.predictedCompute.map { $0 * 1000 },
                          communicationWaitMs: $0.communicationWait * 1000,
                          otherMs: $0.other * 1000, peakBytes: $0.peakBytes, predictedPeakBytes: $0.predictedPeakBytes,
                          peakRSSBytes: $0.peakResidentBytes, startRSSBytes: $0.startResidentBytes, dataBytes: $0.dataBytes)
                }))
        }
        try loop.metrics?.close()
        if let summary = checkpoints.summary { say(summary) }
        // Every rank sends the parameters it owns to rank 0, which writes the trained model.
        if let file = settings.file, file.exportPath != nil {
            let gathered = try executor.gatherParameters(names: graph.model.parameters.declaredNames)
            let written = try agreeOnSetup(world) { () throws -> Bool in
                guard let gathered else { return false }
                try file.export(parameters: gathered)
                return true
            }
            if written, let path = file.exportPath { say("trained model written to \(path)") }
        }
        try world.barrier()
    }

    /// The plan in a few lines: the algorithm, the predicted step, and each rank's nodes, parameters and memory.
    static func placementSummary(_ plan: ModelParallelPlan, graph: TrainingGraph) -> String {
        var lines: [String] = []
        if let seconds = plan.profilingSeconds, let ranks = plan.profilingRanks {
            lines.append("profiled op by op on \(ranks) rank\(ranks == 1 ? "" : "s") in \(String(format: "%.2f", seconds)) s")
        }
        lines += ["placement: \(plan.algorithm) on \(plan.rankCount) rank\(plan.rankCount == 1 ? "" : "s") of "
                     + "\(Quantity.formatBytes(plan.memoryLimitBytes)) in \(String(format: "%.3f", plan.placementSeconds)) s; "
                     + "predicted step \(Quantity.formatMicros(plan.predictedMakespanMicros))",
                     "rank  nodes  parameters  predicted peak"]
        for rank in 0..<plan.rankCount {
            let parameters = graph.nodes.indices.filter { graph.nodes[$0].role == .variable && plan.rankOfNode[$0] == rank }
                .reduce(0) { total, index in
                    guard case .read(let name) = graph.nodes[index].action else { return total }
                    return total + (graph.model.parameters.declaration(name)?.count ?? 0)
                }
            lines.append(String(format: "%4d  %5d  %10d  ", rank, plan.order[rank].count, parameters)
                         + Quantity.formatBytes(plan.predictedPeakBytes[rank]).padding(toLength: 14, withPad: " ", startingAt: 0))
        }
        return lines.joined(separator: "\n")
    }
}
