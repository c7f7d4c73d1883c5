import ArgumentParser
import Basics
import Federated
import Foundation
import ONNXImport
import Placement
import Runtime
import Tensors

extension ModelKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension KnownDataset: ExpressibleByArgument {}
extension AggregationKind: ExpressibleByArgument {}
extension SharedProfiling.Method: ExpressibleByArgument {}
extension ONNXLoss: ExpressibleByArgument {}

/// What `--model` names: a model of the zoo, or an ONNX file to train.
enum ModelArgument: Equatable {
    case zoo(ModelKind)
    case file(String)

    /// A zoo name, or a path (anything ending in .onnx, or holding a slash).
    static func parse(_ text: String) throws -> ModelArgument {
        if let kind = ModelKind(rawValue: text) { return .zoo(kind) }
        if text.lowercased().hasSuffix(".onnx") || text.contains("/") { return .file(text) }
        throw ValidationError("unknown model \"\(text)\": use one of \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")), or an ONNX file (model.onnx)")
    }
}

/// Typed values of the training flags, parsed once by the argument parser, each with a message that says
/// what would have been right.
enum TypedArgument {
    static func algorithm(_ text: String) throws -> Algorithm {
        guard let algorithm = Algorithm(rawValue: text.lowercased()) else {
            throw ValidationError("unknown algorithm \"\(text)\": use one of " + Algorithm.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return algorithm
    }

    /// A memory size as people write it ("512MiB", "2GB"), more than 0 bytes.
    static func bytes(_ text: String) throws -> Int {
        do {
            guard try Quantity.bytes(text) > 0 else { throw ValidationError("--device-memory must be more than 0 bytes") }
            return try Quantity.bytes(text)
        } catch let error as Quantity.ParseError {
            throw ValidationError("--device-memory: \(error.description)")
        }
    }

    /// Layer widths, comma-separated ("1024,1024"): 1 to 64 layers of 1 to 65,536 units.
    static func widths(_ text: String) throws -> [Int] {
        let widths = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...64).contains(widths.count), widths.allSatisfy({ $0.map { (1...65_536).contains($0) } ?? false }) else {
            throw ValidationError("--hidden: \"\(text)\" is not 1 to 64 comma-separated widths of 1 to 65536 units")
        }
        return widths.compactMap { $0 }
    }

    static func partition(_ text: String) throws -> PartitionScheme {
        guard let scheme = PartitionScheme(parsing: text) else {
            throw ValidationError("--partition: \"\(text)\" is not iid, dirichlet:ALPHA (0.001 <= ALPHA <= 1e6), shards:N (1 <= N <= 10000) or natural")
        }
        return scheme
    }
}

/// `fedbaechi train [model-parallel|federated|single]`: parses the mode's flags into a driver's settings
/// and runs the driver. The training itself is Runtime's.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model of the zoo on Fashion-MNIST or the fortunes corpus: model-parallel (the default), federated or in one process.",
        discussion: """
            Reports the test accuracy (image models) or perplexity (language models) after each epoch \
            (round, federated). Without arguments, `mpirun -np 8 fedbaechi train` trains inception-mini \
            model-parallel on 8 ranks for one epoch of Fashion-MNIST.

            Models: mlp, lenet, inception-mini (Fashion-MNIST); gru-lm, rnn-stack (fortunes).

            Examples:
              mpirun -np 4 fedbaechi train --algorithm m-sct --steps 50
              mpirun -np 9 fedbaechi train federated --rounds 10
              fedbaechi train single --model lenet --epochs 2 \\
                  --metrics out.jsonl --checkpoint-dir ckpt
              fedbaechi report out.jsonl

            `--mode MODE` before or after the other flags is accepted for `train MODE`.
            """,
        subcommands: [TrainModelParallel.self, TrainFederated.self, TrainSingle.self],
        defaultSubcommand: TrainModelParallel.self
    )

    /// The model-parallel job's built-in model.
    static let defaultModel = ModelKind.inceptionMini

    /// `train --mode M ...` as `train M ...`: the flag of earlier releases, kept as an alias.
    static func rewritingModeAlias(_ arguments: [String]) -> [String] {
        guard let train = arguments.firstIndex(of: "train"), !arguments[..<train].contains(where: { !$0.hasPrefix("-") }) else {
            return arguments
        }
        var rest = Array(arguments[(train + 1)...])
        var mode: String?
        if let flag = rest.firstIndex(of: "--mode"), flag + 1 < rest.count {
            mode = rest[flag + 1]
            rest.removeSubrange(flag...(flag + 1))
        } else if let flag = rest.firstIndex(where: { $0.hasPrefix("--mode=") }) {
            mode = String(rest[flag].dropFirst("--mode=".count))
            rest.remove(at: flag)
        }
        guard let mode else { return arguments }
        return Array(arguments[...train]) + [mode] + rest
    }
}

