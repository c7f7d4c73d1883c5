import Basics
import Foundation
import MPI
import Placement
import Runtime
import Tensors
import TestSupport

/// Zoo models shrunk so that eight debug-build ranks on two cores train them in seconds.
func tinySpec(_ kind: ModelKind) -> ModelSpec {
    var spec = ModelSpec(kind: kind, vocabulary: 23)
    spec.hidden = [48, 24]
    spec.lenet = (3, 4, 16)
    spec.width = 2
    spec.embedding = 6
    spec.recurrentHidden = 6
    spec.steps = 4
    spec.layers = 3
    spec.dropout = 0.25
    return spec
}

/// Seeded random batches of the right kind for a model: batch `index` is the same on every rank.
/// `tokens` is the sequence length of the language models (`ModelSpec.steps`).
func syntheticFeeds(_ model: Model, batch: Int, index: Int, seed: UInt64, tokens: Int) -> [String: Tensor] {
    var random = SplitMix64(seed: seed, stream: "test-batch", index: UInt64(index))
    switch model.task {
    case .classification(let classes):
        let images = Tensor(shape: [batch, 1, 28, 28]) { out in
            for i in 0..<out.count { out[i] = 2 * random.nextUnitFloat() - 1 }
        }
        let labels = Tensor(shape: [batch], data: (0..<batch).map { _ in Float(random.nextIndex(below: classes)) })
        return model.feeds(.images(LabeledImages(images: images, labels: labels)), 0..<batch)
    case .languageModel(let vocabulary, _, _):
        let stream = (0..<(batch * tokens + 1)).map { _ in random.nextIndex(below: vocabulary) }
        return model.feeds(.text(TokenSequences(stream: stream, steps: tokens)), 0..<batch)
    case .supervised(let task):
        let features = Tensor(shape: [batch] + task.inputShape) { out in
            for i in 0..<out.count { out[i] = 2 * random.nextUnitFloat() - 1 }
        }
        var targets = Tensor(zeros: [batch] + task.targetShape)
        for i in 0..<targets.count {
            if case .crossEntropy(let classes) = task.objective { targets.data[i] = Float(random.nextIndex(below: classes)) }
            else { targets.data[i] = 2 * random.nextUnitFloat() - 1 }
        }
        return model.feeds(.images(LabeledImages(images: features, labels: targets)), 0..<batch)
    }
}

/// Held-out batches after training: one of the training batch's size (the plan's shapes) and one larger
/// (shapes inferred for it).
func evaluationBatchSizes(batch: Int) -> [Int] { [batch, batch + 2] }

/// Single-process training of the same model: the losses of every step, the final weights, and the
/// logits and loss of each evaluation batch afterwards (inference mode).
func referenceTraining(_ spec: ModelSpec, optimizer: any Optimizer, seed: UInt64, batch: Int,
                       steps: Int) -> (losses: [Float], weights: [String: [Float]], evaluations: [[Tensor]]) {
    let graph = TrainingGraph(model: spec.build(seed: seed), optimizer: optimizer, seed: seed)
    var losses: [Float] = []
    for step in 0..<steps {
        losses.append(graph.step(syntheticFeeds(graph.model, batch: batch, index: step, seed: seed, tokens: spec.steps), step: UInt64(step)))
    }
    var weights: [String: [Float]] = [:]
    for name in graph.model.parameters.names { weights[name] = graph.model.parameters.values(of: name) }
    let evaluations = evaluationBatchSizes(batch: batch).enumerated().map { index, size in
        graph.infer(syntheticFeeds(graph.model, batch: size, index: 100 + index, seed: seed, tokens: spec.steps),
                    outputs: [graph.model.prediction, graph.model.loss])
    }
    return (losses, weights, evaluations)
}

/// Model-parallel training of `spec` with `plan` on `world`, each rank making only the parameters it
/// owns: losses (rank 0), gathered weights (rank 0), and the evaluations of `evaluationBatchSizes` (rank 0).
func modelParallelTraining(_ spec: ModelSpec, optimizer: any Optimizer, seed: UInt64, batch: Int, steps: Int,
                           plan: ModelParallelPlan, world: Communicator) throws
    -> (losses: [Float], weights: [String: [Float]]?, executor: RankExecutor, times: [RankStepTimes],
        evaluations: [(logits: Tensor, loss: Float)]) {
    let graph = TrainingGraph(model: spec.build(seed: seed, holding: .none), optimizer: optimizer, seed: seed)
    let names = graph.model.parameters.declaredNames
    let executor = try RankExecutor(graph: graph, plan: plan, communicator: world)
    var losses: [Float] = []
    var times: [RankStepTimes] = []
    for step in 0..<steps {
        let feeds = executor.neededFeeds.isEmpty ? [:] : syntheticFeeds(graph.model, batch: batch, index: step, seed: seed, tokens: spec.steps)
        let (loss, stepTimes) = try executor.step(feeds: feeds, step: UInt64(step))
        if let loss { losses.append(loss) }
        times.append(stepTimes)
    }
    var evaluations: [(logits: Tensor, loss: Float)] = []
    for (index, size) in evaluationBatchSizes(batch: batch).enumerated() {
        let feeds = syntheticFeeds(graph.model, batch: size, index: 100 + index, seed: seed, tokens: spec.steps)
        if let result = try executor.evaluate(feeds: feeds, batchSize: size) { evaluations.append(result) }
    }
    return (losses, try executor.gatherParameters(names: names), executor, times, evaluations)
}

/// Bitwise equality of two weight sets, with the first difference named.
func firstDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> String? {
    guard Set(a.keys) == Set(b.keys) else { return "parameters differ: \(Set(a.keys).symmetricDifference(b.keys).sorted())" }
    for name in a.keys.sorted() {
        let x = a[name]!, y = b[name]!
        guard x.count == y.count else { return "\(name): \(x.count) values vs \(y.count)" }
        for i in x.indices where x[i].bitPattern != y[i].bitPattern {
            return "\(name)[\(i)]: \(x[i]) vs \(y[i])"
        }
    }
    return nil
}

/// An mlp of three equal layers, none much bigger than the others, so it can be cut in parts.
let splitSpec: ModelSpec = {
    var spec = tinySpec(.mlp)
    spec.hidden = [384, 384, 384]
    return spec
}()

/// A plan for `ranks` ranks whose per-rank limit is the smallest of 50%, 60%, ... 90% of what one rank
/// needs that still gives a plan (nil if none does).
func splitPlan(_ configuration: ModelParallelConfiguration, ranks: Int, feeds: [String: Tensor]) throws -> ModelParallelPlan? {
    let oneRank = try ModelParallelJob.makePlan(configuration, ranks: 1, feeds: feeds).predictedPeakBytes[0]
    for percent in stride(from: 50, through: 90, by: 10) {
        var limited = configuration
        limited.memoryBytes = oneRank * percent / 100
        if let plan = try? ModelParallelJob.makePlan(limited, ranks: ranks, feeds: feeds) { return plan }
    }
    return nil
}

/// Shapes of every node output for `feeds`, from one real training step on a copy of the model.
func executedShapes(of spec: any ModelRecipe, optimizer: any Optimizer, seed: UInt64, feeds: [String: Tensor]) -> [[[Int]]] {
    executedShapes(TrainingGraph(model: spec.build(seed: seed), optimizer: optimizer, seed: seed), feeds: feeds)
}
