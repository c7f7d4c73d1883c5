import Basics
import Foundation
import MPI
import Placement
import Tensors

/// What a model-parallel job trains and how it is placed: the same on every rank.
public struct ModelParallelConfiguration: Sendable {
    public var spec: any ModelRecipe
    public var optimizer: any Optimizer
    public var seed: UInt64
    public var algorithm: Algorithm
    public var memoryBytes: Int
    /// The links between ranks the plan is made for (rank i is device i).
    public var links: Links
    /// A saved profile (the `fedbaechi profile` format) to place instead of profiling now.
    public var profilePath: String?
    /// Timed runs per node when profiling.
    public var profileRepeats: Int
    /// Where rank 0 keeps the plan of a checkpointed run: read from there when it exists (a resumed
    /// run must place each parameter where its checkpoint is), written there otherwise.
    public var planFile: String?

    public init(spec: any ModelRecipe, optimizer: any Optimizer, seed: UInt64, algorithm: Algorithm, memoryBytes: Int,
                links: Links = Links(ModelParallelPlan.localLink), profilePath: String? = nil, profileRepeats: Int = 3) {
        self.spec = spec
        self.optimizer = optimizer
        self.seed = seed
        self.algorithm = algorithm
        self.memoryBytes = memoryBytes
        self.links = links
        self.profilePath = profilePath
        self.profileRepeats = profileRepeats
    }
}

/// Rank 0's answer to "what is the plan": the plan, or why there is none.
private struct PlanMessage: Codable {
    var plan: ModelParallelPlan?
    var failure: String?
    var noPlanFits = false
}

