import Basics
import Testing
@testable import Placement

/// A random DAG: multi-port outputs, control edges, colocation labels, some comm overrides.
func randomGraph(seed: UInt64, nodes count: Int) -> Graph {
    var random = SplitMix64(seed: seed)
    var nodes = [Node]()
    for i in 0..<count {
        let ports = random.between(1, 2)
        var node = Node(name: "n\(i)", computeMicros: Double(random.between(1, 40)),
                        persistentBytes: random.below(4) == 0 ? random.between(1, 400) : 0,
                        temporaryBytes: random.below(150), outputBytes: (0..<ports).map { _ in random.below(300) })
        if random.below(7) == 0 { node.colocation = "label\(random.below(3))" }
        nodes.append(node)
    }
    var edges = [Edge]()
    for j in 1..<count {
        var sources = Set<Int>()
        for _ in 0..<random.between(0, 3) { sources.insert(random.below(j)) }
        for i in sources.sorted() {
            let port = random.below(10) == 0 ? Edge.controlPort : random.below(nodes[i].outputBytes.count)
            edges.append(Edge(source: i, destination: j, port: port,
                              commMicros: random.below(3) == 0 ? Double(random.below(20)) : nil))
        }
    }
    return try! Graph(name: "random\(seed)", nodes: nodes, edges: edges)
}

let testLink = LinkModel(bytesPerMicrosecond: 10, latencyMicros: 2)

