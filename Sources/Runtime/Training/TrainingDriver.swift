import Basics
import Foundation
import MPI
import Tensors

/// A way of running training: one process, the ranks of a model-parallel job, or federated sites.
///
/// A driver owns its whole run: data, the loop, evaluation, checkpoints and resume, metrics records, the
/// agreement of ranks on failures and on signals. The command line builds one from its flags and calls
/// `run`; a program using Runtime directly gets the same behaviour, refusals included.
public protocol TrainingDriver {
    /// Trains to the configured length (or says there is nothing to do). Collective over the job's ranks.
    /// Throws a `UserFacingError`; `JobFailure` says whether every rank met it.
    func run() throws
}

/// What every mode trains and how: the model, its data, the optimizer, the length, the outputs.
public struct TrainingSettings: Sendable {
    public var model: ModelKind
    /// Folder holding the dataset (nil: where its Debian package installs it).
    public var dataDirectory: String?
    public var seed: UInt64
    /// Examples per step (nil: the model's default).
    public var batchSize: Int?
    public var optimizer: OptimizerKind
    /// Step size (nil: the optimizer's default).
    public var learningRate: Float?
    /// Train on only the first N training examples.
    public var limitTrain: Int?
    /// Score on only the first N test examples.
    public var limitTest: Int?
    /// Where rank 0 writes one JSON record per epoch (round) and a summary.
    public var metricsPath: String?
    public var checkpoints: CheckpointSettings?
    /// mlp: widths of the hidden layers (nil: the zoo's).
    public var hidden: [Int]?
    /// A model read from a file, trained on the user's data instead of the zoo model `model`.
    public var file: ModelFile?
    /// Batches in a seeded order each epoch (the default), or in file order.
    public var shuffle = true
    /// Write a metrics record with the step and its loss every N training steps (nil: none).
    public var logEvery: Int?

    public init(model: ModelKind, dataDirectory: String? = nil, seed: UInt64 = 1, batchSize: Int? = nil,
                optimizer: OptimizerKind = .adam, learningRate: Float? = nil, limitTrain: Int? = nil, limitTest: Int? = nil,
                metricsPath: String? = nil, checkpoints: CheckpointSettings? = nil) {
        self.model = model
        self.dataDirectory = dataDirectory
        self.seed = seed
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.limitTrain = limitTrain
        self.limitTest = limitTest
        self.metricsPath = metricsPath
        self.checkpoints = checkpoints
    }

    public var dataset: KnownDataset { model.dataset }
    /// Examples per step: the flag, else the zoo model's default, else 32 for a model file.
    public var chosenBatchSize: Int { batchSize ?? (file == nil ? model.defaultBatchSize : 32) }
    /// The model's name in reports: the zoo model's, or the file's.
    public var modelName: String { file?.model.name ?? model.rawValue }
    /// The data's name in reports: the dataset's, or the training file's.
    public var datasetName: String { file.map { ($0.trainData ?? $0.siteData ?? "").split(separator: "/").last.map(String.init) ?? "" } ?? dataset.rawValue }

    /// What this run trains: the file's model, or the zoo model with these sizes.
    public func recipe(_ spec: ModelSpec) -> any ModelRecipe { file?.model ?? spec }

    /// The zoo model this run trains, with the sizes asked for.
    public func modelSpec() -> ModelSpec {
        var spec = ModelSpec(kind: model)
        if let hidden { spec.hidden = hidden }
        return spec
    }
    public var chosenLearningRate: Float { learningRate ?? optimizer.defaultLearningRate }

    /// What makes two runs the same run (`RunIdentity`): a checkpoint is resumed only by the same values.
    func identity(mode: String, extra: [String: String]) -> RunIdentity {
        var values = [
            "mode": mode, "model": file?.path ?? model.rawValue, "dataset": file == nil ? dataset.rawValue : datasetName, "seed": "\(seed)",
            "optimizer": optimizer.rawValue, "learning_rate": "\(chosenLearningRate)", "batch_size": "\(chosenBatchSize)",
            "limit_train": limitTrain.map(String.init) ?? "all",
        ]
        if let hidden { values["hidden"] = hidden.map(String.init).joined(separator: ",") }
        if !shuffle { values["shuffle"] = "no" }
        values.merge(extra) { $1 }
        return RunIdentity(values)
    }
}

/// How long a single-process or model-parallel run trains.
public enum TrainingLength: Sendable, Equatable {
    case epochs(Int)
    /// Steps of one batch each, through as many epochs as they take (the last one partial).
    case steps(Int)

    /// Total steps and epochs for `stepsPerEpoch`.
    func plan(stepsPerEpoch: Int) -> (steps: Int, epochs: Int) {
        switch self {
        case .epochs(let epochs): (epochs * stepsPerEpoch, epochs)
        case .steps(let steps): (steps, (steps + stepsPerEpoch - 1) / max(1, stepsPerEpoch))
        }
    }
}

