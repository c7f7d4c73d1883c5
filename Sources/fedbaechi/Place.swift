import ArgumentParser
import Basics
import Foundation
import ONNXImport
import Placement

/// `fedbaechi place`: a placement plan for a graph on memory-limited devices, without MPI.
struct Place: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Place a training graph on memory-limited devices with Baechi's algorithms (no MPI needed).",
        discussion: """
            GRAPH is fedbaechi's graph JSON, a Baechi/TensorFlow profile or an ONNX model (told apart \
            by content; see docs/formats.md), or synthetic:layered:NODES[:WIDTH[:SEED]] for a generated \
            layered DAG. Give --devices and --memory, or --devices-file for devices that differ.

            An ONNX model gets its shapes by shape inference (--batch sets the batch dimension) and \
            its op times from the cost model (defaults in docs/formats.md, or measured by \
            `fedbaechi calibrate` and given with --cost-model); --training adds the backward ops \
            and the memory training needs.

            m-ETF and m-SCT break ties between ops that could start at the same moment, and their \
            plans depend a great deal on how: by default they run with 60 tie-break orders (the \
            topological one first, then orders drawn from --seed), with and without co-placement, \
            and the fastest simulated plan that fits wins (--search 0: one run, as Baechi).

            --plan FILE judges a plan made elsewhere (by hand, by another tool, by an earlier run): \
            it simulates the placement the file gives on GRAPH and these devices and reports its \
            step and memory, in its own order when the file has one.

            Exit status: 0 with a plan, 2 for input that is rejected (graph, flags, devices file, a \
            plan file that names unknown ops, misses ops or splits a colocation group), 3 when no \
            plan fits (the message names what did not fit and the memory that would do) or the \
            judged plan does not fit the devices' memory, 64 for a missing flag or a flag's value out \
            of range.

            Examples:
              fedbaechi place gnmt.json --devices 4 --memory 8GiB \\
                  --output plan.json --gantt plan.svg
              fedbaechi place gnmt.json --devices 4 --memory 8GiB \\
                  --algorithm m-sct --search 100 --seed 7
              fedbaechi place gnmt.json --devices 4 --memory 8GiB --plan plan.json
              fedbaechi place resnet50.onnx --batch 32 --training --optimizer adam \\
                  --devices 4 --memory 4GiB
            """
    )

    @Argument(help: "The graph: a graph JSON file, a Baechi/TensorFlow profile, an ONNX model, or synthetic:layered:N[:W[:SEED]].")
    var graph: String

    @Option(help: "Number of identical devices.")
    var devices: Int?

    // Unconditional: `--memory -1GB` reaches the check below, as `--memory=-1GB` does, instead of
    // being taken for a flag.
    @Option(parsing: .unconditional, help: "Memory of each device, with its unit (e.g. 8GiB, 500MB, 1073741824B).")
    var memory: String?

    @Option(help: ArgumentHelp("Devices that differ: a JSON file (see docs/formats.md).", valueName: "file"))
    var devicesFile: String?

    @Option(parsing: .unconditional, help: "Link bandwidth between devices (default: Baechi's GPU fit, 5.7GB/s).")
    var bandwidth: String?

    @Option(parsing: .unconditional, help: "Link latency per transfer (default: 134us).")
    var latency: String?

    @Option(help: "m-sct, m-etf, m-topo, single, expert, or auto (the fastest simulated plan that fits).")
    var algorithm: String = "auto"

    @Option(help: ArgumentHelp("Write the plan as JSON to this file ('-' for standard output).", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("Write an SVG Gantt chart of the plan to this file.", valueName: "file"))
    var gantt: String?

    @Flag(help: "Do not co-place an op with its only consumer.")
    var noCoPlacement = false

    @Flag(help: "Do not fuse co-placement groups into single units.")
    var noFusion = false

    @Flag(help: "Ignore the graph's colocation labels.")
    var noColocation = false

    @Option(help: "m-SCT: linear-program values below this mark favourite children.")
    var sctThreshold: Double = 0.1

    @Option(help: "m-ETF, m-SCT and auto: tie-break orders to try, with and without co-placement (0: one run, Baechi's).")
    var search: Int?

    @Option(help: ArgumentHelp("Stop the search after this long (e.g. 0.5s); with no --search, try orders until then.", valueName: "time"))
    var budget: String?

    @Option(help: "Seed of the search's tie-break orders.")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Judge this plan (a plan JSON file) on GRAPH and the devices instead of placing.", valueName: "file"))
    var plan: String?

    @Option(help: "Run preprocessing and placement this many times and report the median time (benchmarks).")
    var `repeat`: Int = 1

    @Option(help: "ONNX: the batch size (the leading dimension of the model's inputs; default: the model's, 1 when symbolic).")
    var batch: Int?

    @Flag(help: "ONNX: place the training graph (backward ops, activations kept for them, gradients, optimizer state).")
    var training = false

    @Option(help: "ONNX with --training: sgd, momentum, adam or rmsprop (the optimizer state kept per parameter).")
    var optimizer: String = "sgd"

    @Option(help: "ONNX: reject (default) or estimate ops shape inference does not know, or whose output shape depends on run-time contents (listed in a warning).")
    var unknownOps: String = "reject"

    @Option(help: ArgumentHelp("ONNX: the cost model, the \"cost_model\" of a JSON file (as `fedbaechi calibrate` writes).", valueName: "file"))
    var costModel: String?

    /// The flags alone, as usage errors (64) like every other command's flag values: a missing flag, an
    /// unknown algorithm, a number out of range, an unreadable --memory, --bandwidth or --latency. Files
    /// (the graph, a devices file, a cost model) are judged in `run` (2).
    func validate() throws {
        guard Algorithm(rawValue: algorithm.lowercased()) != nil else {
            throw ValidationError("unknown algorithm \"\(algorithm)\": use one of " + Algorithm.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard sctThreshold > 0 && sctThreshold <= 1 else { throw ValidationError("--sct-threshold must be in (0, 1], not \(sctThreshold)") }
        guard (1...1000).contains(self.repeat) else { throw ValidationError("--repeat must be between 1 and 1000, not \(self.repeat)") }
        if devicesFile != nil {
            guard devices == nil && memory == nil else { throw ValidationError("give either --devices-file or --devices with --memory, not both") }
        } else {
            guard let count = devices else { throw ValidationError("give --devices N and --memory SIZE, or --devices-file FILE") }
            guard memory != nil else { throw ValidationError("give --memory SIZE for the \(count) device(s)") }
            guard count >= 1 && count <= PlaceSetup.maximumDevices else {
                throw ValidationError("--devices must be between 1 and \(PlaceSetup.maximumDevices), not \(count)")
            }
        }
        for (text, parse) in [(memory, { (t: String) throws(Quantity.ParseError) in _ = try Quantity.bytes(t) }),
                              (bandwidth, { (t: String) throws(Quantity.ParseError) in _ = try Quantity.bandwidth(t) }),
                              (latency, { (t: String) throws(Quantity.ParseError) in _ = try Quantity.micros(t) })] {
            guard let text else { continue }
            do { try parse(text) } catch { throw ValidationError(error.description) }
        }
        if let memory, (try? Quantity.bytes(memory)) == 0 { throw ValidationError("--memory must be more than 0 bytes") }
    }

    func run() throws {
        let setup = try PlaceSetup(self)
        if let plan { return try judge(plan, setup) }
        let planner = Planner(graph: setup.graph, link: setup.link, options: setup.options, sctThreshold: sctThreshold)
        var result = planner.plan(setup.algorithm, devices: setup.devices, search: setup.search)
        if self.repeat > 1, case .success(var plan) = result {
            // Medians over fresh runs (preprocessing included), for benchmarks.
            var runs = [(plan.placementSeconds, plan.placerSeconds, plan.simulationSeconds, plan.placementGraph.preprocessingSeconds)]
            for _ in 1..<self.repeat {
                let fresh = Planner(graph: setup.graph, link: setup.link, options: setup.options, sctThreshold: sctThreshold)
                if case .success(let again) = fresh.plan(setup.algorithm, devices: setup.devices, search: setup.search) {
                    runs.append((again.placementSeconds, again.placerSeconds, again.simulationSeconds, again.placementGraph.preprocessingSeconds))
                }
            }
            plan.placementSeconds = upperMedian(runs.map(\.0))
            plan.placerSeconds = upperMedian(runs.map(\.1))
            plan.simulationSeconds = upperMedian(runs.map(\.2))
            plan.medianPreprocessingSeconds = upperMedian(runs.map(\.3))
            result = .success(plan)
        }
        switch result {
        case .success(let plan):
            if output != "-" { print(PlaceReport.summary(plan, format: setup.format, readSeconds: setup.readSeconds)) }
            if let output { try write(plan.json(), to: output) }
            if let gantt { try write(GanttChart.svg(for: plan), to: gantt) }
        case .failure(let failure):
            var message = "no plan fits \(setup.devicesDescription) with \(setup.algorithm.rawValue): \(failure.reason)"
            if let smallest = planner.smallestMemory(for: setup.algorithm, deviceCount: setup.devices.count) {
                message += "; \(setup.algorithm.rawValue) finds a plan with \(setup.devices.count) device\(setup.devices.count == 1 ? "" : "s") of \(Quantity.formatBytes(smallest)) each (smallest found by search)"
            } else {
                message += "; \(setup.algorithm.rawValue) finds no plan even with unlimited memory"
            }
            throw Refusal(message, status: .noPlanFits)
        }
    }

    /// `--plan`: simulates the file's placement and reports it; exit 3 when it does not fit memory.
    private func judge(_ path: String, _ setup: PlaceSetup) throws {
        let data: Data
        do { data = try GraphFile.read(path: path) } catch {
            throw Refusal("cannot read \(path): \(error.description)")
        }
        let judged: JudgedPlan
        do {
            judged = try JudgedPlan(file: data, named: URL(fileURLWithPath: path).lastPathComponent, graph: setup.graph, link: setup.link,
                                    devices: setup.devices, colocation: setup.options.colocation)
        } catch {
            throw Refusal("\(path): \(error.description)")
        }
        if output != "-" { print(PlaceReport.summary(judged, format: setup.format, readSeconds: setup.readSeconds)) }
        if let output { try write(judged.json(), to: output) }
        if let gantt { try write(GanttChart.svg(for: judged), to: gantt) }
        if let problem = judged.memoryProblem {
            throw Refusal("\(path) does not fit \(setup.devicesDescription): \(problem)", status: .noPlanFits)
        }
    }

    private func write(_ text: String, to path: String) throws {
        if path == "-" {
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch {
            throw Refusal(FileProblem.writeFailure(error, path: path), status: .badInput)
        }
    }
}

/// The validated inputs of `fedbaechi place`.
struct PlaceSetup {
    var graph: Graph
    var format: String
    var readSeconds: Double
    var devices: [DeviceSpec]
    var link: LinkModel
    var algorithm: Algorithm
    var options: PreprocessingOptions
    /// nil: one run of each placer (`--search 0`).
    var search: SearchOptions?

    var devicesDescription: String {
        let memories = Set(devices.map(\.memoryBytes))
        if memories.count == 1 {
            return "\(devices.count) device\(devices.count == 1 ? "" : "s") of \(Quantity.formatBytes(devices[0].memoryBytes))"
        }
        return "\(devices.count) devices (" + devices.map { Quantity.formatBytes($0.memoryBytes) }.joined(separator: ", ") + ")"
    }

    init(_ command: Place) throws {
        // The flags were checked by `Place.validate`.
        algorithm = Algorithm(rawValue: command.algorithm.lowercased()) ?? .mSCT
        let budget = try PlaceSetup.searchBudget(command)
        if command.plan != nil && (command.search != nil || command.budget != nil || command.repeat != 1) {
            throw Refusal("--search, --budget and --repeat are for placing; --plan judges a plan as it is")
        }
        options = PreprocessingOptions(coPlacement: !command.noCoPlacement, fusion: !command.noFusion,
                                       colocation: !command.noColocation)

        var link = LinkModel.baechi
        var fileBandwidth: String?, fileLatency: String?
        var fileCostModel: CostModel?
        if let path = command.devicesFile {
            (devices, fileBandwidth, fileLatency) = try PlaceSetup.readDevicesFile(path)
            fileCostModel = try PlaceSetup.readCostModel(path, required: false)
        } else {
            devices = DeviceSpec.uniform(count: command.devices ?? 1, memoryBytes: (try? Quantity.bytes(command.memory ?? "")) ?? 1)
        }
        if let text = command.bandwidth ?? fileBandwidth {
            link.bytesPerMicrosecond = try PlaceSetup.parse { () throws(Quantity.ParseError) in try Quantity.bandwidth(text) } / 1e6
        }
        if let text = command.latency ?? fileLatency {
            link.latencyMicros = try PlaceSetup.parse { () throws(Quantity.ParseError) in try Quantity.micros(text) }
        }
        self.link = link

        let started = ContinuousClock.now
        if command.graph.hasPrefix("synthetic:") {
            graph = try PlaceSetup.synthetic(command.graph)
            format = "synthetic"
        } else {
            let data: Data
            do { data = try GraphFile.read(path: command.graph) } catch {
                throw Refusal("cannot read \(command.graph): \(FileProblem.reason(error, path: command.graph)) "
                                     + "(expected a graph: JSON, a TensorFlow profile or an ONNX model)")
            }
            let name = URL(fileURLWithPath: command.graph).deletingPathExtension().lastPathComponent
            let onnx = ONNXImporter(options: try PlaceSetup.onnxOptions(command, costModel: fileCostModel))
            do {
                // A file named .onnx is read as ONNX, so that a damaged one is reported as a damaged model.
                let importer: any GraphImporter = command.graph.lowercased().hasSuffix(".onnx")
                    ? onnx : try GraphImporters.importer(for: data, among: GraphImporters.all + [onnx])
                if importer is ONNXImporter {
                    let result = try onnx.importModel(from: data, name: name)
                    graph = result.graph
                    format = PlaceSetup.describe(onnx.options, result)
                    if onnx.options.training && options.coPlacement {
                        // Each backward op has one consumer, the backward op before it, so
                        // co-placement would chain the whole backward pass, and through the
                        // forward/backward colocation the whole model, into one group. Baechi
                        // places training graphs with co-placement on the forward ops only;
                        // here the saved activations already keep forward ops apart.
                        options.coPlacement = false
                        format += ", no co-placement"
                    }
                    if !result.estimatedOps.isEmpty {
                        FileHandle.standardError.write(Data(("fedbaechi: warning: \(result.estimatedOps.count) op(s) given the fallback estimate (shape inference does not know them or their output shapes): " + result.estimatedOps.joined(separator: ", ") + "\n").utf8))
                    }
                } else {
                    graph = try importer.importGraph(from: data, name: name)
                    format = importer.formatName
                }
            } catch {
                throw Refusal("\(command.graph): \(error)")
            }
        }
        if !format.hasPrefix("onnx"),
           command.batch != nil || command.training || command.costModel != nil || command.unknownOps != "reject" || command.optimizer != "sgd" {
            throw Refusal("--batch, --training, --optimizer, --unknown-ops and --cost-model apply to ONNX models, and \(command.graph) is \(format)")
        }
        search = PlaceSetup.searchOptions(command, budget: budget, graph: graph)
        let elapsed = ContinuousClock.now - started
        readSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// Largest `--search`: more orders than this stop helping long before.
    static let maximumSearchOrders = 100_000

    /// The time budget of `--budget`, once `--search` and `--budget` are checked.
    static func searchBudget(_ command: Place) throws -> Double? {
        if let orders = command.search {
            guard (0...maximumSearchOrders).contains(orders) else {
                throw Refusal("--search must be between 0 and \(maximumSearchOrders), not \(orders)")
            }
        }
        guard let text = command.budget else { return nil }
        let micros = try parse { () throws(Quantity.ParseError) in try Quantity.micros(text) }
        guard micros > 0 && micros <= 3600e6 else { throw Refusal("--budget must be more than 0 and at most 1 hour, not \(text)") }
        guard command.search != 0 else { throw Refusal("--budget limits a search, and --search 0 turns it off") }
        return micros / 1e6
    }

    /// The search `--search`, `--budget` and `--seed` ask for on `graph` (nil: one run).
    static func searchOptions(_ command: Place, budget: Double?, graph: Graph) -> SearchOptions? {
        switch (command.search, budget) {
        case (0, _): return nil
        case (nil, nil): return SearchOptions.standard(for: graph, seed: command.seed)
        case (nil, let budget?): return SearchOptions(orders: maximumSearchOrders, budgetSeconds: budget, seed: command.seed)
        case (let orders?, let budget): return SearchOptions(orders: orders, budgetSeconds: budget, seed: command.seed)
        }
    }

    /// The ONNX import options of the command line; `--cost-model` wins over a devices file's.
    static func onnxOptions(_ command: Place, costModel fileCostModel: CostModel?) throws -> ONNXImportOptions {
        guard let optimizer = OptimizerKind(rawValue: command.optimizer.lowercased()) else {
            throw Refusal("unknown optimizer \"\(command.optimizer)\": use one of " + OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let unknown = UnknownOpPolicy(rawValue: command.unknownOps.lowercased()) else {
            throw Refusal("--unknown-ops must be reject or estimate, not \"\(command.unknownOps)\"")
        }
        if optimizer != .sgd && !command.training {
            throw Refusal("--optimizer \(optimizer.rawValue) needs --training: an inference graph keeps no optimizer state")
        }
        if let batch = command.batch, batch < 1 || batch > 1 << 20 {
            throw Refusal("--batch must be between 1 and \(1 << 20), not \(batch)")
        }
        var costModel = fileCostModel ?? .default
        if let path = command.costModel { costModel = try readCostModel(path, required: true) ?? costModel }
        return ONNXImportOptions(batch: command.batch, training: command.training, optimizer: optimizer,
                                 unknownOps: unknown, costModel: costModel)
    }

    /// `onnx, batch 32, training with adam` for the summary.
    static func describe(_ options: ONNXImportOptions, _ result: ONNXImportResult) -> String {
        var parts = ["onnx"]
        if let batch = result.batch { parts.append("batch \(batch)") }
        parts.append(options.training ? "training with \(options.optimizer.rawValue)" : "inference")
        parts.append("\(result.forwardOps) forward ops")
        return parts.joined(separator: ", ")
    }

    /// The `"cost_model"` object of a JSON file (a devices file or `fedbaechi calibrate`'s output).
    static func readCostModel(_ path: String, required: Bool) throws -> CostModel? {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Refusal("cannot read \(path): \(FileProblem.reason(error, path: path)) (expected JSON with a \"cost_model\" object)")
        }
        let model: CostModel?
        do { model = try CostModel.read(fromJSON: data) } catch { throw Refusal("\(path): \(error)") }
        if required && model == nil {
            throw Refusal("\(path): no \"cost_model\" object (expected {\"cost_model\": {\"flops_per_second\": ..., \"memory_bytes_per_second\": ..., \"op_overhead_us\": ...}})")
        }
        return model
    }

    /// Placers keep state per (unit, device) and (tensor, device): a bound that keeps memory sane.
    static let maximumDevices = 256

    static func parse<T>(_ body: () throws(Quantity.ParseError) -> T) throws -> T {
        do { return try body() } catch { throw Refusal(error.description) }
    }

    /// `synthetic:layered:NODES[:WIDTH[:SEED]]`.
    static func synthetic(_ spec: String) throws -> Graph {
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count >= 3, parts.count <= 5, parts[1] == "layered", let nodes = Int(parts[2]), nodes >= 1, nodes <= GraphLimits.maximumNodes,
              let width = parts.count > 3 ? Int(parts[3]) : 100, width >= 1,
              let seed = parts.count > 4 ? UInt64(parts[4]) : 1 else {
            throw Refusal("cannot read \"\(spec)\": expected synthetic:layered:NODES[:WIDTH[:SEED]]")
        }
        return SyntheticGraphs.layered(nodes: nodes, width: width, seed: seed)
    }

    struct DevicesFile: Decodable {
        struct Device: Decodable {
            var name: String?
            var memory: Memory
        }
        /// A size with a unit ("16GiB") or a number of bytes.
        struct Memory: Decodable {
            var text: String
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let number = try? container.decode(Double.self) { text = String(format: "%.0fB", number) } else {
                    text = try container.decode(String.self)
                }
            }
        }
        var devices: [Device]
        var bandwidth: String?
        var latency: String?
    }

    /// `{"devices": [{"name": "gpu0", "memory": "16GiB"}, ...], "bandwidth": "5.7GB/s", "latency": "134us"}`.
    static func readDevicesFile(_ path: String) throws -> ([DeviceSpec], String?, String?) {
        let data: Data
        do { data = try GraphFile.read(path: path) } catch {
            throw Refusal("cannot read \(path): \(FileProblem.reason(error, path: path)) (expected a devices file, JSON)")
        }
        let file: DevicesFile
        do { file = try JSONDecoder().decode(DevicesFile.self, from: data) } catch {
            throw Refusal("\(path): not a devices file (expected {\"devices\": [{\"name\": \"gpu0\", \"memory\": \"16GiB\"}, ...]}): \(PlaceSetup.describe(error))")
        }
        guard !file.devices.isEmpty else { throw Refusal("\(path): the devices list is empty") }
        guard file.devices.count <= maximumDevices else {
            throw Refusal("\(path): \(file.devices.count) devices, more than the \(maximumDevices) fedbaechi places on")
        }
        var devices = [DeviceSpec]()
        for (i, device) in file.devices.enumerated() {
            let memory: Int
            do { memory = try Quantity.bytes(device.memory.text) } catch {
                throw Refusal("\(path): devices[\(i)]: \(error.description)")
            }
            guard memory > 0 else { throw Refusal("\(path): devices[\(i)]: memory must be more than 0 bytes") }
            devices.append(DeviceSpec(name: device.name ?? "device\(i)", memoryBytes: memory))
        }
        return (devices, file.bandwidth, file.latency)
    }

    static func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _): return "\"\(key.stringValue)\" is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + " has the wrong type"
        case .dataCorrupted: return "not JSON"
        default: return "\(error)"
        }
    }
}