/// Checks a simulated plan from first principles (not with the simulator's own bookkeeping).
func checkSchedule(_ plan: PlacementPlan, limits: [Int], colocation: Bool, _ label: String) {
    let graph = plan.graph
    let sim = plan.simulation
    let n = graph.nodes.count
    let deviceCount = limits.count
    #expect(sim.deviceOfNode.count == n && sim.deviceOfNode.allSatisfy { $0 >= 0 && Int($0) < deviceCount }, "\(label): placed")
    for i in 0..<n {
        #expect(abs(sim.endMicros[i] - sim.startMicros[i] - graph.nodes[i].computeMicros) < 1e-6, "\(label): duration")
    }
    for d in 0..<deviceCount {
        let ops = (0..<n).filter { sim.deviceOfNode[$0] == Int32(d) }.sorted { sim.startMicros[$0] < sim.startMicros[$1] }
        for (a, b) in zip(ops, ops.dropFirst()) { #expect(sim.startMicros[b] >= sim.endMicros[a], "\(label): device \(d) runs one op at a time") }
        let channel = sim.transfers.filter { $0.fromDevice == Int32(d) || $0.toDevice == Int32(d) }.sorted { $0.startMicros < $1.startMicros }
        for (a, b) in zip(channel, channel.dropFirst()) { #expect(b.startMicros >= a.endMicros, "\(label): one transfer at a time on device \(d)") }
    }
    var transferTo = [Int: Transfer]()
    for t in sim.transfers { transferTo[Int(t.tensor) * deviceCount + Int(t.toDevice)] = t }
    for (e, edge) in graph.edges.enumerated() {
        let u = edge.source, v = edge.destination
        if sim.deviceOfNode[u] == sim.deviceOfNode[v] {
            #expect(sim.startMicros[v] >= sim.endMicros[u], "\(label): precedence")
            continue
        }
        guard let transfer = transferTo[Int(graph.tensorOfEdge[e]) * deviceCount + Int(sim.deviceOfNode[v])] else {
            Issue.record("\(label): no transfer for edge \(e)")
            continue
        }
        #expect(transfer.startMicros >= sim.endMicros[u] && transfer.endMicros <= sim.startMicros[v], "\(label): transfer in between")
        #expect(abs(transfer.endMicros - transfer.startMicros - graph.commMicros(ofEdge: Int(transfer.edge), link: plan.placementGraph.link)) < 1e-9,
                "\(label): transfer time")
    }
    if colocation {
        var deviceOfLabel = [String: Int32]()
        for i in 0..<n {
            guard let label = graph.nodes[i].colocation else { continue }
            if let d = deviceOfLabel[label] { #expect(d == sim.deviceOfNode[i], "\(label): colocated") } else { deviceOfLabel[label] = sim.deviceOfNode[i] }
        }
    }
    // Memory, by brute force over every allocation instant.
    var intervals = [[(Double, Double?, Int)]](repeating: [], count: deviceCount)
    var persistent = [Int](repeating: 0, count: deviceCount)
    for i in 0..<n {
        let d = Int(sim.deviceOfNode[i])
        persistent[d] += graph.nodes[i].persistentBytes
        intervals[d].append((sim.startMicros[i], sim.endMicros[i], graph.nodes[i].temporaryBytes))
        let consumers = graph.edges.indices.filter { graph.edges[$0].source == i }
        let nodeLast = consumers.map { sim.endMicros[graph.edges[$0].destination] }.max()
        for (port, bytes) in graph.nodes[i].outputBytes.enumerated() {
            let portLast = consumers.filter { graph.edges[$0].port == port }.map { sim.endMicros[graph.edges[$0].destination] }.max()
            intervals[d].append((sim.startMicros[i], portLast ?? nodeLast, bytes))
        }
    }
    for t in sim.transfers {
        let users = graph.edges.indices.filter {
            graph.tensorOfEdge[$0] == t.tensor && sim.deviceOfNode[graph.edges[$0].destination] == t.toDevice
        }
        let last = users.map { sim.endMicros[graph.edges[$0].destination] }.max()!
        intervals[Int(t.toDevice)].append((t.startMicros, last, t.bytes))
    }
    for d in 0..<deviceCount {
        var peak = persistent[d]
        for (instant, _, _) in intervals[d] {
            var use = persistent[d]
            for (from, to, bytes) in intervals[d] where from <= instant {
                if let to { if instant < to || (from == to && from == instant) { use += bytes } } else { use += bytes }
            }
            peak = max(peak, use)
        }
        #expect(peak == sim.peakMemoryBytes[d], "\(label): peak memory of device \(d)")
        #expect(peak <= limits[d], "\(label): device \(d) within its memory")
    }
}

@Suite struct PropertyTests {
    static let seeds: [UInt64] = Array(1...30)

    @Test(arguments: seeds)
    func everyPlanIsAValidScheduleWithinMemory(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 7919)
        let graph = randomGraph(seed: seed, nodes: random.between(5, 40))
        let options = PreprocessingOptions(coPlacement: random.below(2) == 0, fusion: random.below(2) == 0,
                                           colocation: random.below(4) != 0, fusionPathCheck: random.below(2) == 0)
        let planner = Planner(graph: graph, link: testLink, options: options)
        let deviceCount = random.between(1, 4)
        let bound = planner.memoryLowerBound()
        for memory in [1 << 40, bound * 3, bound + bound / 4, bound] {
            let limits = (0..<deviceCount).map { _ in memory }
            for algorithm in Algorithm.allCases {
                let label = "seed \(seed) \(algorithm.rawValue) \(deviceCount)x\(memory) \(options)"
                switch planner.plan(algorithm, devices: DeviceSpec.uniform(count: deviceCount, memoryBytes: memory)) {
                case .success(let plan): checkSchedule(plan, limits: limits, colocation: options.colocation, label)
                case .failure(let failure):
                    #expect(memory < 1 << 40, "\(label): fails with ample memory: \(failure)")
                    #expect(!failure.reason.isEmpty && !failure.reason.contains("\n"))
                }
            }
        }
    }

    @Test(arguments: seeds)
    func autoIsMonotoneInMemoryAndBeatsOneDevice(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 104_729)
        let graph = randomGraph(seed: seed + 1000, nodes: random.between(5, 30))
        let planner = Planner(graph: graph, link: testLink)
        let deviceCount = random.between(2, 4)
        let single = try planner.plan(.single, devices: DeviceSpec.uniform(count: 1, memoryBytes: 1 << 40)).get()
        let onePeak = single.simulation.peakMemoryBytes[0]
        let bound = planner.memoryLowerBound()
        var found = false
        for step in 0...24 {
            let memory = bound + (onePeak + onePeak / 10 - bound) * step / 24
            let result = planner.plan(.auto, devices: DeviceSpec.uniform(count: deviceCount, memoryBytes: memory))
            if case .success(let plan) = result {
                found = true
                if memory >= onePeak { #expect(plan.makespanMicros <= single.makespanMicros, "seed \(seed): never slower than one device") }
            } else {
                #expect(!found, "seed \(seed): auto found a plan with less memory than \(memory) but none with \(memory)")
                #expect(memory < onePeak, "seed \(seed): one device fits but auto fails")
            }
        }
        #expect(found)
    }

    @Test(arguments: seeds)
    func unitGraphIsAcyclicAndCoversEveryNode(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let graph = randomGraph(seed: seed + 77, nodes: random.between(2, 60))
        let pg = PlacementGraph(graph: graph, link: testLink)
        #expect(pg.topologicalOrder.count == pg.unitCount)
        #expect(pg.units.reduce(0) { $0 + $1.members.count } == graph.nodes.count)
        for e in 0..<pg.edgeSource.count {
            #expect(pg.topologicalRank[Int(pg.edgeSource[e])] < pg.topologicalRank[Int(pg.edgeDestination[e])])
        }
    }

    @Test(arguments: seeds)
    func mETFMatchesAFullRescan(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 31)
        let graph = randomGraph(seed: seed + 500, nodes: random.between(5, 60))
        let pg = PlacementGraph(graph: graph, link: testLink, options: PreprocessingOptions(fusion: random.below(2) == 0))
        let deviceCount = random.between(1, 4)
        // Baechi's tie-break and a random one: the heaps must follow any order, not only the topological one.
        for tieBreak in [TieBreak.topological, .shuffled(seed: seed &+ 99)] {
            for memory in [1 << 40, 2000, 900, 600] {
                let limits = [Int](repeating: memory, count: deviceCount)
                var naive = NaiveETF(pg, limits: limits, priority: tieBreak.priority(pg))
                let expected = naive.run()
                let actual = try? METFPlacer().place(pg, limits: limits, tieBreak: tieBreak)
                #expect(actual?.deviceOfUnit == expected?.deviceOfUnit, "seed \(seed), \(tieBreak), \(deviceCount) devices of \(memory)")
                #expect(actual?.predictedMakespanMicros == expected?.predictedMakespanMicros)
            }
        }
    }

    @Test(arguments: seeds)
    func searchedPlansAreValidSchedulesWithinMemory(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &* 6007)
        let graph = randomGraph(seed: seed + 3000, nodes: random.between(5, 40))
        let planner = Planner(graph: graph, link: testLink, options: PreprocessingOptions(colocation: random.below(4) != 0))
        let deviceCount = random.between(2, 4)
        let bound = planner.memoryLowerBound()
        for memory in [1 << 40, bound * 2] {
            let limits = [Int](repeating: memory, count: deviceCount)
            for algorithm in [Algorithm.mETF, .mSCT, .auto] {
                let label = "seed \(seed) \(algorithm.rawValue) \(deviceCount)x\(memory) searched"
                let search = SearchOptions(orders: 8, seed: seed)
                if case .success(let plan) = planner.plan(algorithm, devices: DeviceSpec.uniform(count: deviceCount, memoryBytes: memory), search: search) {
                    checkSchedule(plan, limits: limits, colocation: planner.options.colocation, label)
                    #expect(plan.search.map { $0.plansTried > 1 } == true, "\(label): searched")
                }
            }
        }
    }
}

