import Foundation
import MPI
import Placement
import Runtime
import Tensors
import TestSupport
import Testing

/// Model-parallel training under a real `mpirun`: every step's loss and the final weights equal
/// single-process `TrainingGraph.step` training bit for bit (same kernels, same per-node inputs).
///
/// One test whose scenarios run in a fixed order on every rank (plans are collectives); a thrown
/// error aborts the job instead of leaving ranks waiting.
@Suite(.serialized, .onlyUnderMPILauncher)
struct ModelParallelRankTests {
    static let placers: [Algorithm] = [.mTOPO, .mETF, .mSCT, .expert]
    let batch = 3
    let steps = 2
    let seed: UInt64 = 5

    @Test func trainingEqualsSingleProcess() throws {
        try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        // Every model; the placers rotate with the rank count so that each rank count meets all four.
        // Benchmarks/model-parallel-matrix.sh sets FEDBAECHI_MODEL_PARALLEL_MATRIX=1 for every pair.
        let wholeMatrix = ProcessInfo.processInfo.environment["FEDBAECHI_MODEL_PARALLEL_MATRIX"] == "1"
        for (i, kind) in ModelKind.allCases.enumerated() {
            let algorithms = wholeMatrix ? Self.placers : [Self.placers[(i + world.size) % Self.placers.count]]
            for algorithm in algorithms {
                scenario("\(kind.rawValue) with \(algorithm.rawValue) on \(world.size) ranks", world) {
                    try placedTraining(tinySpec(kind), algorithm: algorithm, world: world)
                    if wholeMatrix && world.rank == 0 { print("matrix: \(kind.rawValue) \(algorithm.rawValue) \(world.size) ranks: compared with single-process training") }
                }
            }
        }
        scenario("everything on rank 0; the other ranks own no op", world) { try everythingOnRankZero(world) }
        scenario("the last rank owns no op", world) { try idleLastRank(world) }
        scenario("a memory limit forces a split", world) { try memoryForcesSplit(world) }
    }

    func scenario(_ name: String, _ world: Communicator, _ body: () throws -> Void) {
        do {
            try body()
            try world.barrier()
        } catch {
            MPIEnvironment.abort(code: 70, message: "scenario '\(name)' threw: \(error)")
        }
    }

    func optimizer() -> any Optimizer { Adam(learningRate: 0.01) }

    func feeds(_ spec: ModelSpec) -> [String: Tensor] {
        syntheticFeeds(spec.build(seed: seed), batch: batch, index: 0, seed: seed, tokens: spec.steps)
    }

