import Basics
import Foundation
import Tensors

/// The loop of single-process and model-parallel training: epochs of equal batches (`Batching`), a
/// progress report per step, an evaluation and a metrics record per epoch, checkpoints when due, and the
/// stop on a signal. The two modes differ only in how a step runs and how the model is scored.
struct EpochLoop {
    let settings: TrainingSettings
    let data: DataDescription
    let batching: Batching
    let totalSteps: Int
    let epochCount: Int
    /// This process reports (rank 0).
    let speaks: Bool
    let reporter: any TrainingReporter
    let checkpoints: CheckpointSession
    /// Where rank 0 writes a record per epoch; opened once the loop knows whether the run resumes.
    var metrics: JSONLinesWriter?

    init(settings: TrainingSettings, data: DataDescription, length: TrainingLength, speaks: Bool,
         reporter: any TrainingReporter, checkpoints: CheckpointSession) {
        self.settings = settings
        self.data = data
        batching = Batching(examples: data.trainCount, batchSize: settings.chosenBatchSize, shuffle: settings.shuffle)
        (totalSteps, epochCount) = length.plan(stepsPerEpoch: batching.stepsPerEpoch)
        self.speaks = speaks
        self.reporter = reporter
        self.checkpoints = checkpoints
    }

    /// Runs from `start` (the resumed position; `lossSum` of its epoch so far) to `totalSteps`.
    ///
    /// - `step(indices, position)`: one training step on these examples; the loss where it is known (rank 0).
    /// - `evaluate()`: the test score after an epoch where it is computed (rank 0).
    /// - `checkpoint(position, lossSum)`: this rank's state after `position` steps.
    /// Returns the steps taken in all.
    @discardableResult
    func run(from start: Int, lossSum resumedLossSum: Double,
             step: (ArraySlice<Int>, UInt64) throws -> Float?,
             evaluate: () throws -> Evaluation?,
             checkpoint: (Int, Double) -> Checkpoint) throws -> Int {
        var position = start
        let stepsPerEpoch = batching.stepsPerEpoch
        let firstEpoch = start / max(1, stepsPerEpoch) + 1
        guard firstEpoch <= epochCount else { return position }
        for epoch in firstEpoch...epochCount where position < totalSteps {
            let epochStart = (epoch - 1) * stepsPerEpoch
            let stepsThisEpoch = min(stepsPerEpoch, totalSteps - epochStart)
            let order = batching.order(epoch: epoch, seed: settings.seed)
            var lossSum = epoch == firstEpoch ? resumedLossSum : 0
            let started = Date()
            for index in (position - epochStart)..<stepsThisEpoch {
                let loss = try step(batching.batch(index, of: order), UInt64(position))
                position += 1
                if let loss {
                    lossSum += Double(loss)
                    if let every = settings.logEvery, position % every == 0 {
                        try metrics?.write(StepRecord(step: position, epoch: epoch, loss: Double(loss)))
                    }
                    if speaks {
                        reporter.progress(StepProgress(epoch: epoch, step: index + 1, stepsInEpoch: stepsThisEpoch,
                                                       stepsAfterEpoch: totalSteps - epochStart - stepsThisEpoch,
                                                       examplesPerStep: batching.batchSize, loss: loss))
                    }
                }
                let sum = lossSum
                try checkpoints.saveIfDue(position, of: totalSteps, defaultEvery: 100) { checkpoint(position, sum) }
                try checkpoints.stopIfInterrupted(at: position) { checkpoint(position, sum) }
            }
            let trainSeconds = Date().timeIntervalSince(started)
            guard let score = try evaluate() else { continue }
            let trainLoss = lossSum / Double(max(1, stepsThisEpoch))
            guard trainLoss.isFinite else {
                throw Refusal("training diverged in epoch \(epoch) (loss is not a number): lower --learning-rate", status: .runtime)
            }
            let quality = score.accuracy.map { "test accuracy \(String(format: "%.4f", $0))" }
                ?? "test perplexity \(String(format: "%.2f", score.perplexity ?? .nan))"
            reporter.say("epoch \(epoch)/\(epochCount): train loss \(String(format: "%.4f", trainLoss)), test loss "
                         + "\(String(format: "%.4f", score.loss)), \(quality) (\(String(format: "%.1f", trainSeconds)) s)")
            try metrics?.write(EpochRecord(
                epoch: epoch, model: settings.modelName, dataset: settings.datasetName, seed: settings.seed,
                optimizer: settings.optimizer.rawValue, learningRate: settings.chosenLearningRate, batchSize: batching.batchSize,
                trainExamples: stepsThisEpoch * batching.batchSize, trainLoss: trainLoss, testLoss: score.loss,
                testAccuracy: score.accuracy, testPerplexity: score.perplexity, trainSeconds: trainSeconds, steps: position))
        }
        return position
    }

    /// The line that opens a run: the model, the data, the optimizer.
    func opening(parameters: Int) -> String {
        "model \(settings.modelName): \(parameters) parameters; \(data.summary): "
            + "\(data.trainCount) training, \(data.testCount) test examples; "
            + "\(settings.optimizer.rawValue) learning rate \(settings.chosenLearningRate), batch \(batching.batchSize), "
            + "seed \(settings.seed), BLAS threads \(BLAS.threadCount)"
    }
}
