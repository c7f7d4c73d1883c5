import Placement

/// The readable summary `fedbaechi place` prints.
enum PlaceReport {
    static func summary(_ plan: PlacementPlan, format: String, readSeconds: Double) -> String {
        let graph = plan.graph
        let pg = plan.placementGraph
        let sim = plan.simulation
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
        row("algorithm", plan.algorithm.rawValue + (plan.lpMakespanMicros.map { " (linear-program makespan \(Quantity.formatMicros($0)))" } ?? ""))
        let single = graph.totalComputeMicros
        row("step time", "\(Quantity.formatMicros(plan.makespanMicros))   one device: \(Quantity.formatMicros(single))   speed-up \(Quantity.fixed(single / max(plan.makespanMicros, 1e-12), decimals: 2))x")
        row("placement", "\(Quantity.formatMicros(plan.placementSeconds * 1e6)): preprocessing \(Quantity.formatMicros(plan.preprocessingSeconds * 1e6)), placer \(Quantity.formatMicros(plan.placerSeconds * 1e6)), simulation \(Quantity.formatMicros(plan.simulationSeconds * 1e6)); reading the graph \(Quantity.formatMicros(readSeconds * 1e6))")
        lines.append("")
        lines.append("device".padding(14) + "ops".leftPadding(8) + "busy".leftPadding(12) + "busy%".leftPadding(7) + "peak memory".leftPadding(14) + "limit".leftPadding(12))
        var opsOn = [Int](repeating: 0, count: plan.devices.count)
        for d in sim.deviceOfNode { opsOn[Int(d)] += 1 }
        for (d, device) in plan.devices.enumerated() {
            let busy = sim.busyMicros[d]
            lines.append("\(d) \(device.name)".padding(14) + String(opsOn[d]).leftPadding(8)
                         + Quantity.formatMicros(busy).leftPadding(12)
                         + "\(Int((busy / max(plan.makespanMicros, 1e-12) * 100).rounded()))%".leftPadding(7)
                         + Quantity.formatBytes(sim.peakMemoryBytes[d]).leftPadding(14)
                         + Quantity.formatBytes(device.memoryBytes).leftPadding(12))
        }
        let bytes = sim.transfers.reduce(0) { $0 + $1.bytes }
        lines.append("")
        row("transfers", "\(sim.transfers.count) tensors, \(Quantity.formatBytes(bytes))")
        if !plan.candidates.isEmpty {
            lines.append("")
            lines.append("auto weighed:")
            lines.append("  " + "algorithm".padding(11) + "budget".leftPadding(12) + "step time".leftPadding(12) + "peak memory".leftPadding(14) + "  note")
            for candidate in plan.candidates {
                let budget = candidate.memoryBudgetBytes.map(Quantity.formatBytes) ?? "unlimited"
                let time = candidate.makespanMicros.map(Quantity.formatMicros) ?? "-"
                let peak = candidate.peakMemoryBytes.map(Quantity.formatBytes) ?? "-"
                var note = candidate.problem ?? ""
                if note.count > 90 { note = String(note.prefix(87)) + "..." }
                lines.append("  " + candidate.algorithm.rawValue.padding(11) + budget.leftPadding(12) + time.leftPadding(12) + peak.leftPadding(14) + "  " + note)
            }
            lines.append("  chosen: \(plan.algorithm.rawValue)")
        }
        return lines.joined(separator: "\n")
    }
}
