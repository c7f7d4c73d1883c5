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
        if case .missing = error { throw CommandFailure(error.description, status: .runtime) }
        throw CommandFailure(error.description, status: .badInput)
    }
}

/// Progress of an epoch: a redrawn bar when stderr is a terminal, otherwise about ten plain lines.
struct ProgressReporter {
    let epoch: Int
    let interactive = isatty(STDERR_FILENO) == 1
    private var lastDraw = Date.distantPast

    init(epoch: Int) { self.epoch = epoch }

    mutating func update(step: Int, of total: Int, loss: Float) {
        if interactive {
            guard step == total || Date().timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = Date()
            let width = 30
            let filled = width * step / max(1, total)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = "\repoch \(epoch) [\(bar)] \(step)/\(total) loss \(String(format: "%.4f", loss))"
            FileHandle.standardError.write(Data((line + (step == total ? "\n" : "")).utf8))
        } else if step == total || step % max(1, total / 10) == 0 {
            print("epoch \(epoch) step \(step)/\(total) loss \(String(format: "%.4f", loss))")
        }
    }
}
