import Basics
import Foundation
import Testing
@testable import Tensors

/// Zoo models at sizes small enough for finite differences in a debug build.
func tinySpec(_ kind: ModelKind) -> ModelSpec {
    var spec = ModelSpec(kind: kind, vocabulary: 13)
    spec.hidden = [6, 5]
    spec.lenet = (2, 3, 8)
    spec.width = 2
    spec.embedding = 5
    spec.recurrentHidden = 5
    spec.steps = kind == .rnnStack ? 6 : 4
    spec.layers = 3
    spec.dropout = 0.3
    return spec
}

/// Seeded inputs for a model: random images and labels, or random token sequences.
func tinyExamples(_ model: Model, count: Int, steps: Int, seed: UInt64 = 3) -> Examples {
    var data = TestData(seed: seed)
    switch model.task {
    case .classification(let classes):
        return .images(LabeledImages(images: data.uniform([count, 1, 28, 28]), labels: data.indices([count], below: classes)))
    case .languageModel(let vocabulary, _, _):
        let stream = (0..<(count * steps + 1)).map { _ in data.random.nextIndex(below: vocabulary) }
        return .text(TokenSequences(stream: stream, steps: steps))
    case .supervised(let task):
        return .images(LabeledImages(images: data.uniform([count] + task.inputShape), labels: data.uniform([count] + task.targetShape)))
    }
}

@Suite struct ModelTests {
    /// The loss and every parameter's gradient from one run of the training graph without its updates.
    func lossAndGradients(_ graph: TrainingGraph, _ feeds: [String: Tensor]) -> (Double, [String: Tensor]) {
        let updates = graph.nodes.indices.filter { graph.nodes[$0].role == .update }
        var values = graph.feedValues(feeds)
        let order = graph.executionOrder.filter { graph.nodes[$0].role != .update }
        graph.run(order, values: &values, context: ExecutionContext(training: true, step: 1, seed: 11))
        var gradients: [String: Tensor] = [:]
        for index in updates {
            guard case .update(let name) = graph.nodes[index].action else { continue }
            gradients[name] = values[graph.nodes[index].inputs[0]]
        }
        return (Double(values[graph.model.loss]!.data[0]), gradients)
    }

    func loss(_ graph: TrainingGraph, _ feeds: [String: Tensor]) -> Double {
        var values = graph.feedValues(feeds)
        graph.run(graph.ancestors(of: [graph.model.loss]), values: &values,
                  context: ExecutionContext(training: true, step: 1, seed: 11))
        return Double(values[graph.model.loss]!.data[0])
    }

