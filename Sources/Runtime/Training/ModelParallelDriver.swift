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

    public init(algorithm: Algorithm = .mSCT, memoryBytes: Int = 512 << 20, profilePath: String? = nil) {
        self.algorithm = algorithm
        self.memoryBytes = memoryBytes
        self.profilePath = profilePath
    }
}

/// Model-parallel training on the ranks of an MPI job: rank 0 places the profiled training graph on the
/// job's ranks and broadcasts the plan; every rank runs its part of every step; rank 0 reports progress,
/// the test score per epoch (on parameters gathered from their owners) and per-rank time and memory.
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
        _ = try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        let isRoot = world.rank == 0
        func say(_ line: String) { if isRoot { reporter.say(line) } }

        let (spec, data) = try agreeOnSetup(world) {
            var spec = ModelSpec(kind: settings.model)
            let data = try TrainingData.load(settings, spec: &spec, testLimit: settings.limitTest)
            try data.requireExamples(spec: spec)
            return (spec, data)
        }
        var configuration = ModelParallelConfiguration(
            spec: spec, optimizer: settings.optimizer.make(learningRate: settings.chosenLearningRate), seed: settings.seed,
            algorithm: placement.algorithm, memoryBytes: placement.memoryBytes, profilePath: placement.profilePath)
        // The directory is this run's before anything is placed: a fresh run into another run's directory is
        // refused before its plan.json is touched. Each rank saves what it owns; the plan beside the
        // checkpoints keeps ownership fixed when the run resumes.
        let identity = settings.identity(mode: "model-parallel", extra: [
            "ranks": "\(world.size)", "algorithm": placement.algorithm.rawValue, "device_memory": "\(placement.memoryBytes)",
            "profile": placement.profilePath ?? "-",
        ])
        let checkpoints = try CheckpointSession(settings.checkpoints, identity: identity, unit: "step", world: world, reporter: reporter)
        configuration.planFile = checkpoints.directoryPath.map { $0 + "/" + CheckpointRun.planFileName }
        var loop = EpochLoop(settings: settings, data: data, length: length, speaks: isRoot, reporter: reporter,
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

        let graph = TrainingGraph(model: spec.build(seed: settings.seed), optimizer: configuration.optimizer, seed: settings.seed)
        let parameterNames = graph.model.parameters.names
        say(loop.opening(parameters: graph.model.parameters.count))
        let plan: ModelParallelPlan
        do {
            plan = try ModelParallelJob.distributePlan(configuration, world: world) {
                graph.model.feeds(data.train, 0..<loop.batching.batchSize)
            }
        } catch let error as ModelParallelError {
            throw JobFailure(error, everyRank: true)  // rank 0 broadcast it: every rank has it
        }
        say(Self.placementSummary(plan, graph: graph))

        let executor = try RankExecutor(graph: graph, plan: plan, communicator: world)
        let resumed = checkpoints.resumed
        if let resumed {
            do { try graph.model.parameters.restore(resumed.parameters) } catch {
                throw Refusal("\(checkpoints.filePath(position: resumed.position)): \(error)")
            }
            say("resuming from step \(resumed.position) of \(loop.totalSteps) (\(checkpoints.directoryPath!))")
        }
        loop.metrics = try isRoot ? openMetrics(settings.metricsPath, appending: resumed != nil) : nil
        // Rank 0 scores the gathered parameters with one full copy of the model, made once.
        let scorer = isRoot ? Trainer(model: spec.build(seed: settings.seed), optimizer: configuration.optimizer, seed: settings.seed) : nil
        var stepTimes: [RankStepTimes] = []
        let steps = try loop.run(
            from: resumed?.position ?? 0, lossSum: Double(checkpointBits: resumed?.scalars["epoch_loss_sum"]),
            step: { examples, position in
                let feeds = executor.neededFeeds.isEmpty ? [:] : graph.model.feeds(data.train, examples)
                let (loss, times) = try executor.step(feeds: feeds, step: position)
                stepTimes.append(times)
                return loss
            },
            evaluate: {
                guard let weights = try executor.gatherParameters(names: parameterNames), let scorer else { return nil }
                for (name, values) in weights { try scorer.model.parameters.set(name, values) }
                return scorer.evaluate(data.test)
            },
            checkpoint: { position, lossSum in
                var checkpoint = Checkpoint(position: position, rank: world.rank, ranks: world.size, run: identity.configuration)
                checkpoint.parameters = graph.model.parameters.state
                checkpoint.scalars["epoch_loss_sum"] = lossSum.bitPattern
                return checkpoint
            })

        if let report = try ModelParallelReport.gather(executor, stepTimes: stepTimes, world: world) {
            reporter.say(report.table)
            try loop.metrics?.write(ModelParallelRecord(
                model: settings.model.rawValue, algorithm: plan.algorithm, ranks: plan.rankCount, steps: steps,
                medianStepMs: report.medianStepSeconds * 1000, predictedStepMs: report.predictedStepSeconds * 1000,
                memoryLimitBytes: plan.memoryLimitBytes, withinMemory: report.withinMemory,
                placementSeconds: plan.placementSeconds,
                perRank: report.ranks.map {
                    .init(rank: $0.rank, nodes: $0.nodes, computeMs: $0.compute * 1000, communicationWaitMs: $0.communicationWait * 1000,
                          otherMs: $0.other * 1000, peakBytes: $0.peakBytes, predictedPeakBytes: $0.predictedPeakBytes)
                }))
        }
        try loop.metrics?.close()
        if let summary = checkpoints.summary { say(summary) }
        try world.barrier()
    }

    /// The plan in a few lines: the algorithm, the predicted step, and each rank's nodes, parameters and memory.
    static func placementSummary(_ plan: ModelParallelPlan, graph: TrainingGraph) -> String {
        var lines = ["placement: \(plan.algorithm) on \(plan.rankCount) rank\(plan.rankCount == 1 ? "" : "s") of "
                     + "\(Quantity.formatBytes(plan.memoryLimitBytes)) in \(String(format: "%.3f", plan.placementSeconds)) s; "
                     + "predicted step \(Quantity.formatMicros(plan.predictedMakespanMicros))",
                     "rank  nodes  parameters  predicted peak"]
        for rank in 0..<plan.rankCount {
            let parameters = graph.nodes.indices.filter { graph.nodes[$0].role == .variable && plan.rankOfNode[$0] == rank }
                .reduce(0) { total, index in
                    guard case .read(let name) = graph.nodes[index].action else { return total }
                    return total + (graph.model.parameters.tensor(name)?.count ?? 0)
                }
            lines.append(String(format: "%4d  %5d  %10d  ", rank, plan.order[rank].count, parameters)
                         + Quantity.formatBytes(plan.predictedPeakBytes[rank]).padding(toLength: 14, withPad: " ", startingAt: 0))
        }
        return lines.joined(separator: "\n")
    }
}
