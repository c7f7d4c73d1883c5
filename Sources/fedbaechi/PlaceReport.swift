import Basics
import Placement

/// The readable summary `fedbaechi place` prints.
enum PlaceReport {
    static func summary(_ plan: PlacementPlan, format: String, readSeconds: Double) -> String {
        var lines = header(plan, format: format)
        func row(_ label: String, _ value: String) { lines.append(label.padding(11) + value) }
        row("algorithm", plan.algorithm.rawValue + (plan.lpMakespanMicros.map { " (linear-program makespan \(Quantity.formatMicros($0)))" } ?? ""))
        row("step time", stepText(plan))
        var orders = [String]()
        if let predicted = plan.predictedMakespanMicros {
            let gap = predicted - plan.makespanMicros
            orders.append("placer predicted \(Quantity.formatMicros(predicted))" + (gap > 0 ? " (\(Quantity.formatMicros(gap)) above the replay of its own order)" : " (the same)"))
        }
        if let queue = plan.queueMakespanMicros { orders.append("Baechi's simulator order \(Quantity.formatMicros(queue))") }
        if !orders.isEmpty { row("", orders.joined(separator: "; ")) }
        if let search = plan.search {
            var text = "\(search.plansTried) plans tried (tie-break orders from seed \(search.seed))"
            if let fastest = search.fastestMicros, let median = search.medianMicros, let slowest = search.slowestMicros {
                text += ", \(search.plansFitting) fit: steps \(Quantity.formatMicros(fastest)) to \(Quantity.formatMicros(slowest)), median \(Quantity.formatMicros(median))"
            }
            if search.stoppedByBudget { text += "; stopped by the time budget" }
            row("search", text)
            for arm in search.arms where arm.plansTried > 1 || search.arms.count > 1 {
                row("", "  \(arm.algorithm.rawValue), co-placement \(arm.coPlacement ? "on" : "off"): \(arm.plansTried) plan\(arm.plansTried == 1 ? "" : "s"), fastest " + (arm.fastestMicros.map(Quantity.formatMicros) ?? "none fits"))
            }
            let choice: String
            switch plan.tieBreak {
            case .topological: choice = "topological tie-break"
            case .shuffled(let seed): choice = "tie-break order \(seed)"
            case .ranks: choice = "a variation of a good tie-break order"
            }
            row("", "chosen: \(plan.algorithm.rawValue), \(choice), co-placement \(plan.placementGraph.options.coPlacement ? "on" : "off")")
        }
        row("placement", "\(Quantity.formatMicros(plan.placementSeconds * 1e6)): preprocessing \(Quantity.formatMicros(plan.preprocessingSeconds * 1e6)), placer \(Quantity.formatMicros(plan.placerSeconds * 1e6)), simulation \(Quantity.formatMicros(plan.simulationSeconds * 1e6)); reading the graph \(Quantity.formatMicros(readSeconds * 1e6))")
        lines += deviceTable(plan)
        if !plan.candidates.isEmpty {
            lines.append("")
            lines.append("auto weighed:")
            lines.append("  " + "algorithm".padding(11) + "budget".leftPadding(12) + "step time".leftPadding(12) + "peak memory".leftPadding(14) + "  note")
            for candidate in plan.candidates {
                let budget = candidate.memoryBudgetBytes.map(Quantity.formatBytes) ?? "unlimited"
                let time = candidate.makespanMicros.map(Quantity.formatMicros) ?? "-"
                let peak = candidate.peakMemoryBytes.map(Quantity.formatBytes) ?? "-"
                var note = candidate.problem ?? candidate.plansTried.map { "best of \($0) plans searched" } ?? ""
                if note.count > 90 { note = String(note.prefix(87)) + "..." }
                lines.append("  " + candidate.algorithm.rawValue.padding(11) + budget.leftPadding(12) + time.leftPadding(12) + peak.leftPadding(14) + "  " + note)
            }
            lines.append("  chosen: \(plan.algorithm.rawValue)")
        }
        return lines.joined(separator: "\n")
    }

    /// The summary of a plan read from a file (`--plan`).
    static func summary(_ plan: JudgedPlan, format: String, readSeconds: Double) -> String {
        var lines = header(plan, format: format)
        func row(_ label: String, _ value: String) { lines.append(label.padding(11) + value) }
        row("plan", plan.planFile + (plan.followsFileOrder ? ", run in its own order" : ", no order given: ordered by Baechi's simulator"))
        row("step time", stepText(plan))
        if plan.followsFileOrder { row("", "Baechi's simulator order \(Quantity.formatMicros(plan.queueMakespanMicros))") }
        row("memory", plan.memoryProblem ?? "every device within its limit")
        lines += deviceTable(plan)
        return lines.joined(separator: "\n")
    }

    private static func header(_ plan: some SimulatedPlacement, format: String) -> [String] {
        let graph = plan.graph
        let pg = plan.placementGraph
        var lines = [String]()
        func row(_ label: String, _ value: String) { lines.append(label.padding(11) + value) }
        row("graph", "\(graph.name) (\(format)): \(graph.nodes.count) ops, \(graph.edges.count) edges")
        var steps = [String]()
        if pg.options.colocation { steps.append("colocation") }
        if pg.options.coPlacement { steps.append("co-placement") }
        if pg.options.fusion { steps.append("fusion") }
        row("units", "\(pg.unitCount) placement units in \(pg.groupCount) groups" + (steps.isEmpty ? " (no preprocessing)" : " after " + steps.joined(separator: ", ")))
        let memories = Set(plan.devices.map(\.memoryBytes))
        let deviceText = memories.count == 1
            ? "\(plan.devices.count) x \(Quantity.formatBytes(plan.devices[0].memoryBytes))"
            : plan.devices.map { Quantity.formatBytes($0.memoryBytes) }.joined(separator: ", ")
        row("devices", deviceText + ", link \(Quantity.formatBandwidth(bytesPerSecond: pg.link.bytesPerSecond)) + \(Quantity.formatMicros(pg.link.latencyMicros)) per transfer")
        return lines
    }

    private static func stepText(_ plan: some SimulatedPlacement) -> String {
        let single = plan.graph.totalComputeMicros
        return "\(Quantity.formatMicros(plan.makespanMicros))   one device: \(Quantity.formatMicros(single))   speed-up \(Quantity.fixed(single / max(plan.makespanMicros, 1e-12), decimals: 2))x"
    }

    private static func deviceTable(_ plan: some SimulatedPlacement) -> [String] {
        let sim = plan.simulation
        var lines = [""]
        lines.append("device".padding(14) + "ops".leftPadding(8) + "busy".leftPadding(12) + "busy%".leftPadding(7) + "peak memory".leftPadding(14) + "limit".leftPadding(12))
        for (d, device) in plan.devices.enumerated() {
            let busy = sim.busyMicros[d]
            lines.append("\(d) \(device.name)".padding(14) + String(sim.nodesOfDevice[d].count).leftPadding(8)
                         + Quantity.formatMicros(busy).leftPadding(12)
                         + "\(Int((busy / max(plan.makespanMicros, 1e-12) * 100).rounded()))%".leftPadding(7)
                         + Quantity.formatBytes(sim.peakMemoryBytes[d]).leftPadding(14)
                         + Quantity.formatBytes(device.memoryBytes).leftPadding(12))
        }
        let bytes = sim.transfers.reduce(0) { $0 + $1.bytes }
        lines.append("")
        lines.append("transfers".padding(11) + "\(sim.transfers.count) tensors, \(Quantity.formatBytes(bytes))")
        return lines
    }
}
