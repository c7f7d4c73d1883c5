import Basics
import Foundation

/// A plan made elsewhere (by hand, by another tool, by an earlier run), read from a plan file and
/// simulated on a graph, so that plans from any source can be compared on the same simulator.
///
/// The file needs only `placement` (every op of the graph -> device index; docs/formats.md). When
/// it also has `schedule` and `transfers`, as the plans `fedbaechi place` writes do, the step is
/// that order replayed (`Simulator.replay`), so a plan judged again gives the step it was written
/// with; otherwise Baechi's simulator orders it. Either way `queueMakespanMicros` is Baechi's
/// simulator's step for the same placement.
public struct JudgedPlan: SimulatedPlacement {
    public let placementGraph: PlacementGraph
    public let devices: [DeviceSpec]
    public let simulation: SimulationResult
    /// The plan file's name, as given.
    public let planFile: String
    /// Whether the step follows the file's own order (else Baechi's simulator ordered it).
    public let followsFileOrder: Bool
    public let queueMakespanMicros: Double

    public var madeBy: String { planFile }

    /// Devices whose simulated peak memory is above their limit.
    public var devicesOverMemory: [Int] {
        devices.indices.filter { simulation.peakMemoryBytes[$0] > devices[$0].memoryBytes }
    }

    /// Why the plan does not fit its devices' memory, in one line (nil when it fits).
    public var memoryProblem: String? {
        guard let d = devicesOverMemory.max(by: { overBy($0) < overBy($1) }) else { return nil }
        let node = Int(simulation.peakNode[d])
        let during = node >= 0 ? " when op \(GraphError.quoted(graph.nodes[node].name)) starts" : ""
        return "the plan needs \(Quantity.formatBytes(simulation.peakMemoryBytes[d])) on device \(d) at \(Quantity.formatMicros(simulation.peakTimeMicros[d]))\(during), above its \(Quantity.formatBytes(devices[d].memoryBytes))"
    }

    private func overBy(_ d: Int) -> Int { simulation.peakMemoryBytes[d] - devices[d].memoryBytes }

