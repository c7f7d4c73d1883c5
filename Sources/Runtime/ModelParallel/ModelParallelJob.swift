import Basics
import Foundation
import MPI
import Placement
import Tensors

/// What a model-parallel job trains and how it is placed: the same on every rank.
public struct ModelParallelConfiguration: Sendable {
    public var spec: ModelSpec
    public var optimizer: any Optimizer
    public var seed: UInt64
    public var algorithm: Algorithm
    public var memoryBytes: Int
    public var link: LinkModel
    /// A saved profile (the `fedbaechi profile` format) to place instead of profiling now.
    public var profilePath: String?
    /// Timed runs per node when profiling.
    public var profileRepeats: Int
    /// Where rank 0 keeps the plan of a checkpointed run: read from there when it exists (a resumed
    /// run must place each parameter where its checkpoint is), written there otherwise.
    public var planFile: String?

    public init(spec: ModelSpec, optimizer: any Optimizer, seed: UInt64, algorithm: Algorithm, memoryBytes: Int,
                link: LinkModel = ModelParallelPlan.localLink, profilePath: String? = nil, profileRepeats: Int = 3) {
        self.spec = spec
        self.optimizer = optimizer
        self.seed = seed
        self.algorithm = algorithm
        self.memoryBytes = memoryBytes
        self.link = link
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
    /// Rank 0 profiles (or loads) the training graph and places it; every rank returns the same plan.
    /// A failure on rank 0 is broadcast too, so every rank throws the same error instead of waiting.
    ///
    /// `sampleFeeds` (called on rank 0 only) is one batch of the size training will use: shapes and
    /// timings are those of that batch.
    public static func distributePlan(_ configuration: ModelParallelConfiguration, world: Communicator,
                                      sampleFeeds: () throws -> [String: Tensor]) throws -> ModelParallelPlan {
        var message = PlanMessage()
        if world.rank == 0 {
            do {
                if let path = configuration.planFile, FileManager.default.fileExists(atPath: path) {
                    do {
                        message.plan = try JSONDecoder().decode(ModelParallelPlan.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
                    } catch {
                        throw ModelParallelError(.badInput, "\(path) is not a placement plan saved by fedbaechi (expected the JSON a checkpointed model-parallel run writes)")
                    }
                    if message.plan?.rankCount != world.size {
                        throw ModelParallelError(.badInput, "the saved plan \(path) is for \(message.plan?.rankCount ?? 0) ranks, the job has \(world.size)")
                    }
                } else {
                    message.plan = try makePlan(configuration, ranks: world.size, feeds: try sampleFeeds())
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

    /// The plan for `ranks` ranks (no MPI): profile on a throwaway copy of the model, then place.
    public static func makePlan(_ configuration: ModelParallelConfiguration, ranks: Int,
                                feeds: [String: Tensor]) throws -> ModelParallelPlan {
        let c = configuration
        let graph = TrainingGraph(model: c.spec.build(seed: c.seed), optimizer: c.optimizer, seed: c.seed)
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
            // another batch: then this batch's shapes come from one step.
            let fedAsNow = graph.model.feeds.allSatisfy { name, node in
                node < profile.nodes.count && profile.nodes[node].outputShapes?.first == (feeds[name]?.shape ?? [])
            }
            if profile.nodes.count == graph.nodes.count && (profile.outputShapes == nil || !fedAsNow) {
                let shapes = ModelParallelPlan.shapes(of: c.spec, optimizer: c.optimizer, seed: c.seed, feeds: feeds)
                for node in profile.nodes.indices { profile.nodes[node].outputShapes = shapes[node] }
            }
        } else {
            profile = graph.profile(feeds: feeds, repeats: c.profileRepeats)
        }
        return try ModelParallelPlan.make(graph: graph, profile: profile, algorithm: c.algorithm,
                                          ranks: ranks, memoryBytes: c.memoryBytes, link: c.link)
    }
}

/// Every rank's timing and memory over a run, gathered on rank 0.
public struct ModelParallelReport: Sendable {
    public struct RankSummary: Sendable {
        public var rank: Int
        public var nodes: Int
        /// Medians over the measured steps, in seconds.
        public var compute: Double
        public var communicationWait: Double
        public var other: Double
        public var peakBytes: Int
        public var predictedPeakBytes: Int
    }
    public var ranks: [RankSummary]
    /// Median over steps of the slowest rank's step, in seconds.
    public var medianStepSeconds: Double
    public var predictedStepSeconds: Double
    public var memoryLimitBytes: Int

    public var withinMemory: Bool { ranks.allSatisfy { $0.peakBytes <= memoryLimitBytes } }

    /// Gathers each rank's step times (the first step, a warm-up, is left out when there are more)
    /// and peak memory on rank 0; nil on other ranks.
    public static func gather(_ executor: RankExecutor, stepTimes: [RankStepTimes],
                              world: Communicator) throws -> ModelParallelReport? {
        let measured = stepTimes.count > 1 ? Array(stepTimes.dropFirst()) : stepTimes
        let local = RankFigures(compute: median(measured.map(\.compute)), communicationWait: median(measured.map(\.communicationWait)),
                                other: median(measured.map(\.other)), peakBytes: executor.peakBytes)
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
                                   communicationWait: figures.communicationWait, other: figures.other, peakBytes: figures.peakBytes,
                                   predictedPeakBytes: plan.predictedPeakBytes.indices.contains(rank) ? plan.predictedPeakBytes[rank] : 0)
            },
            medianStepSeconds: median(slowest), predictedStepSeconds: plan.predictedMakespanMicros / 1e6,
            memoryLimitBytes: plan.memoryLimitBytes)
    }

    /// A table for people.
    public var table: String {
        func ms(_ seconds: Double) -> String { String(format: "%9.2f", seconds * 1000) }
        var lines = ["rank  nodes  compute (ms)  comm wait (ms)  other (ms)  peak memory  predicted peak",]
        for r in ranks {
            lines.append(String(format: "%4d  %5d", r.rank, r.nodes) + "    " + ms(r.compute) + "       " + ms(r.communicationWait)
                         + "   " + ms(r.other) + "  " + Quantity.formatBytes(r.peakBytes).leftPadded(11)
                         + "  " + Quantity.formatBytes(r.predictedPeakBytes).leftPadded(14))
        }
        let ratio = medianStepSeconds > 0 ? predictedStepSeconds / medianStepSeconds : 0
        lines.append(String(format: "step time: measured %.2f ms (median), predicted %.2f ms (predicted/measured %.2f)",
                            medianStepSeconds * 1000, predictedStepSeconds * 1000, ratio))
        lines.append("memory: peak \(Quantity.formatBytes(ranks.map(\.peakBytes).max() ?? 0)) on one rank, limit "
                     + "\(Quantity.formatBytes(memoryLimitBytes)) per rank: " + (withinMemory ? "within" : "ABOVE the limit"))
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
