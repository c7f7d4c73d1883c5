import ArgumentParser
import Basics
import Foundation
import ONNXImport
import enum Placement.FileProblem
import Runtime
import Tensors

/// Measures a zoo model's training graph node by node and writes it for the placement engine.
struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Profile a model's training graph (forward, backward, update) for placement.",
        discussion: """
            Infers every shape, times every op alone on synthetic inputs of its shapes (median of \
            --repeats runs; forward and backward together, one op's tensors at a time, so the model is \
            never held whole) and writes the graph in the placement format (docs/formats.md). Under \
            mpirun the ranks share the ops and rank 0 writes the graph. --method whole-step runs a \
            training step and times every node on its values instead (one process, the whole model):
              {"name", "nodes": [{"name", "compute_us", "persistent_bytes",
                 "temporary_bytes", "output_bytes", "output_shapes", "colocation"}],
               "edges": [{"src", "dst", "output", "bytes"}]}

            With --time-steps N it also times N whole training steps and reports the share spent in \
            sgemm and the GFLOP/s reached, beside a plain 1024x1024x1024 sgemm, and the step's time \
            by op kind (each node timed where it runs in the step; GFLOP/s from the op's sgemm calls). \
            --timing-output writes the same as JSON:
              {"model", "batch", "steps", "step_ms", "sgemm_ms", "sgemm_gflop", "sgemm_peak_gflops",
               "kinds": [{"kind", "nodes", "ms", "share", "sgemm_gflop", "gflops"}]}

            Examples:
              fedbaechi profile --model lenet --batch 64 --output lenet.json
              mpirun -np 4 fedbaechi profile --model rnn-stack --batch 32 --output rnn.json
            """
    )

    @Option(help: ArgumentHelp("Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")), or an ONNX file (model.onnx; scored by cross-entropy over its first output).",
                               valueName: "model"), transform: ModelArgument.parse)
    var model: ModelArgument

    @Option(help: "Examples per step.")
    var batch: Int

    @Option(help: "Where to write the graph (JSON); without it the graph goes to standard output.")
    var output: String?

    @Option(help: "mlp only: widths of the hidden layers, comma-separated (default 1024,1024).", transform: TypedArgument.widths)
    var hidden: [Int]?

    @Option(help: "How to measure: ops (each op alone on synthetic inputs, shared among mpirun's ranks) or whole-step.")
    var method: SharedProfiling.Method = .operators

    @Option(help: "Timed runs per node; the median is kept.")
    var repeats = 7

    @Option(help: "Optimizer whose update nodes and state are profiled: sgd, momentum, adam or rmsprop.")
    var optimizer: OptimizerKind = .adam

    @Option(help: "Vocabulary size of the language models.")
    var vocabulary = 10_000

    @Option(help: "Seed of initialisation and the random inputs.")
    var seed: UInt64 = 1

    @Option(help: "Also time this many whole training steps and report sgemm's share, GFLOP/s and the time by op kind.")
    var timeSteps = 0

    @Option(help: ArgumentHelp("With --time-steps: also write the timing report here, as JSON.", valueName: "file.json"))
    var timingOutput: String?

    func validate() throws {
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 100000") }
        // Upper bounds too: each repeat and each timed step is a full pass, so a mistyped count
        // would otherwise run for days rather than be refused.
        guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 1000") }
        guard (3...1_000_000).contains(vocabulary) else { throw ValidationError("--vocabulary must be between 3 and 1000000") }
        guard (0...100_000).contains(timeSteps) else { throw ValidationError("--time-steps must be between 0 and 100000") }
        if hidden != nil, model != .zoo(.mlp) { throw ValidationError("--hidden sizes the zoo's mlp") }
        if timingOutput != nil, timeSteps == 0 { throw ValidationError("--timing-output needs --time-steps") }
    }

    func run() throws {
        let spec: any ModelRecipe
        switch model {
        case .zoo(let kind):
            var zoo = ModelSpec(kind: kind, vocabulary: vocabulary)
            if let hidden { zoo.hidden = hidden }
            spec = zoo
        case .file(let path):
            do { spec = try ONNXTrainableModel.read(path: path) } catch {
                throw Refusal("\(path): \(error.description)")
            }
        }
        let optimizer = self.optimizer.make(learningRate: self.optimizer.defaultLearningRate)
        // Rank 0 has the profile; other ranks of an mpirun job have shared the work and are done.
        guard let (profiled, seconds, ranks) = try SharedProfiling.profile(
            spec: spec, optimizer: optimizer, seed: seed, batch: batch, repeats: repeats, method: method) else { return }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(profiled)
        let graph = TrainingGraph(model: spec.build(seed: seed, holding: .none), optimizer: optimizer, seed: seed)
        let said = summary(profiled, graph: graph) + "\n" + String(format: "profiled %@ on %d rank%@ in %.2f s",
                                                                     method == .wholeStep ? "whole-step" : "op by op", ranks,
                                                                     ranks == 1 ? "" : "s", seconds)
        if let output {
            do {
                try json.write(to: URL(fileURLWithPath: output))
            } catch {
                throw Refusal(FileProblem.writeFailure(error, path: output), status: .badInput)
            }
            print(said)
        } else {
            print(String(decoding: json, as: UTF8.self))
        }
        if timeSteps > 0 {
            let held = TrainingGraph(model: spec.build(seed: seed), optimizer: optimizer, seed: seed)
            let examples = syntheticExamples(for: held.model, count: batch, steps: spec.steps, seed: seed)
            let report = timing(held, feeds: held.model.feeds(examples, 0..<batch))
            // Standard output may be the graph itself: then the report goes to standard error.
            if output == nil { FileHandle.standardError.write(Data((report.table + "\n").utf8)) } else { print(report.table) }
            if let timingOutput {
                do {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    try encoder.encode(report).write(to: URL(fileURLWithPath: timingOutput))
                } catch {
                    throw Refusal(FileProblem.writeFailure(error, path: timingOutput), status: .badInput)
                }
            }
        }
    }

    private func summary(_ profiled: TrainingProfile, graph: TrainingGraph) -> String {
        var lines = ["graph \(profiled.name), batch \(batch): \(profiled.nodes.count) nodes, \(profiled.edges.count) edges, "
                     + "\(graph.model.parameters.declaredCount) parameters -> \(output ?? "-")",
                     "role           nodes   compute (ms)  persistent (MiB)"]
        for role in [NodeRole.input, .variable, .forward, .backward, .gradientSum, .update] {
            let members = zip(graph.nodes, profiled.nodes).filter { $0.0.role == role }.map(\.1)
            guard !members.isEmpty else { continue }
            let compute = Double(members.reduce(0) { $0 + $1.computeMicroseconds }) / 1000
            // MiB, as `place` and `train` print memory.
            let persistent = Double(members.reduce(0) { $0 + $1.persistentBytes }) / 1_048_576
            lines.append(role.rawValue.padding(14) + String(members.count).leftPadding(6)
                         + String(format: "%15.2f", compute) + String(format: "%18.2f", persistent))
        }
        return lines.joined(separator: "\n")
    }

    /// Whole training steps, timed; sgemm's share and rate from counters around every sgemm call, and
    /// every node's time where it runs in the step, added up by kind.
    private func timing(_ graph: TrainingGraph, feeds: [String: Tensor]) -> StepTiming {
        var samples: [Double] = []
        var sgemmSeconds: [Double] = []
        var flops = 0.0
        let kinds = graph.nodes.map(\.kind)
        var kindSeconds: [String: [Double]] = [:]
        var kindFlops: [String: Double] = [:]
        for step in 0...timeSteps {
            BLAS.resetStatistics()
            BLAS.countingEnabled = true
            var seconds: [String: Double] = [:]
            var stepFlops: [String: Double] = [:]
            var flopsSoFar = 0.0
            let start = DispatchTime.now().uptimeNanoseconds
            graph.step(feeds, step: UInt64(step)) { node, nanoseconds in
                seconds[kinds[node], default: 0] += Double(nanoseconds) / 1e9
                stepFlops[kinds[node], default: 0] += BLAS.statistics.flops - flopsSoFar
                flopsSoFar = BLAS.statistics.flops
            }
            let stepSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            BLAS.countingEnabled = false
            if step == 0 { continue }  // warm-up
            samples.append(stepSeconds)
            sgemmSeconds.append(BLAS.statistics.seconds)
            flops = BLAS.statistics.flops
            for (kind, time) in seconds { kindSeconds[kind, default: []].append(time) }
            kindFlops = stepFlops
        }
        let stepTime = median(samples)
        let perKind = kindSeconds.map { kind, times in
            let time = median(times)
            let gflop = (kindFlops[kind] ?? 0) / 1e9
            return StepTiming.Kind(kind: kind, nodes: kinds.filter { $0 == kind }.count, ms: time * 1000, share: time / stepTime,
                                   sgemmGflop: gflop, gflops: gflop > 0 ? gflop / time : nil)
        }.sorted { $0.ms > $1.ms }
        return StepTiming(model: graph.model.name, batch: batch, steps: samples.count, stepMs: stepTime * 1000,
                          sgemmMs: median(sgemmSeconds) * 1000, sgemmGflop: flops / 1e9, sgemmPeakGflops: BLAS.measureSgemm(size: 1024),
                          kinds: perKind)
    }
}