/// What every mode reads: the model and its data, the optimizer, the seed, the outputs.
struct TrainingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Model to train: a zoo model (mlp, lenet, inception-mini, gru-lm, rnn-stack; default inception-mini, lenet for federated runs) or an ONNX file (model.onnx) trained on --train-data and --test-data.",
                               valueName: "model"), transform: ModelArgument.parse)
    var model: ModelArgument?

    @Option(help: ArgumentHelp("ONNX model: training examples, a NumPy .npz file with arrays x (features: float, or uint8 divided by 255) and y (integer labels, or float targets with --loss mse), or two IDX files as FEATURES,LABELS.",
                               valueName: "file.npz"))
    var trainData: String?

    @Option(help: ArgumentHelp("ONNX model: test examples, an .npz file like --train-data's.", valueName: "file.npz"))
    var testData: String?

    @Option(help: ArgumentHelp("ONNX model: the output trained (default: the model's first).", valueName: "name"))
    var output: String?

    @Option(help: "ONNX model: cross-entropy over the output's last axis against integer labels, or mse against float targets.")
    var loss: ONNXLoss = .crossEntropy

    @Option(help: ArgumentHelp("ONNX model: write the trained model here (the same graph with the trained weights and running statistics, for inference).",
                               valueName: "file.onnx"))
    var export: String?

    @Option(help: ArgumentHelp("mlp only: widths of the hidden layers, comma-separated (default 1024,1024). Twenty-four layers of 1024 with adam hold 285.6 MiB of parameters and optimizer state, 4.46 times --device-memory 64MiB: 8 ranks of 64 MiB train it.",
                               valueName: "widths"), transform: TypedArgument.widths)
    var hidden: [Int]?

    @Option(help: "Dataset (default: the model's own).")
    var dataset: KnownDataset?

    @Option(help: "Folder holding the dataset (default: where its Debian package installs it).")
    var dataDirectory: String?

    @Option(help: "Seed of initialisation, shuffling and dropout.")
    var seed: UInt64 = 1

    @Option(name: [.customLong("batch-size"), .customLong("batch")],
            help: "Examples per step (default: 128 mlp, 64 lenet and inception-mini, 32 language models and ONNX models). Every step has this many; an epoch's last partial batch is left out.")
    var batchSize: Int?

    @Option(help: "Optimizer.")
    var optimizer: OptimizerKind = .adam

    @Option(help: "Step size (default: the optimizer's, 0.001 for adam and rmsprop, 0.01 otherwise).")
    var learningRate: Float?

    @Option(help: "Train on only the first N training examples (quick runs).")
    var limitTrain: Int?

    @Option(help: "Score on only the first N test examples.")
    var limitTest: Int?

    @Option(help: ArgumentHelp("Write the run's records to this file, one JSON object per line with a \"kind\": one per epoch (single, model-parallel) or round (federated), and a summary (`fedbaechi report FILE` draws them).",
                               valueName: "file"))
    var metrics: String?

    @Flag(help: "Take the training examples in file order every epoch instead of a seeded shuffle.")
    var noShuffle = false

    @Option(help: ArgumentHelp("Write a metrics record (kind \"step\", with step and loss) every N training steps (needs --metrics).", valueName: "N"))
    var logEvery: Int?

    @OptionGroup var checkpoint: CheckpointOptions

    func validate() throws {
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw ValidationError("--learning-rate must be a positive number")
        }
        if let limitTrain, limitTrain < 1 { throw ValidationError("--limit-train must be at least 1") }
        if let limitTest, limitTest < 1 { throw ValidationError("--limit-test must be at least 1") }
        if let logEvery, logEvery < 1 { throw ValidationError("--log-every must be at least 1") }
        if logEvery != nil, metrics == nil { throw ValidationError("--log-every writes to the metrics file: add --metrics FILE") }
    }

    /// The driver's settings for `model` (the flag, or the mode's default); `siteData` is the federated
    /// folder of private site files.
    func settings(defaultModel: ModelKind, siteData: String? = nil) throws -> TrainingSettings {
        if case .file(let path) = self.model {
            return try fileSettings(path, siteData: siteData)
        }
        for (flag, given) in [("--train-data", trainData), ("--test-data", testData), ("--output", output), ("--export", export), ("--site-data", siteData)] where given != nil {
            throw ValidationError("\(flag) is for a model read from an ONNX file (--model model.onnx)")
        }
        if loss != .crossEntropy { throw ValidationError("--loss is for a model read from an ONNX file (--model model.onnx)") }
        var model = defaultModel
        if case .zoo(let kind) = self.model { model = kind }
        if let dataset, dataset != model.dataset {
            throw ValidationError("model \(model.rawValue) trains on \(model.dataset.rawValue), not \(dataset.rawValue)")
        }
        if hidden != nil, model != .mlp { throw ValidationError("--hidden sizes the mlp, not \(model.rawValue)") }
        var settings = commonSettings(model: model)
        settings.dataDirectory = dataDirectory
        settings.hidden = hidden
        return settings
    }

    /// The settings every model takes the same way.
    private func commonSettings(model: ModelKind) -> TrainingSettings {
        var settings = TrainingSettings(
            model: model, seed: seed, batchSize: batchSize, optimizer: optimizer, learningRate: learningRate,
            limitTrain: limitTrain, limitTest: limitTest, metricsPath: metrics, checkpoints: checkpoint.settings)
        settings.shuffle = !noShuffle
        settings.logEvery = logEvery
        return settings
    }

    /// Settings for a model read from an ONNX file: the file is read and checked here, on every rank,
    /// so a model that cannot be trained is refused before any work.
    private func fileSettings(_ path: String, siteData: String?) throws -> TrainingSettings {
        if hidden != nil { throw ValidationError("--hidden sizes the zoo's mlp, not a model file") }
        if dataset != nil || dataDirectory != nil { throw ValidationError("a model file trains on --train-data and --test-data, not --dataset or --data-directory") }
        guard testData != nil, trainData != nil || siteData != nil else {
            throw ValidationError("--model \(path) needs --train-data FILE.npz (or federated --site-data DIR) and --test-data FILE.npz")
        }
        let model: ONNXTrainableModel
        do { model = try ONNXTrainableModel.read(path: path, output: output, loss: loss) } catch {
            throw Refusal("\(path): \(error.description)")
        }
        var settings = commonSettings(model: Train.defaultModel)
        settings.file = ModelFile(model: model, path: path, trainData: trainData, testData: testData, siteData: siteData, exportPath: export)
        return settings
    }
}