    /// Trains with `plan` and checks losses and weights against single-process training on rank 0.
    @discardableResult
    func check(_ spec: ModelSpec, plan: ModelParallelPlan, world: Communicator, label: String) throws -> RankExecutor {
        let run = try modelParallelTraining(spec, optimizer: optimizer(), seed: seed, batch: batch, steps: steps,
                                            plan: plan, world: world)
        if world.rank == 0 {
            let reference = referenceTraining(spec, optimizer: optimizer(), seed: seed, batch: batch, steps: steps)
            #expect(run.losses.map(\.bitPattern) == reference.losses.map(\.bitPattern),
                    "\(label): losses \(run.losses) vs single-process \(reference.losses)")
            #expect(run.losses.allSatisfy { $0.isFinite }, "\(label)")
            let difference = run.weights.flatMap { firstDifference($0, reference.weights) }
            #expect(difference == nil, "\(label): final weights differ at \(difference ?? "")")
            // The scoring pass, run across the ranks, gives the single process's logits and loss bit for bit.
            #expect(run.evaluations.count == reference.evaluations.count, "\(label)")
            for (mine, theirs) in zip(run.evaluations, reference.evaluations) {
                #expect(mine.logits.shape == theirs[0].shape && mine.logits.data.map(\.bitPattern) == theirs[0].data.map(\.bitPattern),
                        "\(label): evaluation logits differ")
                #expect(mine.loss.bitPattern == theirs[1].data[0].bitPattern, "\(label): evaluation loss \(mine.loss) vs \(theirs[1].data[0])")
            }
        }
        // Each rank holds exactly the parameters whose read it runs, and together they hold each once.
        let graph = run.executor.graph
        let owned = Set(graph.nodes.indices.compactMap { index -> String? in
            guard case .read(let name) = graph.nodes[index].action, plan.rankOfNode[index] == world.rank else { return nil }
            return name
        })
        #expect(Set(graph.model.parameters.names) == owned, "\(label): rank \(world.rank) holds other parameters than it owns")
        let held = try world.allreduce(graph.model.parameters.count, .sum)
        #expect(held == graph.model.parameters.declaredCount, "\(label): the ranks hold \(held) values of \(graph.model.parameters.declaredCount)")
        return run.executor
    }

    func placedTraining(_ spec: ModelSpec, algorithm: Algorithm, world: Communicator) throws {
        let configuration = ModelParallelConfiguration(spec: spec, optimizer: optimizer(), seed: seed, algorithm: algorithm,
                                                       memoryBytes: 1 << 30, profileRepeats: 1)
        let plan = try ModelParallelJob.distributePlan(configuration, world: world, feeds: feeds(spec))
        try check(spec, plan: plan, world: world, label: "\(spec.kind.rawValue) \(algorithm.rawValue)")
    }

    func everythingOnRankZero(_ world: Communicator) throws {
        let spec = tinySpec(.lenet)
        let graph = TrainingGraph(model: spec.build(seed: seed), optimizer: optimizer(), seed: seed)
        let shapes = executedShapes(of: spec, optimizer: optimizer(), seed: seed, feeds: feeds(spec))
        let plan = ModelParallelPlan.allOn(rank: 0, of: world.size, graph: graph, shapes: shapes)
        let executor = try check(spec, plan: plan, world: world, label: "all on rank 0")
        if world.rank != 0 {
            #expect(executor.persistentBytes == 0, "rank \(world.rank) holds no parameters")
            #expect(executor.peakBytes == 0, "rank \(world.rank) holds nothing")
            #expect(executor.neededFeeds.isEmpty)
        }
    }

    /// A plan made for one rank fewer, run with one more rank that has nothing to do.
    func idleLastRank(_ world: Communicator) throws {
        guard world.size >= 2 else { return }
        let spec = tinySpec(.gruLM)
        var plan = ModelParallelPlan.allOn(rank: 0, of: 1, graph: TrainingGraph(model: spec.build(seed: seed), optimizer: optimizer()),
                                           shapes: [])
        if world.rank == 0 {
            let configuration = ModelParallelConfiguration(spec: spec, optimizer: optimizer(), seed: seed, algorithm: .mETF,
                                                           memoryBytes: 1 << 30, profileRepeats: 1)
            plan = try ModelParallelJob.makePlan(configuration, ranks: world.size - 1, feeds: feeds(spec))
            plan.rankCount = world.size
            plan.order.append([])
            plan.predictedPeakBytes.append(0)
        }
        plan = try ModelParallelPlan.decode(try world.broadcastBytes(world.rank == 0 ? try plan.json() : [], root: 0))
        let executor = try check(spec, plan: plan, world: world, label: "idle last rank")
        if world.rank == world.size - 1 { #expect(executor.persistentBytes == 0 && executor.peakBytes == 0) }
    }

    /// A per-rank limit below what one rank needs: the plan spreads the model over several ranks,
    /// training still equals single-process training, and each rank's measured peak stays within
    /// the limit.
    func memoryForcesSplit(_ world: Communicator) throws {
        guard world.size >= 2 else { return }
        let configuration = ModelParallelConfiguration(spec: splitSpec, optimizer: optimizer(), seed: seed, algorithm: .mETF,
                                                       memoryBytes: 1 << 30, profileRepeats: 1)
        var bytes: [UInt8] = []
        if world.rank == 0 {
            guard let plan = try splitPlan(configuration, ranks: world.size, feeds: feeds(splitSpec)) else {
                throw ModelParallelError(.noPlanFits, "no limit below one rank's need gives a plan")
            }
            bytes = try plan.json()
        }
        let plan = try ModelParallelPlan.decode(try world.broadcastBytes(bytes, root: 0))
        #expect(plan.order.filter { !$0.isEmpty }.count >= 2, "the model is split")
        let executor = try check(splitSpec, plan: plan, world: world, label: "memory-limited split")
        #expect(executor.peakBytes <= plan.memoryLimitBytes,
                "rank \(world.rank) peak \(executor.peakBytes) above the limit \(plan.memoryLimitBytes) (predicted \(plan.predictedPeakBytes[world.rank]))")
    }
}
