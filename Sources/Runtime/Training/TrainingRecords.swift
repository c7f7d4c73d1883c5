import Foundation

/// The records of a metrics file, one JSON object per line, told apart by `kind`: what `fedbaechi report`
/// and a user's scripts read.

/// One line of the metrics file: an epoch's losses and test score.
public struct EpochRecord: Codable, Sendable {
    /// What kind of record a line is, so that a reader tells them apart: "epoch", "round" or "summary".
    public var kind = "epoch"
    public var epoch: Int
    public var model: String
    public var dataset: String
    public var seed: UInt64
    public var optimizer: String
    public var learningRate: Float
    public var batchSize: Int
    public var trainExamples: Int
    public var trainLoss: Double
    public var testLoss: Double
    public var testAccuracy: Double?
    public var testPerplexity: Double?
    public var trainSeconds: Double
    /// Training steps since the start.
    public var steps: Int

    enum CodingKeys: String, CodingKey {
        case kind, epoch, model, dataset, seed, optimizer, steps
        case learningRate = "learning_rate", batchSize = "batch_size", trainExamples = "train_examples"
        case trainLoss = "train_loss", testLoss = "test_loss", testAccuracy = "test_accuracy"
        case testPerplexity = "test_perplexity", trainSeconds = "train_seconds"
    }
}

/// One line of the metrics file every `--log-every` training steps: the step (counted from the run's
/// start, 1-based) and its batch's loss. Federated runs write site 0's local steps, with the round.
public struct StepRecord: Codable, Sendable {
    public var kind = "step"
    public var step: Int
    public var epoch: Int?
    public var round: Int?
    public var loss: Double

    public init(step: Int, epoch: Int? = nil, round: Int? = nil, loss: Double) {
        self.step = step
        self.epoch = epoch
        self.round = round
        self.loss = loss
    }
}

/// One line of the metrics file per round.
public struct FederatedRoundRecord: Codable, Sendable {
    public var kind = "round"
    public var mode = "federated"
    public var round: Int
    public var rounds: Int
    public var model: String
    public var dataset: String
    public var aggregation: String
    public var masked: Bool
    public var iterations: Int?
    public var sites: Int
    public var partition: String
    public var seed: UInt64
    public var globalLoss: Double
    public var globalAccuracy: Double?
    public var globalPerplexity: Double?
    public var aggregationError: Double?
    public var exactAggregationError: Double?
    public var predictedAggregationError: Double?
    public var collusion: Int?
    public var dualRange: Double?
    public var secrets: String?
    public var seconds: Double
    public var localSecondsMax: Double
    public var aggregationSecondsMax: Double
    public var bytesSentMax: Int
    public var perSite: [SiteRoundStats]

    enum CodingKeys: String, CodingKey {
        case kind, mode, round, rounds, model, dataset, aggregation, masked, iterations, sites, partition, seed, seconds
        case globalLoss = "global_loss", globalAccuracy = "global_accuracy", globalPerplexity = "global_perplexity"
        case aggregationError = "aggregation_error", exactAggregationError = "exact_aggregation_error"
        case predictedAggregationError = "predicted_aggregation_error", collusion, dualRange = "dual_range", secrets
        case localSecondsMax = "local_seconds_max"
        case aggregationSecondsMax = "aggregation_seconds_max", bytesSentMax = "bytes_sent_max", perSite = "per_site"
    }
}

/// Summary of a model-parallel run: one more line of the metrics file, after the epochs.
public struct ModelParallelRecord: Codable, Sendable {
    public struct Rank: Codable, Sendable {
        public var rank: Int
        public var nodes: Int
        public var computeMs: Double
        /// The simulator's compute time of the rank per step (absent when the plan has none).
        public var predictedComputeMs: Double?
        public var communicationWaitMs: Double
        public var otherMs: Double
        public var peakBytes: Int
        public var predictedPeakBytes: Int
        /// The operating system's figures: peak resident memory, and resident memory at start.
        public var peakRSSBytes: Int
        public var startRSSBytes: Int
        public var dataBytes: Int

        enum CodingKeys: String, CodingKey {
            case rank, nodes
            case computeMs = "compute_ms", predictedComputeMs = "predicted_compute_ms", communicationWaitMs = "communication_wait_ms", otherMs = "other_ms"
            case peakBytes = "peak_bytes", predictedPeakBytes = "predicted_peak_bytes"
            case peakRSSBytes = "peak_rss_bytes", startRSSBytes = "start_rss_bytes", dataBytes = "data_bytes"
        }
    }
    public var kind = "summary"
    public var mode = "model-parallel"
    public var model: String
    public var algorithm: String
    public var ranks: Int
    public var steps: Int
    public var medianStepMs: Double
    public var predictedStepMs: Double
    public var memoryLimitBytes: Int
    public var withinMemory: Bool
    public var placementSeconds: Double
    /// Wall time of the job's shared profiling and the ranks that shared it (nil: a saved profile or plan).
    public var profilingSeconds: Double?
    public var profilingRanks: Int?
    /// The documented fixed overhead of a rank, and whether every rank's peak resident memory stayed
    /// within its limit plus it.
    public var fixedOverheadBytes: Int
    public var residentWithinLimit: Bool
    public var perRank: [Rank]

    enum CodingKeys: String, CodingKey {
        case kind, mode, model, algorithm, ranks, steps
        case medianStepMs = "median_step_ms", predictedStepMs = "predicted_step_ms", memoryLimitBytes = "memory_limit_bytes"
        case withinMemory = "within_memory", placementSeconds = "placement_seconds", perRank = "per_rank"
        case profilingSeconds = "profiling_seconds", profilingRanks = "profiling_ranks"
        case fixedOverheadBytes = "fixed_overhead_bytes", residentWithinLimit = "resident_within_limit"
    }
}