    /// Directional finite differences for every parameter: (L(p + e d) - L(p - e d)) / 2e against
    /// <gradient, d>.
    @Test(arguments: ModelKind.allCases)
    func wholeModelGradients(_ kind: ModelKind) throws {
        let spec = tinySpec(kind)
        let model = spec.build(seed: 5)
        // Biases start at zero; behind a dead ReLU that puts pre-activations exactly on ReLU's kink,
        // where finite differences see half a slope. Random biases keep every point generic.
        var random = SplitMix64(seed: 17)
        for name in model.parameters.names where name.hasSuffix("bias") {
            try model.parameters.set(name, model.parameters.values(of: name)!.map { _ in
                (random.next() & 1 == 0 ? -1 : 1) * (0.05 + 0.1 * random.nextUnitFloat())
            })
        }
        let graph = TrainingGraph(model: model, optimizer: SGD(learningRate: 0), seed: 11)
        let feeds = model.feeds(tinyExamples(model, count: 3, steps: spec.steps), 0..<3)
        let (_, gradients) = lossAndGradients(graph, feeds)
        #expect(Set(gradients.keys) == Set(model.parameters.names), "every parameter gets a gradient")
        // Recurrent models are smooth, so a larger step rises above Float32 rounding; ReLU models
        // need a small one to stay clear of kinks.
        let epsilon: Float = kind.dataset == .fortunes ? 1e-2 : 1e-3
        for name in model.parameters.names {
            let original = try #require(model.parameters.values(of: name))
            let gradient = try #require(gradients[name])
            // Along the gradient's signs with random weights: no cancellation, so the directional
            // derivative stands well above Float32 rounding, yet every element's error counts.
            // Unit length, so the step stays small however many elements the parameter has.
            var direction = gradient.data.map { g in
                let sign: Float = g > 0 ? 1 : g < 0 ? -1 : (random.next() & 1 == 0 ? -1 : 1)
                return sign * (0.5 + random.nextUnitFloat())
            }
            let length = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
            direction = direction.map { $0 / length }
            try model.parameters.set(name, zip(original, direction).map { $0 + epsilon * $1 })
            let up = loss(graph, feeds)
            try model.parameters.set(name, zip(original, direction).map { $0 - epsilon * $1 })
            let down = loss(graph, feeds)
            try model.parameters.set(name, original)
            let numeric = (up - down) / (2 * Double(epsilon))
            let analytic = zip(gradient.data, direction).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            // Relative error, absolute below 0.01 where Float32 rounding of the loss dominates.
            let error = abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-2)
            #expect(error < 2e-2, "\(kind.rawValue) \(name): numeric \(numeric), backprop \(analytic)")
        }
    }

    @Test func sameSeedSameWeightsBitwise() throws {
        func train(seed: UInt64) -> [String: [Float]] {
            let spec = tinySpec(.inceptionMini)  // has dropout, so masks must repeat too
            let trainer = Trainer(model: spec.build(seed: seed), optimizer: Adam(learningRate: 0.01), seed: seed)
            let examples = tinyExamples(trainer.model, count: 6, steps: spec.steps)
            for epoch in 1...2 { trainer.trainEpoch(examples, batchSize: 4, epoch: epoch) }
            return Dictionary(uniqueKeysWithValues: trainer.model.parameters.names.map { ($0, trainer.model.parameters.values(of: $0)!) })
        }
        let first = train(seed: 42)
        let again = train(seed: 42)
        #expect(first.keys.allSatisfy { first[$0]!.map(\.bitPattern) == again[$0]!.map(\.bitPattern) })
        #expect(first != train(seed: 43))
    }

    @Test func parametersByNameAsFlatArrays() throws {
        let model = tinySpec(.mlp).build(seed: 1)
        #expect(model.parameters.names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "out.weight", "out.bias"])
        #expect(model.parameters.count == 784 * 6 + 6 + 6 * 5 + 5 + 5 * 10 + 10)
        try model.parameters.set("fc2.bias", [1, 2, 3, 4, 5])
        #expect(model.parameters.values(of: "fc2.bias") == [1, 2, 3, 4, 5])
        #expect(throws: ParameterStore.Failure.self) { try model.parameters.set("fc2.bias", [1]) }
        #expect(throws: ParameterStore.Failure.self) { try model.parameters.set("nope", [1]) }
        // Initial values depend on the seed and the parameter's name, not on the other layers.
        var wider = tinySpec(.mlp)
        wider.hidden = [6, 9]
        #expect(wider.build(seed: 1).parameters.values(of: "fc1.weight") == model.parameters.values(of: "fc1.weight"))
    }

    /// The plain optimizers against values worked out by hand.
    @Test func optimizerStepsByHand() {
        var state = OptimizerState(slots: 1, count: 2)
        var p: [Float] = [1, -1]
        let sgd = SGD(learningRate: 0.1, momentum: 0.5)
        sgd.update(&p, gradient: [2, 4], state: &state)  // v = g; p -= 0.1 v
        #expect(p == [0.8, -1.4])
        sgd.update(&p, gradient: [2, 4], state: &state)  // v = 0.5 [2, 4] + [2, 4] = [3, 6]
        #expect(abs(p[0] - 0.5) < 1e-6 && abs(p[1] + 2.0) < 1e-6)

        // Adam's first step moves each element by lr * sign(g) (up to epsilon).
        var adamState = OptimizerState(slots: 2, count: 2)
        var q: [Float] = [1, 1]
        Adam(learningRate: 0.01).update(&q, gradient: [3, -0.5], state: &adamState)
        #expect(abs(q[0] - 0.99) < 1e-6 && abs(q[1] - 1.01) < 1e-6)

        // RMSprop's first step: s = 0.01 g^2, so the move is lr * g / (0.1 |g|) = 10 lr sign(g).
        var rmsState = OptimizerState(slots: 1, count: 1)
        var r: [Float] = [0]
        RMSprop(learningRate: 0.001).update(&r, gradient: [4], state: &rmsState)
        #expect(abs(r[0] + 0.01) < 1e-6)
    }

    @Test func vectorSquareRootAgreesWithLibm() {
        var values: [Float] = [0, 1, 2, 4, 1e-30, 1e30, 3.3e-8, 7.77e12]
        var random = SplitMix64(seed: 3)
        for _ in 0..<1000 { values.append(Float(pow(10, Double(random.nextUnitFloat()) * 40 - 20))) }
        for start in stride(from: 0, to: values.count - 7, by: 8) {
            let lanes = squareRoot(Lanes(values[start..<(start + 8)]))
            for i in 0..<8 {
                let exact = values[start + i].squareRoot()
                #expect(abs(lanes[i] - exact) <= 4e-7 * exact, "sqrt(\(values[start + i])): \(lanes[i]) vs \(exact)")
            }
        }
    }

    /// The vector loops and the scalar tail agree with the rules computed in Double on a
    /// length that is not a multiple of 16, over several steps.
    @Test func optimizerVectorLoopsMatchTheRules() {
        var data = TestData(seed: 5)
        let count = 37
        let start = data.uniform([count]).data
        let gradients = (0..<3).map { _ in data.uniform([count]).data }
        func run(_ optimizer: any Optimizer) -> [Float] {
            var p = start
            var state = OptimizerState(slots: optimizer.slotCount, count: count)
            for g in gradients { optimizer.update(&p, gradient: g, state: &state) }
            return p
        }
        var sgd = start.map(Double.init), velocity = [Double](repeating: 0, count: count)
        var adam = sgd, m = velocity, v = velocity
        var rms = sgd, square = velocity
        for (t, g) in gradients.enumerated() {
            for i in 0..<count {
                let gi = Double(g[i])
                velocity[i] = 0.9 * velocity[i] + gi
                sgd[i] -= 0.05 * velocity[i]
                m[i] = 0.9 * m[i] + 0.1 * gi
                v[i] = 0.999 * v[i] + 0.001 * gi * gi
                let mHat = m[i] / (1 - pow(0.9, Double(t + 1)))
                let vHat = v[i] / (1 - pow(0.999, Double(t + 1)))
                adam[i] -= 0.01 * mHat / (vHat.squareRoot() + 1e-8)
                square[i] = 0.99 * square[i] + 0.01 * gi * gi
                rms[i] -= 0.001 * gi / (square[i].squareRoot() + 1e-8)
            }
        }
        for (engine, reference) in [(run(SGD(learningRate: 0.05)), sgd), (run(Adam(learningRate: 0.01)), adam),
                                    (run(RMSprop(learningRate: 0.001)), rms)] {
            #expect(zip(engine, reference).allSatisfy { abs(Double($0) - $1) < 1e-5 })
        }
    }
}

