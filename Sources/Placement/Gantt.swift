import Basics

/// An SVG Gantt chart of a plan: one lane per device with its ops coloured by layer (or by
/// co-placement group when names carry no layers), its link channel with the transfers it sends
/// and receives (each naming the device at the other end when there is room), and its memory use
/// against its limit. Devices with no op and no transfer share one line at the end.
public enum GanttChart {
    /// Ten colours told apart at a glance (at most ten layers or groups are coloured; the rest are
    /// "other", in grey, which none of these is near).
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79"]
    static let otherColor = "#c9c9c9"

    public static func svg(for plan: some SimulatedPlacement, width: Int = 1600) -> String {
        let graph = plan.graph
        let sim = plan.simulation
        let deviceCount = plan.devices.count
        let left = 150.0, right = 28.0, top = 64.0, axis = 26.0
        let computeHeight = 30.0, channelHeight = 10.0, memoryHeight = 24.0, laneGap = 16.0
        let laneHeight = computeHeight + 3 + channelHeight + 3 + memoryHeight
        let plotWidth = Double(width) - left - right
        let makespan = max(sim.makespanMicros, 1e-9)
        let scale = plotWidth / makespan
        let (layerNames, layerOfNode, legendTitle) = layers(plan)
        let legendRows = (layerNames.count + 1 + 3) / 4
        // Lanes for the devices that do something; the idle ones are listed on one line.
        var used = [Bool](repeating: false, count: deviceCount)
        for device in sim.deviceOfNode { used[Int(device)] = true }
        for transfer in sim.transfers { used[Int(transfer.fromDevice)] = true; used[Int(transfer.toDevice)] = true }
        let shown = (0..<deviceCount).filter { used[$0] }
        let idle = (0..<deviceCount).filter { !used[$0] }
        var laneOfDevice = [Int](repeating: -1, count: deviceCount)
        for (lane, d) in shown.enumerated() { laneOfDevice[d] = lane }
        let idleHeight = idle.isEmpty ? 0.0 : 22
        let height = top + axis + Double(shown.count) * (laneHeight + laneGap) + idleHeight + 30 + Double(legendRows) * 20 + 20
        func x(_ t: Double) -> Double { left + t * scale }
        func laneTop(_ d: Int) -> Double { top + axis + Double(laneOfDevice[d] >= 0 ? laneOfDevice[d] : shown.count) * (laneHeight + laneGap) }
        let lanesEnd = top + axis + Double(shown.count) * (laneHeight + laneGap)

        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(Int(height))\" viewBox=\"0 0 \(width) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        let title = "\(graph.name): \(plan.madeBy) on \(deviceCount) device\(deviceCount == 1 ? "" : "s")"
        s += "<text x=\"\(left)\" y=\"24\" font-size=\"17\" font-weight=\"bold\">\(escape(title))</text>\n"
        let speedup = graph.totalComputeMicros / makespan
        let subtitle = "step \(Quantity.formatMicros(sim.makespanMicros)) (one device: \(Quantity.formatMicros(graph.totalComputeMicros)), \(Quantity.fixed(speedup, decimals: 2))x) - \(graph.nodes.count) ops in \(plan.placementGraph.unitCount) units - \(sim.transfers.count) transfers"
        s += "<text x=\"\(left)\" y=\"44\" fill=\"#555\">\(escape(subtitle))</text>\n"

        // Time axis.
        let step = niceStep(makespan / 10)
        var tick = 0.0
        while tick <= makespan + step * 1e-9 {
            let tx = f(x(tick))
            s += "<line x1=\"\(tx)\" y1=\"\(f(top + axis - 6))\" x2=\"\(tx)\" y2=\"\(f(lanesEnd - laneGap / 2))\" stroke=\"#e3e3e3\"/>\n"
            s += "<text x=\"\(tx)\" y=\"\(f(top + axis - 10))\" text-anchor=\"middle\" fill=\"#555\">\(escape(Quantity.formatMicros(tick)))</text>\n"
            tick += step
        }

        // Lanes.
        let memory = MemoryProfile(sim, graph: graph)
        // One scale for every device, from 0 to a little above the largest of the peaks and the devices'
        // memories, so that each device's memory line is drawn (a peak far below its memory is a thin
        // area under a high line: room to spare, which is what the chart should show).
        let largestPeak = Double(max(sim.peakMemoryBytes.max() ?? 1, 1))
        let largestLimit = Double(plan.devices.map(\.memoryBytes).max() ?? 1)
        let memoryScale = 1.08 * max(largestPeak, largestLimit)
        var nodesOf = [[Int]](repeating: [], count: deviceCount)
        for i in 0..<graph.nodes.count { nodesOf[Int(sim.deviceOfNode[i])].append(i) }
        for d in shown {
            let y = laneTop(d)
            let device = plan.devices[d]
            s += "<text x=\"\(f(left - 10))\" y=\"\(f(y + 14))\" text-anchor=\"end\" font-weight=\"bold\">\(escape(device.name)) #\(d)</text>\n"
            s += "<text x=\"\(f(left - 10))\" y=\"\(f(y + 28))\" text-anchor=\"end\" fill=\"#555\" font-size=\"10\">busy \(Int((sim.busyMicros[d] / makespan * 100).rounded()))%</text>\n"
            s += "<text x=\"\(f(left - 10))\" y=\"\(f(y + computeHeight + 11))\" text-anchor=\"end\" fill=\"#777\" font-size=\"9\">link (→n to, ←n from #n)</text>\n"
            s += "<text x=\"\(f(left - 10))\" y=\"\(f(y + laneHeight - 4))\" text-anchor=\"end\" fill=\"#555\" font-size=\"10\">\(escape(Quantity.formatBytes(sim.peakMemoryBytes[d]))) / \(escape(Quantity.formatBytes(device.memoryBytes)))</text>\n"
            s += "<rect x=\"\(f(left))\" y=\"\(f(y))\" width=\"\(f(plotWidth))\" height=\"\(f(computeHeight))\" fill=\"#f7f7f7\"/>\n"
            // Ops, with runs narrower than half a pixel of one colour merged.
            let nodes = nodesOf[d].sorted { sim.startMicros[$0] < sim.startMicros[$1] }
            var k = 0
            while k < nodes.count {
                let first = nodes[k]
                var last = first
                var count = 1
                let layer = layerOfNode[first]
                while k + count < nodes.count {
                    let next = nodes[k + count]
                    guard layerOfNode[next] == layer, (sim.startMicros[next] - sim.endMicros[last]) * scale < 0.5,
                          (sim.endMicros[last] - sim.startMicros[first]) * scale < 2 || (sim.endMicros[next] - sim.startMicros[next]) * scale < 0.5
                    else { break }
                    last = next
                    count += 1
                }
                let x0 = x(sim.startMicros[first]), x1 = x(sim.endMicros[last])
                let color = layer < layerNames.count ? palette[Int(layer) % palette.count] : otherColor
                let label = count == 1 ? graph.nodes[first].name : "\(count) ops: \(graph.nodes[first].name) ... \(graph.nodes[last].name)"
                let when = "\(Quantity.formatMicros(sim.startMicros[first])) - \(Quantity.formatMicros(sim.endMicros[last]))"
                s += "<rect x=\"\(f(x0))\" y=\"\(f(y))\" width=\"\(f(max(x1 - x0, 0.4)))\" height=\"\(f(computeHeight))\" fill=\"\(color)\"><title>\(escape(label)) (\(when))</title></rect>\n"
                k += count
            }
            // Link channel.
            let cy = y + computeHeight + 3
            s += "<rect x=\"\(f(left))\" y=\"\(f(cy))\" width=\"\(f(plotWidth))\" height=\"\(f(channelHeight))\" fill=\"#f2f2f2\"/>\n"
            for transfer in sim.transfers where transfer.fromDevice == Int32(d) || transfer.toDevice == Int32(d) {
                let sending = transfer.fromDevice == Int32(d)
                let x0 = x(transfer.startMicros), x1 = x(transfer.endMicros)
                let edge = graph.edges[Int(transfer.edge)]
                let label = "\(sending ? "send" : "receive") \(graph.nodes[edge.source].name):\(edge.isControl ? "control" : String(edge.port)) \(sending ? "to" : "from") device \(sending ? transfer.toDevice : transfer.fromDevice), \(Quantity.formatBytes(transfer.bytes)) (\(Quantity.formatMicros(transfer.startMicros)) - \(Quantity.formatMicros(transfer.endMicros)))"
                s += "<rect x=\"\(f(x0))\" y=\"\(f(cy))\" width=\"\(f(max(x1 - x0, 0.6)))\" height=\"\(f(channelHeight))\" fill=\"\(sending ? "#2f3e57" : "#7a8aa6")\"><title>\(escape(label))</title></rect>\n"
                // The other end, written on the transfer: its name when that fits, else its number (#n in
                // the lane labels).
                let otherIndex = Int(sending ? transfer.toDevice : transfer.fromDevice)
                let arrow = sending ? "→" : "←"
                if let text = [arrow + " " + plan.devices[otherIndex].name, arrow + "\(otherIndex)"]
                    .first(where: { x1 - x0 >= Double($0.count) * 5 + 2 }) {
                    s += "<text x=\"\(f(x0 + 1))\" y=\"\(f(cy + channelHeight - 2))\" fill=\"white\" font-size=\"8\">\(escape(text))</text>\n"
                }
            }
            // Memory use, on one scale for all devices.
            let my = cy + channelHeight + 3
            let limit = memoryScale
            s += "<rect x=\"\(f(left))\" y=\"\(f(my))\" width=\"\(f(plotWidth))\" height=\"\(f(memoryHeight))\" fill=\"#fbfbfb\" stroke=\"#e0e0e0\"/>\n"
            let points = downsample(memory.timeline[d], width: plotWidth, scale: scale)
            if !points.isEmpty {
                var path = "M\(f(left)),\(f(my + memoryHeight))"
                var lastY = my + memoryHeight
                for (px, bytes) in points {
                    let py = my + memoryHeight - Double(bytes) / limit * memoryHeight
                    path += " L\(f(left + px)),\(f(lastY)) L\(f(left + px)),\(f(py))"
                    lastY = py
                }
                path += " L\(f(left + plotWidth)),\(f(lastY)) L\(f(left + plotWidth)),\(f(my + memoryHeight)) Z"
                s += "<path d=\"\(path)\" fill=\"#9ecae1\" stroke=\"#3182bd\" stroke-width=\"0.8\"><title>memory of \(escape(device.name)): peak \(escape(Quantity.formatBytes(sim.peakMemoryBytes[d]))) of \(escape(Quantity.formatBytes(device.memoryBytes)))</title></path>\n"
            }
            if Double(device.memoryBytes) <= limit {
                let ly = my + memoryHeight - Double(device.memoryBytes) / limit * memoryHeight
                s += "<line x1=\"\(f(left))\" y1=\"\(f(ly))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(ly))\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>\n"
            }
        }
        // Sends drawn across lanes when there are few enough to follow.
        if sim.transfers.count <= 400 {
            for transfer in sim.transfers {
                let y0 = laneTop(Int(transfer.fromDevice)) + computeHeight + 3 + channelHeight / 2
                let y1 = laneTop(Int(transfer.toDevice)) + computeHeight + 3 + channelHeight / 2
                s += "<line x1=\"\(f(x(transfer.startMicros)))\" y1=\"\(f(y0))\" x2=\"\(f(x(transfer.endMicros)))\" y2=\"\(f(y1))\" stroke=\"#2f3e57\" stroke-opacity=\"0.25\" stroke-width=\"0.8\"/>\n"
            }
        }

        if !idle.isEmpty {
            let names = idle.map { plan.devices[$0].name }
            let listed = names.count > 12 ? names.prefix(12).joined(separator: ", ") + ", ..." : names.joined(separator: ", ")
            s += "<text x=\"\(f(left))\" y=\"\(f(lanesEnd + 10))\" fill=\"#555\">idle (no op placed, no transfer): \(names.count) device\(names.count == 1 ? "" : "s"): \(escape(listed))</text>\n"
        }

        // Legend.
        var ly = lanesEnd + idleHeight + 10
        s += "<text x=\"\(f(left))\" y=\"\(f(ly))\" fill=\"#555\">\(escape(legendTitle)); link: dark = send, light = receive; blue area: memory in use (full height \(escape(Quantity.formatBytes(Int(memoryScale)))), red dashes: the device's memory)</text>\n"
        ly += 10
        let columnWidth = plotWidth / 4
        for (k, name) in (layerNames + ["other"]).enumerated() {
            let lx = left + Double(k % 4) * columnWidth
            let row = ly + Double(k / 4) * 20
            let color = k < layerNames.count ? palette[k % palette.count] : otherColor
            s += "<rect x=\"\(f(lx))\" y=\"\(f(row))\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            s += "<text x=\"\(f(lx + 18))\" y=\"\(f(row + 10))\">\(escape(name))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    /// Layers: the deepest `/`-separated name prefix (depth 1 to 4) whose ten largest cover 90% of
    /// the compute time; otherwise the co-placement groups. Returns names, each node's layer index
    /// (names.count for "other") and the legend's title.
    static func layers(_ plan: some SimulatedPlacement) -> ([String], [Int32], String) {
        let graph = plan.graph
        let total = max(graph.totalComputeMicros, 1e-9)
        for depth in stride(from: 4, through: 1, by: -1) {
            var compute = [Substring: Double]()
            var prefixes = [Substring]()
            prefixes.reserveCapacity(graph.nodes.count)
            for node in graph.nodes {
                let parts = node.name.split(separator: "/", maxSplits: depth, omittingEmptySubsequences: false)
                guard parts.count > 1 else { prefixes.append(""); continue }
                let prefix = node.name[node.name.startIndex..<parts[min(depth, parts.count - 1) - 1].endIndex]
                prefixes.append(prefix)
                compute[prefix, default: 0] += node.computeMicros
            }
            let top = compute.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(10)
            guard top.count >= 2, top.reduce(0, { $0 + $1.value }) >= 0.9 * total else { continue }
            let names = top.map { String($0.key) }
            let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, Int32($0)) })
            return (names, prefixes.map { index[String($0)] ?? Int32(names.count) }, "colour: layer (name prefix)")
        }
        // Groups by compute.
        let pg = plan.placementGraph
        var compute = [Double](repeating: 0, count: pg.groupCount)
        for unit in pg.units { compute[Int(unit.group)] += unit.computeMicros }
        let top = (0..<pg.groupCount).sorted { compute[$0] > compute[$1] }.prefix(10)
        var layerOfGroup = [Int32](repeating: Int32(top.count), count: pg.groupCount)
        var names = [String]()
        for (k, g) in top.enumerated() {
            layerOfGroup[g] = Int32(k)
            names.append(pg.describe(group: g))
        }
        let layerOfNode = (0..<graph.nodes.count).map { layerOfGroup[Int(pg.units[Int(pg.unitOfNode[$0])].group)] }
        return (names, layerOfNode, "colour: co-placement group (the 10 largest)")
    }

    /// The highest memory use within each pixel column, as (x offset, bytes) steps.
    static func downsample(_ timeline: [(time: Double, bytes: Int)], width: Double, scale: Double) -> [(Double, Int)] {
        var points = [(Double, Int)]()
        var column = -1
        for (time, bytes) in timeline {
            let c = Int(min(time * scale, width))
            if c == column, let last = points.last {
                if bytes > last.1 { points[points.count - 1].1 = bytes }
            } else {
                points.append((Double(c), bytes))
                column = c
            }
        }
        return points
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        var magnitude = 1.0
        while magnitude * 10 <= raw { magnitude *= 10 }
        while magnitude > raw { magnitude /= 10 }
        for factor in [1.0, 2, 5, 10] where factor * magnitude >= raw { return factor * magnitude }
        return 10 * magnitude
    }

    static func f(_ value: Double) -> String { Quantity.fixed(value, decimals: 1, trim: true) }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