    /// Reads `data` (a plan file named `name`) for `graph` on `devices` and simulates it. Rejects,
    /// in one line, a file that is not a plan, names ops the graph lacks, leaves ops out, uses a
    /// device that does not exist, splits a colocation group (unless `colocation` is off) or has
    /// an order that does not fit its placement. Memory is not a reason to reject: see
    /// `memoryProblem`.
    public init(file data: Data, named name: String, graph: Graph, link: LinkModel, devices: [DeviceSpec],
                colocation: Bool = true) throws(PlanFileError) {
        let contents: Contents
        do { contents = try JSONDecoder().decode(Contents.self, from: data) } catch {
            throw PlanFileError("not a plan file (expected {\"placement\": {\"op\": device, ...}}): \(JSONScan.describe(error, data: data))")
        }
        var indexOfName = [String: Int](minimumCapacity: graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() { indexOfName[node.name] = i }

        // Placement: every op of the graph, nothing else, on a device that exists.
        var deviceOfNode = [Int32](repeating: -1, count: graph.nodes.count)
        var unknown = [String]()
        for (op, device) in contents.placement {
            guard let i = indexOfName[op] else { unknown.append(op); continue }
            guard device >= 0 && device < devices.count else {
                throw PlanFileError("op \(GraphError.quoted(op)) is placed on device \(device), but there \(devices.count == 1 ? "is 1 device" : "are \(devices.count) devices") (0 to \(devices.count - 1))")
            }
            deviceOfNode[i] = Int32(device)
        }
        if let first = unknown.min() {
            throw PlanFileError("the plan places \(unknown.count == 1 ? "an op" : "\(unknown.count) ops") the graph does not have: \(GraphError.quoted(first))\(unknown.count > 1 ? " and others" : "")")
        }
        let missing = deviceOfNode.indices.filter { deviceOfNode[$0] < 0 }
        if let first = missing.first {
            throw PlanFileError("the plan does not place \(missing.count == 1 ? "op" : "\(missing.count) ops of the graph, first") \(GraphError.quoted(graph.nodes[first].name))")
        }
        if colocation {
            var deviceOfLabel = [Int32: Int]()
            for i in graph.nodes.indices where graph.colocationClass[i] >= 0 {
                let label = graph.colocationClass[i]
                if let first = deviceOfLabel[label] {
                    guard deviceOfNode[first] == deviceOfNode[i] else {
                        throw PlanFileError("ops \(GraphError.quoted(graph.nodes[first].name)) and \(GraphError.quoted(graph.nodes[i].name)) must share a device (colocation \(GraphError.quoted(graph.nodes[i].colocation ?? ""))) but are on devices \(deviceOfNode[first]) and \(deviceOfNode[i])")
                    }
                } else {
                    deviceOfLabel[label] = i
                }
            }
        }

        // The file's own order, when it has one.
        var schedule: Schedule?
        if let scheduled = contents.schedule, let sent = contents.transfers {
            var nodesOfDevice = [[(start: Double, position: Int, node: Int32)]](repeating: [], count: devices.count)
            for (position, entry) in scheduled.enumerated() {
                guard let i = indexOfName[entry.node] else {
                    throw PlanFileError("schedule[\(position)] names op \(GraphError.quoted(entry.node)), which the graph does not have")
                }
                nodesOfDevice[Int(deviceOfNode[i])].append((entry.start, position, Int32(i)))
            }
            var transfers = [ScheduledTransfer]()
            transfers.reserveCapacity(sent.count)
            var tensorOfName = [String: Int32](minimumCapacity: graph.tensorCount)
            for t in 0..<graph.tensorCount { tensorOfName[graph.tensorName(t)] = Int32(t) }
            for (k, entry) in sent.enumerated() {
                guard let tensor = tensorOfName[entry.tensor] else {
                    throw PlanFileError("transfers[\(k)] sends tensor \(GraphError.quoted(entry.tensor)), which the graph does not have")
                }
                guard entry.to >= 0 && entry.to < devices.count else {
                    throw PlanFileError("transfers[\(k)] goes to device \(entry.to), which does not exist")
                }
                // The edge it is sent for: to the consumer named, or the first to that device.
                let producer = graph.producer(ofTensor: Int(tensor))
                let edge = graph.outEdges[producer].first {
                    let destination = graph.edges[Int($0)].destination
                    return graph.tensorOfEdge[Int($0)] == tensor && deviceOfNode[destination] == Int32(entry.to)
                        && (entry.consumer == nil || graph.nodes[destination].name == entry.consumer)
                }
                guard let edge else {
                    throw PlanFileError("transfers[\(k)] sends \(GraphError.quoted(entry.tensor)) to device \(entry.to), where \(entry.consumer.map { "op \(GraphError.quoted($0)) does not read it" } ?? "no op reads it")")
                }
                transfers.append(ScheduledTransfer(edge: edge, toDevice: Int32(entry.to)))
            }
            schedule = Schedule(nodesOfDevice: nodesOfDevice.map { $0.sorted { ($0.start, $0.position) < ($1.start, $1.position) }.map(\.node) },
                                transfers: transfers)
        }

        let queue = Simulator.simulate(graph, link: link, deviceOfNode: deviceOfNode, deviceCount: devices.count)
        if let schedule {
            do {
                simulation = try Simulator.replay(graph, link: link, deviceOfNode: deviceOfNode, deviceCount: devices.count, schedule: schedule)
            } catch {
                throw PlanFileError("its schedule does not fit its placement (remove \"schedule\" and \"transfers\" to let fedbaechi order it): \(error.description)")
            }
        } else {
            simulation = queue
        }
        followsFileOrder = schedule != nil
        queueMakespanMicros = queue.makespanMicros
        placementGraph = PlacementGraph(graph: graph, link: link, options: PreprocessingOptions(coPlacement: false, fusion: false, colocation: colocation, fusionPathCheck: false))
        self.devices = devices
        planFile = name
    }

    /// What is read from a plan file; everything else in it is ignored.
    private struct Contents: Decodable {
        var placement: [String: Int]
        var schedule: [Scheduled]?
        var transfers: [Sent]?

        struct Scheduled: Decodable {
            var node: String
            var start: Double
            enum CodingKeys: String, CodingKey {
                case node
                case start = "start_us"
            }
        }

        struct Sent: Decodable {
            var tensor: String
            var to: Int
            var consumer: String?
        }
    }

    /// The judgement as JSON: the plan file's fields (docs/formats.md) for this graph and these
    /// devices, with the step, its validity and Baechi's simulator's step.
    public func json() -> String {
        var w = JSONWriter(capacity: 128 * graph.nodes.count + 4096)
        w.beginObject()
        w.field("graph", graph.name)
        w.field("plan_file", planFile)
        w.field("makespan_us", makespanMicros)
        w.field("order", followsFileOrder ? "plan file" : "baechi")
        w.field("baechi_order_makespan_us", queueMakespanMicros)
        w.field("one_device_makespan_us", graph.totalComputeMicros)
        w.field("fits_memory", memoryProblem == nil)
        if let problem = memoryProblem { w.field("problem", problem) }
        writeStep(&w)
        w.endObject()
        return w.text + "\n"
    }
}

/// Why a plan file was rejected, in one line.
public struct PlanFileError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ text: String) { description = GraphError.oneLine(text) }
}
