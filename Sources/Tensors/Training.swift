import Basics
import Foundation

/// Examples a model trains or is scored on.
public enum Examples: Sendable {
    case images(LabeledImages)
    case text(TokenSequences)

    public var count: Int {
        switch self {
        case .images(let data): data.count
        case .text(let data): data.count
        }
    }

    public func prefix(_ limit: Int) -> Examples {
        switch self {
        case .images(let data): .images(data.prefix(limit))
        case .text(let data): .text(data.prefix(limit))
        }
    }

    /// Examples `indices`, in that order (a federated site's share of a dataset).
    public func subset<Indices: Collection<Int>>(_ indices: Indices) -> Examples {
        switch self {
        case .images(let data): return .images(data.batch(indices))
        case .text(let data):
            let (inputs, targets) = data.batch(indices)
            var part = TokenSequences(steps: data.steps)
            part.inputs = inputs.data
            part.targets = targets.data
            return .text(part)
        }
    }

    /// Class labels of image examples (nil for text).
    public var classLabels: [Int]? {
        guard case .images(let data) = self, data.parts.contains(.labels) else { return nil }
        return data.labels.data.map { Int($0) }
    }
}

extension Model {
    /// The fed input that holds what the model is scored against (labels, target tokens, targets).
    public var targetFeed: String {
        switch task {
        case .classification: "labels"
        case .languageModel: "targets"
        case .supervised(let task): task.target
        }
    }

    /// The model's inputs for examples `indices`.
    public func feeds<Indices: Collection<Int>>(_ examples: Examples, _ indices: Indices) -> [String: Tensor] {
        switch (task, examples) {
        case (.classification, .images(let data)):
            // Only the parts this process holds.
            let batch = data.batch(indices)
            var feeds: [String: Tensor] = [:]
            if batch.parts.contains(.images) { feeds["images"] = batch.images }
            if batch.parts.contains(.labels) { feeds["labels"] = batch.labels }
            return feeds
        case (.languageModel(_, let predicted, let stateSize), .text(let data)):
            let batch = data.batch(indices)
            let steps = batch.targets.shape[1]
            precondition(predicted <= steps, "model predicts \(predicted) steps of \(steps)-token sequences")
            let targets = (0..<indices.count).flatMap { row in
                batch.targets.data[(row * steps + steps - predicted)..<((row + 1) * steps)]
            }
            return ["tokens": batch.inputs, "targets": Tensor(shape: [indices.count, predicted], data: targets),
                    "initial_state": Tensor(zeros: [indices.count, stateSize])]
        case (.supervised(let task), .images(let data)):
            let batch = data.batch(indices)
            var feeds: [String: Tensor] = [:]
            if batch.parts.contains(.images) { feeds[task.input] = batch.images }
            if batch.parts.contains(.labels) { feeds[task.target] = batch.labels }
            return feeds
        default:
            preconditionFailure("model \(name) cannot read these examples")
        }
    }
}

/// How well a model does on held-out examples.
public struct Evaluation: Sendable, Codable {
    /// Mean cross-entropy per predicted label or token, in nats.
    public var loss: Double
    /// Share of images classified right (classification).
    public var accuracy: Double?
    /// exp(loss) (language models).
    public var perplexity: Double?

    public init(loss: Double, accuracy: Double? = nil, perplexity: Double? = nil) {
        self.loss = loss
        self.accuracy = accuracy
        self.perplexity = perplexity
    }
}

/// Trains a model on one process: the training graph run in order, batch after batch.
public final class Trainer: @unchecked Sendable {
    public let graph: TrainingGraph
    public let seed: UInt64
    /// Training steps taken so far (names dropout masks).
    public private(set) var steps: UInt64 = 0

    public init(model: Model, optimizer: any Optimizer, seed: UInt64) {
        graph = TrainingGraph(model: model, optimizer: optimizer, seed: seed)
        self.seed = seed
    }

    public var model: Model { graph.model }

    /// One pass over `examples` in a seeded order; `progress(step, steps, loss)` after each batch.
    /// Returns the mean training loss.
    ///
    /// A resumed epoch starts at batch `start` with the loss sum of the batches before it, so that it
    /// ends exactly as the uninterrupted one; `afterStep(batches done, loss sum)` is where a checkpoint
    /// can be written.
    @discardableResult
    public func trainEpoch(_ examples: Examples, batchSize: Int, epoch: Int,
                           progress: (Int, Int, Float) -> Void = { _, _, _ in }) -> Double {
        trainEpoch(examples, batchSize: batchSize, epoch: epoch, start: 0, lossSum: 0, progress: progress) { _, _ in }
    }

    @discardableResult
    public func trainEpoch(_ examples: Examples, batchSize: Int, epoch: Int, start: Int, lossSum: Double,
                           progress: (Int, Int, Float) -> Void,
                           afterStep: (Int, Double) throws -> Void) rethrows -> Double {
        let batching = Batching(examples: examples.count, batchSize: batchSize)
        let order = batching.order(epoch: epoch, seed: seed)
        var total = lossSum
        for index in start..<batching.stepsPerEpoch {
            let loss = graph.step(model.feeds(examples, batching.batch(index, of: order)), step: steps)
            steps += 1
            total += Double(loss)
            progress(index + 1, batching.stepsPerEpoch, loss)
            try afterStep(index + 1, total)
        }
        return total / Double(max(1, batching.stepsPerEpoch))
    }