/// m-ETF by its definition, rescanning every ready (unit, device) pair at every step.
struct NaiveETF {
    let pg: PlacementGraph
    let limits: [Int]
    let deviceCount: Int
    var clock = 0.0
    var deviceFree: [Double], channelFree: [Double], used: [Int]
    var unitDevice: [Int], start: [Double], end: [Double]
    var remainingPreds: [Int], remainingConsumers: [Int], maxConsumerEnd: [Double]
    var received: [[Int]]
    var cache: [Int: Double] = [:]
    var groupDevice: [Int]
    var excluded: [Int: Int] = [:]   // unit * deviceCount + device -> needed bytes when excluded
    var frees: [(time: Double, order: Int, device: Int, bytes: Int)] = []
    var order = 0
    /// Tie-break rank of each unit.
    let priority: [Int32]

    init(_ pg: PlacementGraph, limits: [Int], priority: [Int32]) {
        self.pg = pg
        self.limits = limits
        self.priority = priority
        deviceCount = limits.count
        let n = pg.unitCount
        deviceFree = Array(repeating: 0, count: deviceCount)
        channelFree = Array(repeating: 0, count: deviceCount)
        used = Array(repeating: 0, count: deviceCount)
        unitDevice = Array(repeating: -1, count: n)
        start = Array(repeating: 0, count: n)
        end = Array(repeating: 0, count: n)
        remainingPreds = (0..<n).map { pg.inEdges.count($0) }
        remainingConsumers = (0..<n).map { pg.outEdges.count($0) }
        maxConsumerEnd = Array(repeating: 0, count: n)
        received = Array(repeating: Array(repeating: 0, count: deviceCount), count: n)
        groupDevice = Array(repeating: -1, count: pg.groupCount)
    }

    func allowed(_ u: Int, _ d: Int) -> Bool { groupDevice[Int(pg.units[u].group)] < 0 || groupDevice[Int(pg.units[u].group)] == d }

    func lowerNeed(_ u: Int) -> Int {
        let unit = pg.units[u]
        return unit.temporaryBytes + unit.outputBytes + unit.retainedBytes
            + (groupDevice[Int(unit.group)] < 0 ? pg.groupPersistentBytes[Int(unit.group)] : 0)
    }

