import Basics
import MPI
import Tensors

/// Profiling a training graph with the ranks of a job sharing the work: each rank times its share of
/// the ops (`OperatorProfiler.share`) on synthetic inputs, holding one op's tensors at a time, and
/// rank 0 gathers the times.
public enum SharedProfiling {
    /// Every node's time on rank 0 (nil elsewhere), and the wall time the ranks took together.
    static func time(_ profiler: OperatorProfiler, world: Communicator) throws -> (microseconds: [Double], seconds: Double)? {
        let started = MPIEnvironment.wallTime()
        let mine = profiler.time(profiler.share(rank: world.rank, of: world.size))
        let gathered = try world.gatherv(mine, root: 0)
        let seconds = try world.allreduce(MPIEnvironment.wallTime() - started, .max)
        guard let gathered else { return nil }
        // Each node was timed by one rank; the others sent 0 for it.
        return ((0..<profiler.graph.nodes.count).map { node in gathered.reduce(0) { $0 + $1[node] } }, seconds)
    }

    /// How `fedbaechi profile` measures.
    public enum Method: String, Sendable, CaseIterable {
        /// Op by op on synthetic inputs, shared among the job's ranks: never holds the model whole.
        case operators = "ops"
        /// One whole training step, then every node on that step's values (one process holds everything).
        case wholeStep = "whole-step"
    }

    /// The profile of a zoo model at `batch` examples per step on rank 0 (nil on other ranks), with the
    /// seconds it took and the ranks that shared it. Run alone it is a job of one rank.
    public static func profile(spec: any ModelRecipe, optimizer: any Optimizer, seed: UInt64, batch: Int, repeats: Int,
                               method: Method) throws -> (profile: TrainingProfile, seconds: Double, ranks: Int)? {
        _ = try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        let holding: ParameterHolding = method == .wholeStep && world.rank == 0 ? .all : .none
        let graph = TrainingGraph(model: spec.build(seed: seed, holding: holding), optimizer: optimizer, seed: seed)
        let examples = syntheticExamples(for: graph.model, count: batch, steps: spec.steps, seed: seed)
        let feeds = graph.model.feeds(examples, 0..<batch)
        switch method {
        case .wholeStep:
            guard world.rank == 0 else { return nil }
            let started = MPIEnvironment.wallTime()
            let profile = graph.wholeStepProfile(feeds: feeds, repeats: repeats)
            return (profile, MPIEnvironment.wallTime() - started, 1)
        case .operators:
            let shapes = try graph.inferShapes(feeds: feeds.mapValues(\.shape))
            let profiler = OperatorProfiler(graph: graph, shapes: shapes, feeds: feeds, repeats: repeats)
            guard let (microseconds, seconds) = try time(profiler, world: world) else { return nil }
            return (graph.profile(shapes: shapes, microseconds: microseconds), seconds, world.size)
        }
    }
}