    /// `count` steps from where the step counter stands (`steps` of `batching` so far), continuing
    /// through the seeded epochs: a federated round of a fixed number of local steps. Returns the mean loss.
    public func train(_ examples: Examples, batching: Batching, count: Int,
                      progress: (Int, Int, Float) -> Void = { _, _, _ in }) -> Double {
        guard batching.stepsPerEpoch > 0, count > 0 else { return 0 }
        var total = 0.0
        var epoch = 0
        var order: [Int] = []
        for done in 0..<count {
            let position = batching.position(ofStep: Int(steps))
            if position.epoch != epoch {
                epoch = position.epoch
                order = batching.order(epoch: epoch, seed: seed)
            }
            let loss = graph.step(model.feeds(examples, batching.batch(position.index, of: order)), step: steps)
            steps += 1
            total += Double(loss)
            progress(done + 1, count, loss)
        }
        return total / Double(count)
    }

    /// Sets the step counter of a resumed run (it names dropout masks).
    public func resume(atStep step: UInt64) { steps = step }

    public func evaluate(_ examples: Examples, batchSize: Int = 500) -> Evaluation {
        var tally = EvaluationTally(task: model.task)
        for start in stride(from: 0, to: examples.count, by: batchSize) {
            let indices = start..<min(start + batchSize, examples.count)
            let feeds = model.feeds(examples, indices)
            let outputs = graph.infer(feeds, outputs: [model.prediction, model.loss])
            tally.add(logits: outputs[0], loss: outputs[1].data[0], labels: feeds[model.targetFeed]!)
        }
        return tally.evaluation
    }
}

/// Scores of a model summed over batches of held-out examples: the one scoring rule of every mode.
public struct EvaluationTally: Sendable {
    public let task: Task
    private var lossSum = 0.0
    private var correct = 0
    private var labelled = 0

    public init(task: Task) { self.task = task }

    /// One batch: its logits [..., classes], its mean loss and its labels (or target tokens), one
    /// per row of logits. Regression targets count the loss per example and no accuracy.
    public mutating func add(logits: Tensor, loss: Float, labels: Tensor) {
        if case .supervised(let supervised) = task, supervised.objective == .meanSquaredError {
            let examples = labels.shape.first ?? 1
            lossSum += Double(loss) * Double(examples)
            labelled += examples
            return
        }
        lossSum += Double(loss) * Double(labels.count)
        labelled += labels.count
        let classes = logits.shape.last ?? 1
        logits.data.withUnsafeBufferPointer { lp in
            for row in 0..<labels.count {
                let scores = lp[(row * classes)..<((row + 1) * classes)]
                if scores.indices.max(by: { scores[$0] < scores[$1] })! - row * classes == Int(labels.data[row]) {
                    correct += 1
                }
            }
        }
    }

    public var evaluation: Evaluation {
        let loss = lossSum / Double(max(1, labelled))
        switch task {
        case .classification: return Evaluation(loss: loss, accuracy: Double(correct) / Double(max(1, labelled)))
        case .languageModel: return Evaluation(loss: loss, perplexity: exp(loss))
        case .supervised(let supervised):
            guard case .crossEntropy = supervised.objective else { return Evaluation(loss: loss) }
            return Evaluation(loss: loss, accuracy: Double(correct) / Double(max(1, labelled)))
        }
    }
}

/// How a pass over a training set is cut into steps: the one rule of every training mode.
///
/// Every step has the same number of examples, `batchSize` (the requested size, or the whole set when it
/// is smaller), and the last partial batch of an epoch is left out, as `drop_last=True` in PyTorch: a
/// model-parallel step's receive buffers have the shapes of the plan, and equal steps make single-process,
/// model-parallel and federated runs of one seed take the same batches.
public struct Batching: Sendable, Equatable {
    public let examples: Int
    public let batchSize: Int
    /// Whether each epoch takes the examples in a seeded order (the default) or in file order (`--no-shuffle`).
    public let shuffle: Bool

    public init(examples: Int, batchSize: Int, shuffle: Bool = true) {
        precondition(batchSize >= 1, "a batch has at least one example")
        self.examples = max(0, examples)
        self.batchSize = min(batchSize, max(1, examples))
        self.shuffle = shuffle
    }

    /// Whole batches in one pass over the examples.
    public var stepsPerEpoch: Int { examples / batchSize }

    /// The seeded order of the examples in `epoch` (1-based): the same on every rank and in every mode.
    public func order(epoch: Int, seed: UInt64) -> [Int] {
        guard shuffle else { return Array(0..<examples) }
        var random = SplitMix64(seed: seed, stream: "shuffle", index: UInt64(epoch))
        return random.permutation(examples)
    }

    /// The examples of step `index` (0-based) of an epoch whose order is `order`.
    public func batch(_ index: Int, of order: [Int]) -> ArraySlice<Int> {
        order[(index * batchSize)..<((index + 1) * batchSize)]
    }

    /// The epoch (1-based) and the step within it (0-based) of the run's step `step` (0-based).
    public func position(ofStep step: Int) -> (epoch: Int, index: Int) {
        let perEpoch = max(1, stepsPerEpoch)
        return (step / perEpoch + 1, step % perEpoch)
    }
}
