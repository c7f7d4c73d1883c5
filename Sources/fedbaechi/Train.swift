import ArgumentParser
import Foundation
import enum Placement.FileProblem
import Runtime
import Tensors

/// How `train` spreads the work.
enum TrainMode: String, ExpressibleByArgument, CaseIterable {
    case single
    /// The ranks of the MPI job each run a Baechi-placed part of the training graph.
    case modelParallel = "model-parallel"
    /// Every rank is a site with private data; sites aggregate by private ADMM (or a baseline).
    case federated
}

/// Trains a zoo model on its dataset in one process and reports test quality each epoch.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model of the zoo on Fashion-MNIST or the fortunes corpus.",
        discussion: """
            Reports the test accuracy (image models) or perplexity (language models) after each epoch \
            (round, federated). Without arguments, `mpirun -np 8 fedbaechi train` trains inception-mini \
            model-parallel on 8 ranks for one epoch of Fashion-MNIST.

            Models: mlp, lenet, inception-mini (Fashion-MNIST); gru-lm, rnn-stack (fortunes).

            Examples:
              mpirun -np 4 fedbaechi train --mode model-parallel \\
                  --model inception-mini --algorithm m-sct --steps 50
              mpirun -np 9 fedbaechi train --mode federated --model lenet \\
                  --rounds 10 --aggregation admm --masked --partition dirichlet:0.5
              fedbaechi train --mode single --model lenet --epochs 2 \\
                  --seed 1 --metrics out.jsonl --checkpoint-dir ckpt
              fedbaechi report out.jsonl
            """
    )

    @Option(help: "How to run: model-parallel (the ranks of the MPI job share the placed graph), federated (every rank is a site with private data) or single (one process).")
    var mode: TrainMode = .modelParallel

    @Option(help: "Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")) (default: inception-mini).")
    var model: ModelKind?

    @OptionGroup var modelParallelOptions: ModelParallelOptions

    @OptionGroup var federatedOptions: FederatedOptions

    @OptionGroup var checkpointOptions: CheckpointOptions

    /// The model to train: `--model`, or the built-in default (lenet for federated runs, the CNN of
    /// the federated paper).
    var chosenModel: ModelKind { model ?? (mode == .federated ? .lenet : Self.defaultModel) }
    static let defaultModel = ModelKind.inceptionMini

    @Option(help: "Dataset: fashion-mnist or fortunes (default: the model's own).")
    var dataset: KnownDataset?

    @Option(help: "Folder holding the dataset (default: where its Debian package installs it).")
    var dataDirectory: String?

    @Option(help: "Passes over the training set.")
    var epochs = 1

    @Option(help: "Seed of initialisation, shuffling and dropout.")
    var seed: UInt64 = 1

    @Option(help: "Examples per step (default: 128 mlp, 64 lenet and inception-mini, 32 language models).")
    var batchSize: Int?

    @Option(help: "Optimizer: sgd (momentum 0.9), adam or rmsprop.")
    var optimizer: OptimizerKind = .adam

    @Option(help: "Step size (default: 0.001 for adam and rmsprop, 0.01 for sgd).")
    var learningRate: Float?

    @Option(help: "Train on only the first N training examples (quick runs).")
    var limitTrain: Int?

    @Option(help: "Score on only the first N test examples.")
    var limitTest: Int?

    @Option(help: ArgumentHelp("Write the run's records to this file, one JSON object per line with a \"kind\": one per epoch (single, model-parallel) or round (federated), and a summary (`fedbaechi report FILE` draws them).",
                               valueName: "file"))
    var metrics: String?

    func validate() throws {
        guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 1000000") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw ValidationError("--learning-rate must be a positive number")
        }
        if let limitTrain, limitTrain < 1 { throw ValidationError("--limit-train must be at least 1") }
        if let limitTest, limitTest < 1 { throw ValidationError("--limit-test must be at least 1") }
        if let dataset, dataset != chosenModel.dataset {
            throw ValidationError("model \(chosenModel.rawValue) trains on \(chosenModel.dataset.rawValue), not \(dataset.rawValue)")
        }
        try modelParallelOptions.validate()
        try federatedOptions.validate()
        if mode != .modelParallel, modelParallelOptions.steps != nil || modelParallelOptions.profile != nil {
            throw ValidationError("--steps and --profile apply to --mode model-parallel only")
        }
        let f = federatedOptions
        if mode != .federated, f.partition != nil || f.admmOnlyFlagsGiven {
            throw ValidationError("--partition, --iterations, --masked, --dual-range, --collusion, --allow-leaky-schedule, --allow-inexact, "
                                  + "--check-exact-mean and --insecure-reproducible-secrets apply to --mode federated only")
        }
        try checkpointOptions.validate()
    }

    func run() throws {
        if mode == .modelParallel { return try runModelParallel() }
        if mode == .federated { return try runFederated() }
        let model = chosenModel
        var spec = ModelSpec(kind: model)
        let data = try loadExamples(dataset ?? model.dataset, directory: dataDirectory, spec: &spec,
                                    trainLimit: limitTrain, testLimit: limitTest)
        guard data.train.count > 0, data.test.count > 0 else {
            throw CommandFailure("\(data.summary) gives \(data.train.count) training and \(data.test.count) test examples: "
                                 + "too little text for sequences of \(spec.steps) tokens", status: .badInput)
        }
        let batch = batchSize ?? model.defaultBatchSize
        let rate = learningRate ?? optimizer.defaultLearningRate
        let trainer = Trainer(model: spec.build(seed: seed), optimizer: optimizer.make(learningRate: rate), seed: seed)
        print("model \(model.rawValue): \(trainer.model.parameters.count) parameters; \(data.summary): "
              + "\(data.train.count) training, \(data.test.count) test examples; "
              + "\(optimizer.rawValue) learning rate \(rate), batch \(batch), seed \(seed), BLAS threads \(BLAS.threadCount)")

        // Checkpoints count steps; a resumed run restarts inside its epoch at the next batch.
        let stepsPerEpoch = Trainer.batchCount(examples: data.train.count, batchSize: batch)
        let totalSteps = epochs * stepsPerEpoch
        let identity = runIdentity()
        let checkpoints = try openCheckpoints(identity, unit: "step", world: nil)
        let checkpointLog = CheckpointLog()
        let resumed = checkpoints?.resumed
        if let resumed, let checkpoints {
            do { try trainer.model.parameters.restore(resumed.parameters) } catch {
                throw CommandFailure("\(checkpoints.directory.filePath(position: resumed.position)): \(error)", status: .badInput)
            }
            trainer.resume(atStep: UInt64(resumed.position))
            if alreadyComplete(checkpoints, target: totalSteps, unit: "step", speaks: true) { return }
            print("resuming from step \(resumed.position) of \(totalSteps) (\(checkpoints.directory.path))")
        }
        let metricsFile = try metrics.map { try openMetrics($0, appending: resumed != nil) }
        let firstEpoch = (resumed?.position ?? 0) / stepsPerEpoch + 1
        func checkpoint(_ position: Int, lossSum: Double) -> Checkpoint {
            var checkpoint = Checkpoint(position: position, rank: 0, ranks: 1, run: identity.configuration)
            checkpoint.parameters = trainer.model.parameters.state
            checkpoint.scalars["epoch_loss_sum"] = lossSum.bitPattern
            return checkpoint
        }

        for epoch in firstEpoch...max(firstEpoch, epochs) where epoch <= epochs {
            var progress = ProgressReporter(epoch: epoch, examplesPerStep: batch, stepsAfterEpoch: (epochs - epoch) * stepsPerEpoch)
            let start = Date()
            let resumesHere = epoch == firstEpoch && resumed != nil
            let trainLoss = try trainer.trainEpoch(
                data.train, batchSize: batch, epoch: epoch,
                start: resumesHere ? resumed!.position % stepsPerEpoch : 0,
                lossSum: resumesHere ? Double(checkpointBits: resumed!.scalars["epoch_loss_sum"]) : 0,
                progress: { step, total, loss in progress.update(step: step, of: total, loss: loss) },
                afterStep: { _, lossSum in
                    let position = Int(trainer.steps)
                    if checkpointOptions.due(position, of: totalSteps, defaultEvery: 100) {
                        try save(checkpoint(position, lossSum: lossSum), to: checkpoints, log: checkpointLog)
                    }
                    try stopIfInterrupted(at: position, log: checkpointLog, world: nil) {
                        try save(checkpoint(position, lossSum: lossSum), to: checkpoints, log: checkpointLog)
                    }
                })
            let trainSeconds = Date().timeIntervalSince(start)
            let score = trainer.evaluate(data.test)
            guard trainLoss.isFinite else {
                throw CommandFailure("training diverged in epoch \(epoch) (loss is not a number): lower --learning-rate",
                                     status: .runtime)
            }
            let quality = score.accuracy.map { "test accuracy \(String(format: "%.4f", $0))" }
                ?? "test perplexity \(String(format: "%.2f", score.perplexity ?? .nan))"
            print("epoch \(epoch)/\(epochs): train loss \(String(format: "%.4f", trainLoss)), test loss "
                  + "\(String(format: "%.4f", score.loss)), \(quality) (\(String(format: "%.1f", trainSeconds)) s)")
            let record = EpochRecord(
                epoch: epoch, model: model.rawValue, dataset: (dataset ?? model.dataset).rawValue, seed: seed,
                optimizer: optimizer.rawValue, learningRate: rate, batchSize: batch, trainExamples: data.train.count,
                trainLoss: trainLoss, testLoss: score.loss, testAccuracy: score.accuracy,
                testPerplexity: score.perplexity, trainSeconds: trainSeconds, steps: Int(trainer.steps))
            try writeLine(record, to: metricsFile)
        }
        try metricsFile?.close()
        if let summary = checkpointLog.summary(rank: 0) { print(summary) }
    }

    func openMetrics(_ path: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw CommandFailure("cannot write the metrics file \(path): \(FileProblem.unwritable(path) ?? "the file system refused")",
                                 status: .badInput)
        }
        return handle
    }
}

/// One line of the metrics file: an epoch's losses and test score.
struct EpochRecord: Codable {
    /// What kind of record a line is, so that a reader tells them apart: "epoch", "round" or "summary".
    var kind = "epoch"
    var epoch: Int
    var model: String
    var dataset: String
    var seed: UInt64
    var optimizer: String
    var learningRate: Float
    var batchSize: Int
    var trainExamples: Int
    var trainLoss: Double
    var testLoss: Double
    var testAccuracy: Double?
    var testPerplexity: Double?
    var trainSeconds: Double
    /// Training steps since the start.
    var steps: Int

    enum CodingKeys: String, CodingKey {
        case kind, epoch, model, dataset, seed, optimizer, steps
        case learningRate = "learning_rate", batchSize = "batch_size", trainExamples = "train_examples"
        case trainLoss = "train_loss", testLoss = "test_loss", testAccuracy = "test_accuracy"
        case testPerplexity = "test_perplexity", trainSeconds = "train_seconds"
    }
}