/// `--checkpoint-dir` and its companions: the same for every mode.
public struct CheckpointSettings: Sendable {
    public var directory: String
    /// Every N steps (rounds, federated); nil: the mode's default (100 steps, 1 round).
    public var every: Int?
    public var resume: Bool
    public var overwrite: Bool

    public init(directory: String, every: Int? = nil, resume: Bool = false, overwrite: Bool = false) {
        self.directory = directory
        self.every = every
        self.resume = resume
        self.overwrite = overwrite
    }

    /// Whether a checkpoint is due after `position` of `total`.
    func due(_ position: Int, of total: Int, defaultEvery: Int) -> Bool {
        position % (every ?? defaultEvery) == 0 || position == total
    }
}

/// Where a driver's words go: the command line prints them; a program can collect or drop them.
///
/// Drivers call it only on the ranks that should speak (rank 0, or every site for its own lines).
public protocol TrainingReporter: AnyObject, Sendable {
    /// A line for a person, on standard output.
    func say(_ line: String)
    /// A remark that is not the run's output (files passed over, a checkpoint directory's notes), on stderr.
    func note(_ line: String)
    /// A step of an epoch is done (rank 0).
    func progress(_ progress: StepProgress)
}

/// Where an epoch stands, for a progress bar.
public struct StepProgress: Sendable {
    public var epoch: Int
    /// Steps of this epoch done, and its total.
    public var step: Int
    public var stepsInEpoch: Int
    /// Steps of the run after this epoch (for the time left in the run).
    public var stepsAfterEpoch: Int
    public var examplesPerStep: Int
    public var loss: Float
}

/// A failure that ends a job, and whether every rank met it.
///
/// When every rank met the same failure (a flag, the plan, the checkpoint directory's verdict), rank 0
/// says it once and all exit alike; when only this rank did (a file this node cannot read), this rank
/// ends the job with its own message so the others never wait for it.
public struct JobFailure: UserFacingError {
    public let description: String
    public let exitStatus: ExitStatus
    public let everyRank: Bool

    public init(_ error: any UserFacingError, everyRank: Bool) {
        description = error.description
        exitStatus = error.exitStatus
        self.everyRank = everyRank
    }

    public init(_ description: String, status: ExitStatus, everyRank: Bool) {
        self.description = description
        exitStatus = status
        self.everyRank = everyRank
    }
}

/// How the program ends and prints, whether or not MPI runs: the command line's only contact with MPI.
public enum ProgramExit {
    /// Line-buffered standard output, so that progress reaches a batch system's .out file while a job runs.
    public static func prepareOutput() { MPIEnvironment.lineBufferStandardOutput() }

    /// Ends the program for `error`: one line on stderr and its exit status (1 for errors without one).
    ///
    /// Under MPI with several ranks: a failure every rank met is said once by rank 0 and every rank exits
    /// with its status after a barrier (so mpirun does not kill rank 0 before its message is out); any
    /// other failure takes the whole job down with this rank's message, since the other ranks would
    /// otherwise wait for it forever.
    public static func fail(_ error: any Error) -> Never {
        let status = (error as? any UserFacingError)?.exitStatus ?? .runtime
        let message = "\(error)"
        if MPIEnvironment.isInitialized, let world = try? MPIEnvironment.world(), world.size > 1 {
            if let failure = error as? JobFailure, failure.everyRank {
                if world.rank == 0 { writeError(message) }
                try? world.barrier()
                MPIEnvironment.finalize()
                exit(status.rawValue)
            }
            MPIEnvironment.abort(code: status.rawValue, message: "error: " + message)
        }
        writeError(message)
        exit(status.rawValue)
    }

    /// Under MPI with several ranks, ends the whole job for `error` (status 1) with this rank's message:
    /// the other ranks would otherwise wait for this one forever. Returns when no such job runs.
    public static func endJobIfRunning(_ error: any Error) {
        guard MPIEnvironment.isInitialized, let world = try? MPIEnvironment.world(), world.size > 1 else { return }
        MPIEnvironment.abort(code: ExitStatus.runtime.rawValue, message: "error: \(error)")
    }

    static func writeError(_ message: String) {
        FileHandle.standardError.write(Data(("fedbaechi: error: " + message + "\n").utf8))
    }
}

/// A time left or taken, as a person reads it: "42 s", "3 min 5 s", "2 h 10 min".
public func describeDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "? s" }
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s) s" }
    if s < 3600 { return "\(s / 60) min \(s % 60) s" }
    return "\(s / 3600) h \(s % 3600 / 60) min"
}
