import Basics
import Federated
import Foundation
import Runtime
import Testing
import Tensors

/// What the training drivers decide for every caller, the command line or a program using Runtime.
@Suite struct DriverTests {
    /// One batching rule: equal batches, the last partial one left out, every example at most once an epoch.
    @Test(arguments: [(60_000, 128), (100, 7), (5, 8), (1, 1), (64, 64)])
    func batchingCutsEqualStepsFromASeededOrder(examples: Int, batchSize: Int) {
        let batching = Batching(examples: examples, batchSize: batchSize)
        #expect(batching.batchSize == min(batchSize, examples))
        #expect(batching.stepsPerEpoch == examples / batching.batchSize)
        let order = batching.order(epoch: 3, seed: 7)
        #expect(order.sorted() == Array(0..<examples))
        #expect(order == batching.order(epoch: 3, seed: 7) && (examples < 8 || order != batching.order(epoch: 4, seed: 7)))
        var seen = Set<Int>()
        for index in 0..<batching.stepsPerEpoch {
            let batch = batching.batch(index, of: order)
            #expect(batch.count == batching.batchSize)
            seen.formUnion(batch)
        }
        #expect(seen.count == batching.stepsPerEpoch * batching.batchSize)
        let last = batching.stepsPerEpoch * 2 + 1
        #expect(batching.position(ofStep: last) == (epoch: 3, index: 1) || batching.stepsPerEpoch == 1)
    }

    /// A run of N local steps continues where the previous one stopped: two rounds of 3 steps take the
    /// same batches, and end with the same weights bit for bit, as one run of 6.
    @Test func localStepsContinueThroughTheEpochs() throws {
        var spec = ModelSpec(kind: .mlp)
        spec.hidden = [16]
        let examples = syntheticExamples(for: spec.build(seed: 1), count: 40, steps: 1, seed: 5)
        let batching = Batching(examples: examples.count, batchSize: 16)  // 2 steps per epoch
        let once = Trainer(model: spec.build(seed: 1), optimizer: OptimizerKind.adam.make(learningRate: 0.01), seed: 9)
        _ = once.train(examples, batching: batching, count: 6)
        let twice = Trainer(model: spec.build(seed: 1), optimizer: OptimizerKind.adam.make(learningRate: 0.01), seed: 9)
        _ = twice.train(examples, batching: batching, count: 3)
        _ = twice.train(examples, batching: batching, count: 3)
        let epochs = Trainer(model: spec.build(seed: 1), optimizer: OptimizerKind.adam.make(learningRate: 0.01), seed: 9)
        for epoch in 1...3 { epochs.trainEpoch(examples, batchSize: 16, epoch: epoch) }
        for name in once.model.parameters.names {
            let reference = once.model.parameters.values(of: name)!.map(\.bitPattern)
            #expect(twice.model.parameters.values(of: name)!.map(\.bitPattern) == reference, "\(name)")
            #expect(epochs.model.parameters.values(of: name)!.map(\.bitPattern) == reference, "\(name)")
        }
        #expect(once.steps == 6 && twice.steps == 6 && epochs.steps == 6)
    }

    /// The audit's rule belongs to the federated driver: a schedule it flags is refused with exit status 2
    /// unless the caller allows it, whoever calls.
    @Test func theFederatedDriverRefusesALeakySchedule() throws {
        // Two colluding members of a group of three learn the third's model from any group sum.
        let pairs = FederatedSettings(iterations: 7, collusion: 2)
        do {
            let choice = try FederatedDriver.schedule(pairs, sites: 9, model: .lenet, seed: 1)
            Issue.record("a schedule that coalitions of two see through was chosen: \(choice.audit.leaks.count) leaks")
        } catch let error as any UserFacingError {
            #expect(error.exitStatus == .badInput)
            #expect(error.description.contains("the privacy audit flags every schedule of 7 iterations"), "\(error)")
        }
        var allowed = pairs
        allowed.allowLeaky = true
        #expect(!(try FederatedDriver.schedule(allowed, sites: 9, model: .lenet, seed: 1)).audit.leakFree)
        #expect(try FederatedDriver.schedule(FederatedSettings(), sites: 9, model: .lenet, seed: 1).audit.leakFree)
    }
}
