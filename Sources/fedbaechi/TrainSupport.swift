import ArgumentParser
import Foundation
import Tensors

extension ModelKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension KnownDataset: ExpressibleByArgument {}

extension OptimizerKind {
    /// A learning rate that trains every zoo model with this optimizer.
    var defaultLearningRate: Float {
        switch self {
        case .sgd: 0.01
        case .adam, .rmsprop: 0.001
        }
    }
}

extension ModelKind {
    var defaultBatchSize: Int {
        switch self {
        case .mlp: 128
        case .lenet, .inceptionMini: 64
        case .gruLM, .rnnStack: 32
        }
    }
}

/// A batch of seeded random inputs of the right kind for a model (for profiling without a dataset).
func syntheticExamples(for model: Model, count: Int, steps: Int, seed: UInt64) -> Examples {
    var random = SplitMix64(seed: seed, stream: "synthetic")
    switch model.task {
    case .classification(let classes):
        let images = Tensor(shape: [count, 1, 28, 28]) { out in
            for i in 0..<out.count { out[i] = 2 * random.nextUnitFloat() - 1 }
        }
        let labels = Tensor(shape: [count], data: (0..<count).map { _ in Float(random.nextIndex(below: classes)) })
        return .images(LabeledImages(images: images, labels: labels))
    case .languageModel(let vocabulary, _, _):
        let stream = (0..<(count * steps + 1)).map { _ in random.nextIndex(below: vocabulary) }
        return .text(TokenSequences(stream: stream, steps: steps))
    }
}

/// Loads the examples a model trains on, turning dataset failures into one-line errors.
func loadExamples(_ dataset: KnownDataset, directory: String?, spec: inout ModelSpec,
                  trainLimit: Int?, testLimit: Int?) throws -> (train: Examples, test: Examples, summary: String) {
    do {
        switch dataset {
        case .fashionMNIST:
            let data = try FashionMNIST.load(directory: directory ?? dataset.defaultDirectory,
                                             trainLimit: trainLimit, testLimit: testLimit)
            return (.images(data.train), .images(data.test), "fashion-mnist")
        case .fortunes:
            let corpus = try FortunesCorpus.load(directory: directory ?? dataset.defaultDirectory, steps: spec.steps)
            spec.vocabulary = corpus.vocabulary.count
            var train = Examples.text(corpus.allTrain)
            var test = Examples.text(corpus.allTest)
            if let trainLimit { train = train.prefix(trainLimit) }
            if let testLimit { test = test.prefix(testLimit) }
            return (train, test, "fortunes (\(corpus.categories.count) categories, vocabulary \(corpus.vocabulary.count))")
        }
    } catch let error as DatasetError {
        // Not installed where the package puts it: the machine lacks it (1); not in a folder the user
        // named: the flag is wrong (2).
        if case .missing = error { throw CommandFailure(error.description, status: directory == nil ? .runtime : .badInput) }
        throw CommandFailure(error.description, status: .badInput)
    }
}

/// Progress of an epoch: a redrawn bar when stderr is a terminal, otherwise about ten plain lines; each
/// with the throughput so far and the time left (of the epoch, and of the run when more epochs follow).
struct ProgressReporter {
    let epoch: Int
    let examplesPerStep: Int
    /// Steps of the run after this epoch, for the time left of the whole run.
    let stepsAfterEpoch: Int
    let interactive = isatty(STDERR_FILENO) == 1
    private var lastDraw = Date.distantPast
    private var started: Date?
    private var firstStep = 0

    init(epoch: Int, examplesPerStep: Int, stepsAfterEpoch: Int = 0) {
        self.epoch = epoch
        self.examplesPerStep = examplesPerStep
        self.stepsAfterEpoch = stepsAfterEpoch
    }

    mutating func update(step: Int, of total: Int, loss: Float) {
        // Timed from the first step seen (a resumed epoch starts in the middle).
        guard let started else {
            started = Date()
            firstStep = step
            return show(step: step, of: total, loss: loss, speed: "")
        }
        let seconds = Date().timeIntervalSince(started)
        let stepsPerSecond = Double(step - firstStep) / max(seconds, 1e-9)
        var speed = String(format: ", %.0f examples/s", stepsPerSecond * Double(examplesPerStep))
        if step < total || stepsAfterEpoch > 0 {
            speed += ", " + Self.duration(Double(total - step) / stepsPerSecond) + " left in the epoch"
            if stepsAfterEpoch > 0 { speed += ", " + Self.duration(Double(total - step + stepsAfterEpoch) / stepsPerSecond) + " in the run" }
        }
        show(step: step, of: total, loss: loss, speed: speed)
    }

    private mutating func show(step: Int, of total: Int, loss: Float, speed: String) {
        if interactive {
            guard step == total || Date().timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = Date()
            let width = 30
            let filled = width * step / max(1, total)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = "\repoch \(epoch) [\(bar)] \(step)/\(total) loss \(String(format: "%.4f", loss))\(speed)\u{1B}[K"
            FileHandle.standardError.write(Data((line + (step == total ? "\n" : "")).utf8))
        } else if step == total || step % max(1, total / 10) == 0 {
            print("epoch \(epoch) step \(step)/\(total) loss \(String(format: "%.4f", loss))\(speed)")
        }
    }

    /// "42 s", "3 min 5 s", "2 h 10 min".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "? s" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \(s % 3600 / 60) min"
    }
}