/// The seeded generator behind shuffles, synthetic labels and dropout draws every index of its range
/// about equally often, and a shuffle depends on its seed.
@Suite struct SeededIndexTests {
    @Test(arguments: [2, 10, 97])
    func indicesCoverTheRangeEvenly(bound: Int) {
        var random = SplitMix64(seed: 42)
        let draws = 2_000 * bound
        var counts = [Int](repeating: 0, count: bound)
        for _ in 0..<draws { counts[random.nextIndex(below: bound)] += 1 }
        // 2,000 expected per index; a binomial's standard deviation is under 45, so ±300 fails only if biased.
        #expect(counts.allSatisfy { abs($0 - 2_000) < 300 }, "counts \(counts)")
    }

    @Test func shufflesDependOnTheSeed() {
        var first = SplitMix64(seed: 1), second = SplitMix64(seed: 2)
        let a = first.permutation(50), b = second.permutation(50)
        #expect(a.sorted() == Array(0..<50) && b.sorted() == Array(0..<50))
        #expect(a != b)
        // Fisher-Yates with uniform indices puts element 0 anywhere: over many seeds it lands in most places.
        let places = Set((0..<400).map { seed -> Int in
            var random = SplitMix64(seed: UInt64(seed))
            return random.permutation(20).firstIndex(of: 0)!
        })
        #expect(places.count == 20)
    }
}
