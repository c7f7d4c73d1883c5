/// A small JSON writer (fast enough for plans of a million nodes).
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = [false]

    init(capacity: Int = 1 << 16) { text.reserveCapacity(capacity) }

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    mutating func key(_ name: String) {
        separator()
        appendString(name)
        text += ":"
        needsComma[needsComma.count - 1] = false
    }

    mutating func beginObject() { separator(); text += "{"; needsComma.append(false) }
    mutating func endObject() { needsComma.removeLast(); text += "}"; needsComma[needsComma.count - 1] = true }
    mutating func beginArray() { separator(); text += "["; needsComma.append(false) }
    mutating func endArray() { needsComma.removeLast(); text += "]"; needsComma[needsComma.count - 1] = true }

    mutating func value(_ string: String) { separator(); appendString(string) }
    mutating func value(_ int: Int) { separator(); text += String(int) }
    mutating func value(_ bool: Bool) { separator(); text += bool ? "true" : "false" }
    mutating func value(_ double: Double) {
        separator()
        if !double.isFinite { text += "null"; return }
        if double == double.rounded() && abs(double) < 1e15 { text += String(Int64(double)) } else { text += "\(double)" }
    }
    mutating func null() { separator(); text += "null" }

    mutating func field(_ name: String, _ string: String) { key(name); value(string) }
    mutating func field(_ name: String, _ int: Int) { key(name); value(int) }
    mutating func field(_ name: String, _ double: Double) { key(name); value(double) }
    mutating func field(_ name: String, _ bool: Bool) { key(name); value(bool) }

    private mutating func appendString(_ string: String) {
        text += "\""
        var plain = true
        for unit in string.utf8 where unit < 0x20 || unit == 0x22 || unit == 0x5C { plain = false; break }
        if plain {
            text += string
        } else {
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        text.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        text += "\""
    }
}

/// What the JSON, the chart and the summary of a plan need: where every node runs and the
/// simulated step. Plans the planner makes and plans read from a file (`JudgedPlan`) both are.
public protocol SimulatedPlacement: Sendable {
    var placementGraph: PlacementGraph { get }
    var devices: [DeviceSpec] { get }
    var simulation: SimulationResult { get }
    /// What made the plan, for titles: an algorithm or a plan file.
    var madeBy: String { get }
}

extension SimulatedPlacement {
    public var graph: Graph { placementGraph.graph }
    public var makespanMicros: Double { simulation.makespanMicros }
    public var deviceOfNode: [Int32] { simulation.deviceOfNode }
}

extension PlacementPlan: SimulatedPlacement {
    public var madeBy: String { algorithm.rawValue }
}