/// `--epochs` or `--steps`: how long single-process and model-parallel runs train.
struct LengthOptions: ParsableArguments {
    @Option(help: "Passes over the training set.")
    var epochs: Int?

    @Option(help: "Stop after this many training steps (instead of whole epochs).")
    var steps: Int?

    func validate() throws {
        if let epochs, !(1...1_000_000).contains(epochs) { throw ValidationError("--epochs must be between 1 and 1000000") }
        if let steps, !(1...1_000_000_000).contains(steps) { throw ValidationError("--steps must be between 1 and 1000000000") }
        if epochs != nil, steps != nil { throw ValidationError("--epochs and --steps both say how long to train: choose one") }
    }

    var length: TrainingLength { steps.map { .steps($0) } ?? .epochs(epochs ?? 1) }
}

/// `--checkpoint-dir`, `--checkpoint-every`, `--resume`, `--overwrite`: the same for every training mode.
struct CheckpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write checkpoints to this directory (one file per rank and checkpoint; the newest two are kept). The directory belongs to one run: it is locked while the run lasts, and a run with checkpoints there is continued with --resume or replaced with --overwrite.",
                               valueName: "directory"))
    var checkpointDir: String?

    @Option(help: "Checkpoint every N training steps (single, model-parallel; default 100) or rounds (federated; default 1), at the end, and when the run is stopped by SIGINT or SIGTERM.")
    var checkpointEvery: Int?

    @Flag(help: "Continue the run whose checkpoints are in --checkpoint-dir, from the newest position every rank has intact (a fresh start when the directory has none). Refused when the flags describe another run.")
    var resume = false

    @Flag(help: "Start a fresh run in --checkpoint-dir even though it holds another run's checkpoints: they are deleted first.")
    var overwrite = false

    func validate() throws {
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if checkpointDir == nil, resume || checkpointEvery != nil || overwrite {
            throw ValidationError("--resume, --overwrite and --checkpoint-every need --checkpoint-dir")
        }
        if resume && overwrite { throw ValidationError("--resume continues a run and --overwrite replaces it: choose one") }
    }

    var settings: CheckpointSettings? {
        checkpointDir.map { CheckpointSettings(directory: $0, every: checkpointEvery, resume: resume, overwrite: overwrite) }
    }
}

