import ArgumentParser
import Foundation
import MPI
import Placement
import Runtime
import Tensors

/// The flags only `--mode model-parallel` reads.
struct ModelParallelOptions: ParsableArguments {
    @Option(help: "Model-parallel: placer m-sct, m-etf, m-topo, expert, single or auto.")
    var algorithm: String = "m-sct"

    @Option(parsing: .unconditional, help: "Model-parallel: memory of each rank the plan must fit (e.g. 512MiB).")
    var deviceMemory: String = "512MiB"

    @Option(help: "Model-parallel: stop after this many training steps (instead of whole epochs).")
    var steps: Int?

    @Option(help: ArgumentHelp("Model-parallel: place this saved profile (from `fedbaechi profile`) instead of profiling now.",
                               valueName: "file"))
    var profile: String?

    func validate() throws {
        guard Algorithm(rawValue: algorithm.lowercased()) != nil else {
            throw ValidationError("unknown algorithm \"\(algorithm)\": use one of " + Algorithm.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let steps, !(1...1_000_000_000).contains(steps) { throw ValidationError("--steps must be between 1 and 1000000000") }
        do {
            guard try Quantity.bytes(deviceMemory) > 0 else { throw ValidationError("--device-memory must be more than 0 bytes") }
        } catch let error as Quantity.ParseError {
            throw ValidationError("--device-memory: \(error.description)")
        }
    }
}

/// Summary of a model-parallel run: one more line of the metrics file, after the epochs.
struct ModelParallelRecord: Codable {
    struct Rank: Codable {
        var rank: Int
        var nodes: Int
        var computeMs: Double
        var communicationWaitMs: Double
        var otherMs: Double
        var peakBytes: Int
        var predictedPeakBytes: Int

        enum CodingKeys: String, CodingKey {
            case rank, nodes
            case computeMs = "compute_ms", communicationWaitMs = "communication_wait_ms", otherMs = "other_ms"
            case peakBytes = "peak_bytes", predictedPeakBytes = "predicted_peak_bytes"
        }
    }
    var kind = "summary"
    var mode = "model-parallel"
    var model: String
    var algorithm: String
    var ranks: Int
    var steps: Int
    var medianStepMs: Double
    var predictedStepMs: Double
    var memoryLimitBytes: Int
    var withinMemory: Bool
    var placementSeconds: Double
    var perRank: [Rank]

    enum CodingKeys: String, CodingKey {
        case kind, mode, model, algorithm, ranks, steps
        case medianStepMs = "median_step_ms", predictedStepMs = "predicted_step_ms", memoryLimitBytes = "memory_limit_bytes"
        case withinMemory = "within_memory", placementSeconds = "placement_seconds", perRank = "per_rank"
    }
}

extension Train {
    /// `--mode model-parallel`: rank 0 places the profiled training graph on the job's ranks and
    /// broadcasts the plan; every rank runs its part; rank 0 reports progress, the test score per
    /// epoch (on parameters gathered from their owners) and per-rank time and memory.
    func runModelParallel() throws {
        _ = try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        let isRoot = world.rank == 0
        func say(_ line: String) { if isRoot { print(line) } }

        let model = chosenModel
        var spec = ModelSpec(kind: model)
        let data = try loadExamples(dataset ?? model.dataset, directory: dataDirectory, spec: &spec,
                                    trainLimit: limitTrain, testLimit: limitTest)
        guard data.train.count > 0, data.test.count > 0 else {
            throw CommandFailure("\(data.summary) gives \(data.train.count) training and \(data.test.count) test examples: "
                                 + "too little text for sequences of \(spec.steps) tokens", status: .badInput)
        }
        // Every step has the same shapes (the plan's receive buffers): a last partial batch is left out.
        let batch = min(batchSize ?? model.defaultBatchSize, data.train.count)
        let stepsPerEpoch = data.train.count / batch
        let epochCount = modelParallelOptions.steps.map { ($0 + stepsPerEpoch - 1) / stepsPerEpoch } ?? epochs
        let totalSteps = modelParallelOptions.steps ?? epochCount * stepsPerEpoch
        let rate = learningRate ?? optimizer.defaultLearningRate
        let algorithm = Algorithm(rawValue: modelParallelOptions.algorithm.lowercased()) ?? .mSCT
        let memory = (try? Quantity.bytes(modelParallelOptions.deviceMemory)) ?? 0
        var configuration = ModelParallelConfiguration(
            spec: spec, optimizer: optimizer.make(learningRate: rate), seed: seed, algorithm: algorithm, memoryBytes: memory,
            profilePath: modelParallelOptions.profile)
        // The directory is this run's before anything is placed: a fresh run into another run's directory is
        // refused before its plan.json is touched. Each rank saves what it owns; the plan beside the
        // checkpoints keeps ownership fixed when the run resumes.
        let identity = runIdentity(extra: [
            "ranks": "\(world.size)", "algorithm": algorithm.rawValue, "device_memory": "\(memory)",
            "profile": modelParallelOptions.profile ?? "-",
        ])
        let checkpoints = try openCheckpoints(identity, unit: "step", world: world)
        let checkpointLog = CheckpointLog()
        configuration.planFile = checkpoints.map { $0.directory.path + "/" + CheckpointRun.planFileName }
        if alreadyComplete(checkpoints, target: totalSteps, unit: "step", speaks: isRoot) {
            try world.barrier()
            return
        }
        if let checkpoints, let resumed = checkpoints.resumed, let planFile = configuration.planFile,
           !FileManager.default.fileExists(atPath: planFile) {
            CommandFailure("cannot resume from \(checkpoints.directory.path): the checkpoints of step \(resumed.position) are there "
                           + "but the plan they were saved under (\(planFile)) is missing; restore it, or start again with --overwrite")
                .exitEveryRank(world)
        }

        let graph = TrainingGraph(model: spec.build(seed: seed), optimizer: configuration.optimizer, seed: seed)
        let parameterNames = graph.model.parameters.names
        say("model \(model.rawValue): \(graph.model.parameters.count) parameters; \(data.summary): "
            + "\(data.train.count) training, \(data.test.count) test examples; "
            + "\(optimizer.rawValue) learning rate \(rate), batch \(batch), seed \(seed), BLAS threads \(BLAS.threadCount)")

        let plan: ModelParallelPlan
        do {
            plan = try ModelParallelJob.distributePlan(configuration, world: world) {
                graph.model.feeds(data.train, 0..<batch)
            }
        } catch let error as ModelParallelError {
            // Every rank has the same error (rank 0 broadcast it): rank 0 says it once, all exit alike.
            let failure = CommandFailure(error.description, status: error.kind == .noPlanFits ? .noPlanFits : .badInput)
            failure.exitEveryRank(world)
        }
        say(placementSummary(plan, graph: graph))

        let executor: RankExecutor
        do { executor = try RankExecutor(graph: graph, plan: plan, communicator: world) } catch {
            throw CommandFailure(error.description, status: .runtime)
        }
        var stepTimes: [RankStepTimes] = []
        var step: UInt64 = 0
        var resumedLossSum = 0.0
        if let checkpoints, let resumed = checkpoints.resumed {
            do { try graph.model.parameters.restore(resumed.parameters) } catch {
                throw CommandFailure("\(checkpoints.directory.filePath(position: resumed.position)): \(error)", status: .badInput)
            }
            step = UInt64(resumed.position)
            resumedLossSum = Double(checkpointBits: resumed.scalars["epoch_loss_sum"])
            say("resuming from step \(step) of \(totalSteps) (\(checkpoints.directory.path))")
        }
        let metricsFile = try isRoot ? metrics.map { try openMetrics($0, appending: step > 0) } : nil
        let firstEpoch = Int(step) / stepsPerEpoch + 1
        epochs: for epoch in firstEpoch...max(firstEpoch, epochCount) where Int(step) < totalSteps {
            var progress = ProgressReporter(epoch: epoch, examplesPerStep: batch,
                                            stepsAfterEpoch: max(0, totalSteps - (epoch - 1) * stepsPerEpoch - stepsPerEpoch))
            var random = SplitMix64(seed: seed, stream: "shuffle", index: UInt64(epoch))
            let order = random.permutation(data.train.count)
            let firstIndex = Int(step) - (epoch - 1) * stepsPerEpoch
            let stepsThisEpoch = min(stepsPerEpoch, totalSteps - (epoch - 1) * stepsPerEpoch)
            var lossSum = epoch == firstEpoch ? resumedLossSum : 0
            let started = Date()
            for index in firstIndex..<stepsThisEpoch {
                let examples = order[(index * batch)..<((index + 1) * batch)]
                let feeds = executor.neededFeeds.isEmpty ? [:] : graph.model.feeds(data.train, examples)
                let (loss, times) = try executor.step(feeds: feeds, step: step)
                step += 1
                stepTimes.append(times)
                if let loss {
                    lossSum += Double(loss)
                    progress.update(step: index + 1, of: stepsThisEpoch, loss: loss)
                }
                func checkpoint() -> Checkpoint {
                    var checkpoint = Checkpoint(position: Int(step), rank: world.rank, ranks: world.size, run: identity.configuration)
                    checkpoint.parameters = graph.model.parameters.state
                    checkpoint.scalars["epoch_loss_sum"] = lossSum.bitPattern
                    return checkpoint
                }
                if checkpointOptions.due(Int(step), of: totalSteps, defaultEvery: 100) {
                    try save(checkpoint(), to: checkpoints, log: checkpointLog)
                }
                try stopIfInterrupted(at: Int(step), log: checkpointLog, world: world) {
                    try save(checkpoint(), to: checkpoints, log: checkpointLog)
                }
            }
            let trainSeconds = Date().timeIntervalSince(started)
            let weights = try executor.gatherParameters(names: parameterNames)
            if let weights {
                let trainLoss = lossSum / Double(max(1, stepsThisEpoch))
                guard trainLoss.isFinite else {
                    throw CommandFailure("training diverged in epoch \(epoch) (loss is not a number): lower --learning-rate",
                                         status: .runtime)
                }
                let score = try evaluate(spec: spec, weights: weights, test: data.test)
                let quality = score.accuracy.map { "test accuracy \(String(format: "%.4f", $0))" }
                    ?? "test perplexity \(String(format: "%.2f", score.perplexity ?? .nan))"
                print("epoch \(epoch)/\(epochCount): train loss \(String(format: "%.4f", trainLoss)), test loss "
                      + "\(String(format: "%.4f", score.loss)), \(quality) (\(String(format: "%.1f", trainSeconds)) s)")
                let record = EpochRecord(
                    epoch: epoch, model: model.rawValue, dataset: (dataset ?? model.dataset).rawValue, seed: seed,
                    optimizer: optimizer.rawValue, learningRate: rate, batchSize: batch,
                    trainExamples: stepsThisEpoch * batch, trainLoss: trainLoss, testLoss: score.loss,
                    testAccuracy: score.accuracy, testPerplexity: score.perplexity, trainSeconds: trainSeconds,
                    steps: Int(step))
                try writeLine(record, to: metricsFile)
            }
            if Int(step) >= totalSteps { break epochs }
        }

        if let report = try ModelParallelReport.gather(executor, stepTimes: stepTimes, world: world) {
            print(report.table)
            let record = ModelParallelRecord(
                model: model.rawValue, algorithm: plan.algorithm, ranks: plan.rankCount, steps: Int(step),
                medianStepMs: report.medianStepSeconds * 1000, predictedStepMs: report.predictedStepSeconds * 1000,
                memoryLimitBytes: plan.memoryLimitBytes, withinMemory: report.withinMemory,
                placementSeconds: plan.placementSeconds,
                perRank: report.ranks.map {
                    .init(rank: $0.rank, nodes: $0.nodes, computeMs: $0.compute * 1000, communicationWaitMs: $0.communicationWait * 1000,
                          otherMs: $0.other * 1000, peakBytes: $0.peakBytes, predictedPeakBytes: $0.predictedPeakBytes)
                })
            try writeLine(record, to: metricsFile)
        }
        try metricsFile?.close()
        if let summary = checkpointLog.summary(rank: world.rank) { say(summary) }
        try world.barrier()
    }

    /// Scores gathered weights with a full copy of the model, made on rank 0 for this only.
    private func evaluate(spec: ModelSpec, weights: [String: [Float]], test: Examples) throws -> Evaluation {
        let scorer = Trainer(model: spec.build(seed: seed), optimizer: optimizer.make(learningRate: 0), seed: seed)
        for (name, values) in weights { try scorer.model.parameters.set(name, values) }
        return scorer.evaluate(test)
    }

    private func placementSummary(_ plan: ModelParallelPlan, graph: TrainingGraph) -> String {
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
