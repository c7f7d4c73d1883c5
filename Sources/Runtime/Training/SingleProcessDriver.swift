import Basics
import Foundation
import Tensors

/// Training in one process: the reference the distributed modes are compared with.
public struct SingleProcessDriver: TrainingDriver {
    public var settings: TrainingSettings
    public var length: TrainingLength
    public let reporter: any TrainingReporter

    public init(settings: TrainingSettings, length: TrainingLength, reporter: any TrainingReporter) {
        self.settings = settings
        self.length = length
        self.reporter = reporter
    }

    public func run() throws {
        var spec = settings.modelSpec()
        let data = try TrainingData.load(settings, spec: &spec, testLimit: settings.limitTest)
        try data.requireExamples(spec: spec)
        let trainer = Trainer(model: settings.recipe(spec).build(seed: settings.seed),
                              optimizer: settings.optimizer.make(learningRate: settings.chosenLearningRate), seed: settings.seed)
        let identity = settings.identity(mode: "single", extra: [:])
        let checkpoints = try CheckpointSession(settings.checkpoints, identity: identity, unit: "step", world: nil, reporter: reporter)
        let resumed = checkpoints.resumed
        if let resumed {
            do { try trainer.model.parameters.restore(resumed.parameters) } catch {
                throw Refusal("\(checkpoints.filePath(position: resumed.position)): \(error)")
            }
        }
        var loop = EpochLoop(settings: settings, data: data.description, length: length, speaks: true, reporter: reporter,
                             checkpoints: checkpoints)
        reporter.say(loop.opening(parameters: trainer.model.parameters.count))
        if checkpoints.alreadyComplete(target: loop.totalSteps) { return }
        if let resumed { reporter.say("resuming from step \(resumed.position) of \(loop.totalSteps) (\(checkpoints.directoryPath!))") }
        loop.metrics = try openMetrics(settings.metricsPath, appending: resumed != nil)
        try loop.run(
            from: resumed?.position ?? 0, lossSum: Double(checkpointBits: resumed?.scalars["epoch_loss_sum"]),
            step: { examples, position in trainer.graph.step(trainer.model.feeds(data.train, examples), step: position) },
            evaluate: { trainer.evaluate(data.test) },
            checkpoint: { position, lossSum in
                var checkpoint = Checkpoint(position: position, rank: 0, ranks: 1, run: identity.configuration)
                checkpoint.parameters = trainer.model.parameters.state
                checkpoint.scalars["epoch_loss_sum"] = lossSum.bitPattern
                return checkpoint
            })
        try loop.metrics?.close()
        if let summary = checkpoints.summary { reporter.say(summary) }
        if let file = settings.file, let path = file.exportPath {
            try file.export(parameters: trainer.model.parameters.state.values)
            reporter.say("trained model written to \(path)")
        }
    }
}