public enum ModelParallelJob {
    /// Every rank returns the same plan. Unless a saved plan (a resumed run) or a saved profile is
    /// used, the ranks profile the training graph together: each infers every shape, times its share
    /// of the ops on synthetic inputs (`OperatorProfiler`), and rank 0 gathers the times, places the
    /// graph and broadcasts the plan. A failure on rank 0 is broadcast too, so every rank throws the
    /// same error instead of waiting.
    ///
    /// `feeds` is one batch of the size training will use (synthetic is enough): shapes and timings
    /// are those of that batch.
    public static func distributePlan(_ configuration: ModelParallelConfiguration, world: Communicator,
                                      feeds: [String: Tensor]) throws -> ModelParallelPlan {
        var message = PlanMessage()
        var saved: ModelParallelPlan?
        if world.rank == 0, let path = configuration.planFile, FileManager.default.fileExists(atPath: path) {
            do {
                saved = try JSONDecoder().decode(ModelParallelPlan.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
                if saved?.rankCount != world.size {
                    message.failure = "the saved plan \(path) is for \(saved?.rankCount ?? 0) ranks, the job has \(world.size)"
                }
            } catch {
                message.failure = "\(path) is not a placement plan saved by fedbaechi (expected the JSON a checkpointed model-parallel run writes)"
            }
        }
        // Whether the ranks profile together: rank 0 alone knows of a saved plan.
        var profilesTogether = [saved == nil && message.failure == nil && configuration.profilePath == nil ? 1 : 0]
        try world.broadcast(&profilesTogether, root: 0)
        let profiles = profilesTogether[0] == 1
        var measured: (microseconds: [Double], seconds: Double)?
        if profiles {
            let graph = TrainingGraph(model: configuration.spec.build(seed: configuration.seed, holding: .none),
                                      optimizer: configuration.optimizer, seed: configuration.seed)
            // Inference is deterministic: every rank meets the same shape error, if any.
            let shapes = try graph.inferShapes(feeds: feeds.mapValues(\.shape))
            let profiler = OperatorProfiler(graph: graph, shapes: shapes, feeds: feeds, repeats: configuration.profileRepeats)
            measured = try SharedProfiling.time(profiler, world: world)
        }
        if world.rank == 0 && message.failure == nil {
            do {
                if let saved {
                    message.plan = saved
                } else {
                    message.plan = try makePlan(configuration, ranks: world.size, feeds: feeds, measured: measured?.microseconds)
                    message.plan?.profilingSeconds = measured?.seconds
                    message.plan?.profilingRanks = measured == nil ? nil : world.size
                    if let path = configuration.planFile {
                        try JSONEncoder().encode(message.plan).write(to: URL(fileURLWithPath: path), options: .atomic)
                    }
                }
            } catch let error as ModelParallelError {
                message.failure = error.description
                message.noPlanFits = error.kind == .noPlanFits
            } catch {
                message.failure = "\(error)"
            }
        }
        let bytes = try world.broadcastBytes(world.rank == 0 ? Array(try JSONEncoder().encode(message)) : [], root: 0)
        let received = try JSONDecoder().decode(PlanMessage.self, from: Data(bytes))
        if let failure = received.failure { throw ModelParallelError(received.noPlanFits ? .noPlanFits : .badInput, failure) }
        guard let plan = received.plan else { throw ModelParallelError(.runtime, "rank 0 sent no plan") }
        return plan
    }

    /// The plan for `ranks` ranks (no MPI), from a saved profile or from one measured now op by op
    /// (`measured`: node times already taken by the ranks of a job). Shapes come by inference.
    public static func makePlan(_ configuration: ModelParallelConfiguration, ranks: Int,
                                feeds: [String: Tensor], measured: [Double]? = nil) throws -> ModelParallelPlan {
        let c = configuration
        let graph = TrainingGraph(model: c.spec.build(seed: c.seed, holding: .none), optimizer: c.optimizer, seed: c.seed)
        let shapes: [[[Int]]]
        do { shapes = try graph.inferShapes(feeds: feeds.mapValues(\.shape)) } catch {
            throw ModelParallelError(.badInput, "model \(c.spec.name): \(error)")
        }
        var profile: TrainingProfile
        if let path = c.profilePath {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            guard size <= GraphLimits.maximumFileBytes else {
                throw ModelParallelError(.badInput, "the profile \(path) is \(Quantity.formatBytes(size)), more than the \(Quantity.formatBytes(GraphLimits.maximumFileBytes)) fedbaechi reads")
            }
            do {
                profile = try JSONDecoder().decode(TrainingProfile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw ModelParallelError(.badInput, FileProblem.describe(error, path: path, expected: "a profile written by `fedbaechi profile`, in JSON"))
            }
            // A saved profile may have no shapes (saved before they were recorded) or shapes of
            // another batch: the shapes of this batch are inferred.
            if profile.nodes.count == graph.nodes.count {
                for node in profile.nodes.indices { profile.nodes[node].outputShapes = shapes[node] }
            }
        } else {
            let profiler = OperatorProfiler(graph: graph, shapes: shapes, feeds: feeds, repeats: c.profileRepeats)
            profile = graph.profile(shapes: shapes, microseconds: measured ?? profiler.time(profiler.units))
        }
        return try ModelParallelPlan.make(graph: graph, profile: profile, algorithm: c.algorithm,
                                          ranks: ranks, memoryBytes: c.memoryBytes, links: c.links, searchSeed: c.seed)
    }
}

/// Every rank's timing and memory over a run, gathered on rank 0.
public struct ModelParallelReport: Sendable {
    public struct RankSummary: Sendable {
        public var rank: Int
        public var nodes: Int
        /// Medians over the measured steps, in seconds.
        public var compute: Double
        /// The simulator's compute time of the rank per step, in seconds (nil: the plan has none).
        public var predictedCompute: Double?
        public var communicationWait: Double
        public var other: Double
        /// The peak the executor counted (tensors, messages, scratch), as the plan predicts it.
        public var peakBytes: Int
        public var predictedPeakBytes: Int
        /// The peak resident memory the operating system reports, and the resident memory at start
        /// (runtime, MPI and libraries, before any model or data).
        public var peakResidentBytes: Int
        public var startResidentBytes: Int
        /// Examples the rank holds.
        public var dataBytes: Int
    }
    public var ranks: [RankSummary]
    /// Median over steps of the slowest rank's step, in seconds.
    public var medianStepSeconds: Double
    public var predictedStepSeconds: Double
    public var memoryLimitBytes: Int

    public var withinMemory: Bool { ranks.allSatisfy { $0.peakBytes <= memoryLimitBytes } }
    /// Whether every rank's measured peak stays within its limit plus the documented fixed overhead.
    public var residentWithinLimit: Bool {
        ranks.allSatisfy { $0.peakResidentBytes <= memoryLimitBytes + ResidentMemory.fixedOverheadBytes }
    }

    /// Gathers each rank's step times (the first step, a warm-up, is left out when there are more)
    /// and memory on rank 0; nil on other ranks.
    public static func gather(_ executor: RankExecutor, stepTimes: [RankStepTimes], startResidentBytes: Int, dataBytes: Int,
                              world: Communicator) throws -> ModelParallelReport? {
        let measured = stepTimes.count > 1 ? Array(stepTimes.dropFirst()) : stepTimes
        let local = RankFigures(compute: median(measured.map(\.compute)), communicationWait: median(measured.map(\.communicationWait)),
                                other: median(measured.map(\.other)), peakBytes: executor.peakBytes,
                                peakResidentBytes: ResidentMemory.peakBytes ?? 0, startResidentBytes: startResidentBytes,
                                dataBytes: dataBytes)
        let steps = measured.map(\.step)
        let perRank = try world.gatherv(local.packed, root: 0)
        let allSteps = try world.gatherv(steps, root: 0)
        guard let perRank, let allSteps else { return nil }
        let plan = executor.plan
        let slowest = steps.indices.map { s in allSteps.map { $0.indices.contains(s) ? $0[s] : 0 }.max() ?? 0 }
        return ModelParallelReport(
            ranks: try perRank.enumerated().map { rank, packed in
                let figures = try RankFigures(rank: rank, packed: packed)
                return RankSummary(rank: rank, nodes: plan.order[rank].count, compute: figures.compute,
                                   predictedCompute: plan.predictedComputeMicros.flatMap { $0.indices.contains(rank) ? $0[rank] / 1e6 : nil },
                                   communicationWait: figures.communicationWait, other: figures.other, peakBytes: figures.peakBytes,
                                   predictedPeakBytes: plan.predictedPeakBytes.indices.contains(rank) ? plan.predictedPeakBytes[rank] : 0,
                                   peakResidentBytes: figures.peakResidentBytes, startResidentBytes: figures.startResidentBytes,
                                   dataBytes: figures.dataBytes)
            },
            medianStepSeconds: median(slowest), predictedStepSeconds: plan.predictedMakespanMicros / 1e6,
            memoryLimitBytes: plan.memoryLimitBytes)
    }

    /// A table for people.
    public var table: String {
        func ms(_ seconds: Double) -> String { String(format: "%9.2f", seconds * 1000) }
        func mib(_ bytes: Int) -> String { Quantity.formatBytes(bytes).leftPadded(11) }
        var lines = ["rank  nodes  compute (ms)  predicted  comm wait (ms)  other (ms)  predicted peak  counted peak  RSS at start  peak RSS       data",]
        for r in ranks {
            lines.append(String(format: "%4d  %5d", r.rank, r.nodes) + "    " + ms(r.compute) + "  " + (r.predictedCompute.map(ms) ?? "        -")
                         + "       " + ms(r.communicationWait)
                         + "   " + ms(r.other) + "     " + mib(r.predictedPeakBytes) + "   " + mib(r.peakBytes)
                         + "   " + mib(r.startResidentBytes) + mib(r.peakResidentBytes) + mib(r.dataBytes))
        }
        let ratio = medianStepSeconds > 0 ? predictedStepSeconds / medianStepSeconds : 0
        lines.append(String(format: "step time: measured %.2f ms (median), predicted %.2f ms (predicted/measured %.2f)",
                            medianStepSeconds * 1000, predictedStepSeconds * 1000, ratio))
        lines.append("memory: counted peak \(Quantity.formatBytes(ranks.map(\.peakBytes).max() ?? 0)) on one rank, limit "
                     + "\(Quantity.formatBytes(memoryLimitBytes)) per rank: " + (withinMemory ? "within" : "ABOVE the limit"))
        lines.append("resident: peak \(Quantity.formatBytes(ranks.map(\.peakResidentBytes).max() ?? 0)) on one rank, limit plus the "
                     + "fixed overhead \(Quantity.formatBytes(memoryLimitBytes + ResidentMemory.fixedOverheadBytes)): "
                     + (residentWithinLimit ? "within" : "ABOVE"))
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