/// `--peer-timeout`, of the modes whose ranks wait for each other (`PeerWatch`).
struct PeerTimeoutOption: ParsableArguments {
    @Option(name: .customLong("peer-timeout"),
            help: ArgumentHelp("Seconds a rank waits for another during training before it calls that rank lost (a hung process, or its host off the network), names it and ends the job; 0 waits for ever. A federated site waiting for the others' local training adds the time the largest site's extra steps take it.",
                               valueName: "seconds"))
    var seconds: Double = PeerWatch.defaultTimeout

    func validate() throws {
        guard seconds >= 0, seconds.isFinite else { throw ValidationError("--peer-timeout must be 0 or more seconds") }
    }

    /// The watch's timeout; nil waits for ever.
    var timeout: Double? { seconds > 0 ? seconds : nil }
}

extension Train {
    /// `train model-parallel`: the ranks of the MPI job each run a Baechi-placed part of the training graph.
    struct TrainModelParallel: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "model-parallel",
            abstract: "The ranks profile the model's training graph op by op, rank 0 places it on the job's ranks, and each rank holds and runs only its part (the default mode).")

        @OptionGroup var training: TrainingOptions
        @OptionGroup var length: LengthOptions

        @Option(help: "Placer: \(Algorithm.allCases.map(\.rawValue).joined(separator: ", ")).", transform: TypedArgument.algorithm)
        var algorithm: Algorithm = .mSCT

        @Option(parsing: .unconditional, help: ArgumentHelp("Memory of each rank the plan must fit (e.g. 512MiB).", valueName: "bytes"),
                transform: TypedArgument.bytes)
        var deviceMemory: Int = 512 << 20

        @Option(help: ArgumentHelp("Place with the links between ranks that `fedbaechi calibrate --link` measured for this job's ranks and hosts (default: an assumed 2 GB/s + 50 us between every pair).", valueName: "file"))
        var links: String?

        @Option(help: ArgumentHelp("Place this saved profile (from `fedbaechi profile`) instead of profiling now.", valueName: "file"))
        var profile: String?

        @OptionGroup var peerWatch: PeerTimeoutOption

        func run() throws {
            let driver = ModelParallelDriver(
                settings: try training.settings(defaultModel: Train.defaultModel),
                placement: ModelParallelSettings(algorithm: algorithm, memoryBytes: deviceMemory, profilePath: profile, linksPath: links,
                                                 peerTimeout: peerWatch.timeout),
                length: length.length, reporter: ConsoleReporter())
            try driver.run()
        }
    }

    /// `train federated`: every rank is a site with private data; sites aggregate by private ADMM (or a baseline).
    struct TrainFederated: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "federated",
            abstract: "Every rank is a site with its own share of the data; after local training the sites average their models by private ADMM over the groups of a block design (no server), by FedAvg, or not at all.")

        @OptionGroup var training: TrainingOptions
        @OptionGroup var peerWatch: PeerTimeoutOption

        @Option(help: "Global rounds (local training, then aggregation).")
        var rounds = 5

        @Option(help: "Passes over its own data each site makes per round.")
        var localEpochs: Int?

        @Option(help: "Local training steps per round instead of --local-epochs: each site trains on its next N batches, continuing through its shuffled data from round to round.")
        var steps: Int?

        @Option(help: "admm (private, over block-design groups), fedavg (exact mean by allreduce) or local (none).")
        var aggregation: AggregationKind = .admm

        @Flag(help: "ADMM: group members add pairwise masks, so each sees only its group's sum (default: on where plain messages would leak).")
        var masked = false

        @Option(help: ArgumentHelp("How the training data is split among sites: iid, dirichlet:ALPHA (0.001 <= ALPHA <= 1e6), shards:N (1 <= N <= 10000) or natural (default: dirichlet:0.5 for images, natural for fortunes).",
                                   valueName: "scheme"), transform: TypedArgument.partition)
        var partition: PartitionScheme?

        @Option(help: ArgumentHelp("ONNX model: a folder of site-<rank>.npz files, each site's private training data, read only by that site (instead of splitting --train-data).",
                                   valueName: "directory"))
        var siteData: String?

        @Option(help: "ADMM: iterations per round (default: the fewest whose predicted aggregation error is at most 1e-6).")
        var iterations: Int?

        @Option(help: "ADMM: rho of the first iteration, an exact decimal.")
        var rho = "3"

        @Option(help: "ADMM: rho of every later iteration, an exact decimal (the error shrinks by rho/(2+rho) per iteration).")
        var rhoAfter = "0.001"

        @Option(help: ArgumentHelp("ADMM: width W of the secret duals' range, U[-W/2, W/2): the first message hides a model coordinate in a band of width W/rho; a wider range needs more iterations (docs/privacy.md).",
                                   valueName: "W"))
        var dualRange: Double?

        @Option(help: "ADMM: no coalition of up to C sites may learn another site's model (default 1: single curious sites).")
        var collusion: Int?

        @Flag(help: "ADMM: run a schedule that the privacy audit flags (otherwise it is refused).")
        var allowLeakySchedule = false

        @Flag(help: "ADMM: run an explicit --iterations whose predicted aggregation error is above 1e-6.")
        var allowInexact = false

        @Flag(help: "ADMM: also form the exact mean each round (a sum under cryptographic masks over all sites) to check the aggregation error against it.")
        var checkExactMean = false

        @Flag(help: "ADMM: derive every site's keys from --seed so runs repeat bit for bit. INSECURE: any site can then compute every other site's masks and duals; for tests and experiments only.")
        var insecureReproducibleSecrets = false

        func validate() throws {
            guard (1...100_000).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 100000") }
            if let localEpochs, !(1...10_000).contains(localEpochs) { throw ValidationError("--local-epochs must be between 1 and 10000") }
            if let steps, !(1...1_000_000_000).contains(steps) { throw ValidationError("--steps must be between 1 and 1000000000") }
            if localEpochs != nil, steps != nil { throw ValidationError("--local-epochs and --steps both say how long a site trains per round: choose one") }
            if let iterations, !(1...400).contains(iterations) { throw ValidationError("--iterations must be between 1 and 400") }
            if let dualRange, !(dualRange > 0 && dualRange <= 1e6) { throw ValidationError("--dual-range must be a number above 0 and at most 1000000") }
            if let collusion, !(1...149).contains(collusion) { throw ValidationError("--collusion must be between 1 and 149") }
            if ExactRho(decimal: rho) == nil { throw ValidationError("--rho must be a positive decimal with at most 9 digits after the point") }
            if ExactRho(decimal: rhoAfter) == nil {
                throw ValidationError("--rho-after must be a positive decimal with at most 9 digits after the point")
            }
        }

        /// The driver's federated settings from these flags.
        var settings: FederatedSettings {
            FederatedSettings(
                rounds: rounds, localEpochs: localEpochs ?? 1, localSteps: steps, aggregation: aggregation, partition: partition,
                iterations: iterations, masked: masked, rho: rho, rhoAfter: rhoAfter, dualRange: dualRange, collusion: collusion,
                allowLeaky: allowLeakySchedule, allowInexact: allowInexact, checkExactMean: checkExactMean,
                insecureReproducibleSecrets: insecureReproducibleSecrets, peerTimeout: peerWatch.timeout)
        }

        func run() throws {
            // Lenet, the CNN of the federated paper, is the federated default.
            let driver = FederatedDriver(settings: try training.settings(defaultModel: .lenet, siteData: siteData), federated: settings,
                                         reporter: ConsoleReporter())
            try driver.run()
        }
    }

    /// `train single`: one process, no MPI.
    struct TrainSingle: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "single", abstract: "Train in one process (the reference the distributed modes are compared with).")

        @OptionGroup var training: TrainingOptions
        @OptionGroup var length: LengthOptions

        func run() throws {
            let driver = SingleProcessDriver(settings: try training.settings(defaultModel: Train.defaultModel),
                                             length: length.length, reporter: ConsoleReporter())
            try driver.run()
        }
    }
}