extension PlacementPlan {
    /// The plan as JSON (docs/formats.md): algorithm, makespan, placement time, every node's
    /// device, each device's memory, the schedule and the transfers.
    public func json() -> String {
        let graph = self.graph
        var w = JSONWriter(capacity: 128 * graph.nodes.count + 4096)
        w.beginObject()
        w.field("graph", graph.name)
        w.field("algorithm", algorithm.rawValue)
        w.field("makespan_us", makespanMicros)
        if let predicted = predictedMakespanMicros { w.field("predicted_makespan_us", predicted) }
        if let queue = queueMakespanMicros { w.field("baechi_order_makespan_us", queue) }
        w.field("placement_seconds", placementSeconds)
        w.field("preprocessing_seconds", preprocessingSeconds)
        w.field("placer_seconds", placerSeconds)
        w.field("simulation_seconds", simulationSeconds)
        w.field("one_device_makespan_us", graph.totalComputeMicros)
        if let lp = lpMakespanMicros { w.field("lp_makespan_us", lp) }
        w.key("tie_break")
        switch tieBreak {
        case .topological: w.value("topological")
        case .shuffled(let seed): w.value(String(seed))
        case .ranks: w.value("varied")
        }
        if let search {
            w.key("search")
            w.beginObject()
            w.field("seed", String(search.seed))
            w.field("plans_tried", search.plansTried)
            w.field("plans_fitting", search.plansFitting)
            for (name, value) in [("fastest_us", search.fastestMicros), ("median_us", search.medianMicros), ("slowest_us", search.slowestMicros)] {
                w.key(name)
                if let value { w.value(value) } else { w.null() }
            }
            w.field("stopped_by_budget", search.stoppedByBudget)
            w.key("arms")
            w.beginArray()
            for arm in search.arms {
                w.beginObject()
                w.field("algorithm", arm.algorithm.rawValue)
                w.field("co_placement", arm.coPlacement)
                w.field("plans_tried", arm.plansTried)
                w.key("fastest_us")
                if let fastest = arm.fastestMicros { w.value(fastest) } else { w.null() }
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        writeStep(&w)

        if !candidates.isEmpty {
            w.key("candidates")
            w.beginArray()
            for candidate in candidates {
                w.beginObject()
                w.field("algorithm", candidate.algorithm.rawValue)
                w.key("memory_budget_bytes")
                if let budget = candidate.memoryBudgetBytes { w.value(budget) } else { w.null() }
                w.key("makespan_us")
                if let makespan = candidate.makespanMicros { w.value(makespan) } else { w.null() }
                w.key("peak_memory_bytes")
                if let peak = candidate.peakMemoryBytes { w.value(peak) } else { w.null() }
                if let tried = candidate.plansTried { w.field("plans_tried", tried) }
                if let problem = candidate.problem { w.field("problem", problem) }
                w.endObject()
            }
            w.endArray()
        }
        w.endObject()
        return w.text + "\n"
    }
}

extension SimulatedPlacement {
    /// The fields every plan file has: link, preprocessing, devices, placement, schedule, transfers.
    func writeStep(_ w: inout JSONWriter) {
        let graph = self.graph
        let pg = placementGraph
        let sim = simulation
        w.key("link")
        w.beginObject()
        w.field("bandwidth_bytes_per_second", pg.link.bytesPerSecond)
        w.field("latency_us", pg.link.latencyMicros)
        w.endObject()
        w.key("preprocessing")
        w.beginObject()
        w.field("co_placement", pg.options.coPlacement)
        w.field("fusion", pg.options.fusion)
        w.field("colocation", pg.options.colocation)
        w.field("nodes", graph.nodes.count)
        w.field("units", pg.unitCount)
        w.field("groups", pg.groupCount)
        w.endObject()

        w.key("devices")
        w.beginArray()
        for (d, device) in devices.enumerated() {
            w.beginObject()
            w.field("index", d)
            w.field("name", device.name)
            w.field("memory_limit_bytes", device.memoryBytes)
            w.field("peak_memory_bytes", sim.peakMemoryBytes[d])
            w.field("persistent_bytes", sim.persistentBytes[d])
            w.field("busy_us", sim.busyMicros[d])
            w.field("nodes", sim.nodesOfDevice[d].count)
            w.endObject()
        }
        w.endArray()

        w.key("placement")
        w.beginObject()
        for (i, node) in graph.nodes.enumerated() { w.field(node.name, Int(sim.deviceOfNode[i])) }
        w.endObject()

        // By start time; nodes of one device that start together in the order the device runs them.
        var position = [Int](repeating: 0, count: graph.nodes.count)
        for nodes in sim.nodesOfDevice {
            for (k, node) in nodes.enumerated() { position[Int(node)] = k }
        }
        let order = (0..<graph.nodes.count).sorted {
            (sim.startMicros[$0], sim.deviceOfNode[$0], position[$0]) < (sim.startMicros[$1], sim.deviceOfNode[$1], position[$1])
        }
        w.key("schedule")
        w.beginArray()
        for i in order {
            w.beginObject()
            w.field("node", graph.nodes[i].name)
            w.field("device", Int(sim.deviceOfNode[i]))
            w.field("start_us", sim.startMicros[i])
            w.field("end_us", sim.endMicros[i])
            w.field("unit", Int(pg.unitOfNode[i]))
            w.endObject()
        }
        w.endArray()

        w.key("transfers")
        w.beginArray()
        for transfer in sim.transfers {
            w.beginObject()
            w.field("tensor", graph.tensorName(Int(transfer.tensor)))
            w.field("consumer", graph.nodes[graph.edges[Int(transfer.edge)].destination].name)
            w.field("from", Int(transfer.fromDevice))
            w.field("to", Int(transfer.toDevice))
            w.field("start_us", transfer.startMicros)
            w.field("end_us", transfer.endMicros)
            w.field("bytes", transfer.bytes)
            w.endObject()
        }
        w.endArray()
    }
}