    func arrival(_ u: Int, _ d: Int) -> (Double, Int) {
        var channels = channelFree
        var time = 0.0, bytes = 0
        for e in pg.inEdges[u] {
            let p = Int(pg.edgeSource[Int(e)]), source = unitDevice[p]
            if source == d { time = max(time, end[p]); continue }
            for item in pg.items(ofEdge: Int(e)) {
                if let cached = cache[Int(pg.itemTensor[item]) * deviceCount + d] { time = max(time, cached); continue }
                let finish = max(end[p], channels[source], channels[d]) + pg.itemComm[item]
                channels[source] = finish
                channels[d] = finish
                time = max(time, finish)
                bytes += pg.itemBytes[item]
            }
        }
        return (time, bytes)
    }

    mutating func run() -> UnitPlacement? {
        var scheduled = 0
        while scheduled < pg.unitCount {
            var best: (time: Double, unit: Int, device: Int)?
            for u in 0..<pg.unitCount where unitDevice[u] < 0 && remainingPreds[u] == 0 {
                for d in 0..<deviceCount where allowed(u, d) && excluded[u * deviceCount + d] == nil {
                    let t = max(clock, deviceFree[d], arrival(u, d).0)
                    if best == nil || (t, priority[u], d) < (best!.time, priority[best!.unit], best!.device) { best = (t, u, d) }
                }
            }
            if let next = frees.map(\.time).min(), best == nil || next <= best!.time {
                clock = max(clock, next)
                var touched = Set<Int>()
                for free in frees where free.time <= next {
                    used[free.device] -= free.bytes
                    touched.insert(free.device)
                }
                frees.removeAll { $0.time <= next }
                for (slot, need) in excluded where touched.contains(slot % deviceCount) && need <= limits[slot % deviceCount] - used[slot % deviceCount] {
                    excluded[slot] = nil
                }
                continue
            }
            guard let (time, u, d) = best else { return nil }
            if used[d] + lowerNeed(u) + arrival(u, d).1 > limits[d] {
                excluded[u * deviceCount + d] = lowerNeed(u)
                continue
            }
            clock = time
            let unit = pg.units[u]
            if groupDevice[Int(unit.group)] < 0 {
                groupDevice[Int(unit.group)] = d
                used[d] += pg.groupPersistentBytes[Int(unit.group)]
            }
            var bytes = 0
            var newlyCached = [Int]()
            for e in pg.inEdges[u] {
                let p = Int(pg.edgeSource[Int(e)]), source = unitDevice[p]
                if source == d { continue }
                for item in pg.items(ofEdge: Int(e)) where cache[Int(pg.itemTensor[item]) * deviceCount + d] == nil {
                    let finish = max(end[p], channelFree[source], channelFree[d]) + pg.itemComm[item]
                    channelFree[source] = finish
                    channelFree[d] = finish
                    cache[Int(pg.itemTensor[item]) * deviceCount + d] = finish
                    received[p][d] += pg.itemBytes[item]
                    bytes += pg.itemBytes[item]
                    newlyCached.append(Int(pg.itemTensor[item]))
                }
            }
            unitDevice[u] = d
            start[u] = time
            end[u] = time + unit.computeMicros
            deviceFree[d] = end[u]
            used[d] += unit.temporaryBytes + unit.outputBytes + unit.retainedBytes + bytes
            scheduled += 1
            func release(_ at: Double, _ device: Int, _ amount: Int) {
                if amount > 0 { frees.append((at, order, device, amount)); order += 1 }
            }
            release(end[u], d, unit.temporaryBytes)
            for e in pg.inEdges[u] {
                let p = Int(pg.edgeSource[Int(e)])
                remainingConsumers[p] -= 1
                maxConsumerEnd[p] = max(maxConsumerEnd[p], end[u])
                if remainingConsumers[p] == 0 {
                    release(maxConsumerEnd[p], unitDevice[p], pg.units[p].outputBytes)
                    for c in 0..<deviceCount { release(maxConsumerEnd[p], c, received[p][c]) }
                }
            }
            for e in pg.outEdges[u] { remainingPreds[Int(pg.edgeDestination[Int(e)])] -= 1 }
            for t in newlyCached {
                for v in pg.tensorConsumers[t] where Int(v) != u && remainingPreds[Int(v)] == 0 && unitDevice[Int(v)] < 0 && allowed(Int(v), d) {
                    excluded[Int(v) * deviceCount + d] = nil
                }
            }
        }
        return UnitPlacement(deviceOfUnit: unitDevice.map { Int32($0) }, predictedMakespanMicros: end.max() ?? 0)
    }
}