/// `profile --time-steps`: a training step's time, its sgemm work, and its time by op kind.
struct StepTiming: Encodable {
    struct Kind: Encodable {
        var kind: String
        var nodes: Int
        /// Median over the timed steps of the kind's time in a step.
        var ms: Double
        var share: Double
        /// The kind's sgemm work per step, and its rate (nil for kinds that call no sgemm).
        var sgemmGflop: Double
        var gflops: Double?

        enum CodingKeys: String, CodingKey {
            case kind, nodes, ms, share, sgemmGflop = "sgemm_gflop", gflops
        }
    }
    var model: String
    var batch: Int
    var steps: Int
    var stepMs: Double
    var sgemmMs: Double
    var sgemmGflop: Double
    var sgemmPeakGflops: Double
    var kinds: [Kind]

    enum CodingKeys: String, CodingKey {
        case model, batch, steps, stepMs = "step_ms", sgemmMs = "sgemm_ms", sgemmGflop = "sgemm_gflop"
        case sgemmPeakGflops = "sgemm_peak_gflops", kinds
    }

    var table: String {
        let achieved = sgemmGflop / (stepMs / 1000)
        var lines = [String(format: """
            step time (median of %d): %.2f ms, %.0f examples/s
            time in sgemm: %.2f ms (%.0f%% of the step), %.2f GFLOP per step
            step GFLOP/s: %.1f; sgemm 1024^3 on this machine: %.1f GFLOP/s (%.0f%% of it)
            """, steps, stepMs, Double(batch) / (stepMs / 1000), sgemmMs, 100 * sgemmMs / stepMs,
            sgemmGflop, achieved, sgemmPeakGflops, 100 * achieved / sgemmPeakGflops)]
        lines.append("op kind                         nodes   ms/step   share   sgemm GFLOP   GFLOP/s")
        for kind in kinds {
            lines.append(kind.kind.padding(30) + String(kind.nodes).leftPadding(7) + String(format: "%10.2f", kind.ms)
                         + String(format: "%7.1f%%", 100 * kind.share) + String(format: "%14.3f", kind.sgemmGflop)
                         + (kind.gflops.map { String(format: "%10.1f", $0) } ?? "         -"))
        }
        let outside = stepMs - kinds.reduce(0) { $0 + $1.ms }
        lines.append("outside ops".padding(30) + "      -" + String(format: "%10.2f", outside) + String(format: "%7.1f%%", 100 * outside / stepMs))
        return lines.joined(separator: "\n")
    }
}
