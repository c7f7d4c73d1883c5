import Basics

/// The memory of devices filled with whole groups in topological order, as if each device ran
/// its units one after another in that order: parameters all along; a unit's scratch memory while
/// it runs; its outputs from then until every consumer has been placed on the same device (kept
/// to the end when a consumer is elsewhere); each tensor received from another device from its
/// first use on.
///
/// It estimates, it does not bound: the simulator interleaves devices and the planner checks
/// every plan against the simulated step (and asks again with less memory when it goes over).
struct SequentialFootprint {
    let pg: PlacementGraph
    let deviceCount: Int
    private(set) var deviceOfUnit: [Int32]
    private var remainingConsumers: [Int32]
    private var leaves: [Bool]
    private var received: [Bool]
    private var persistent: [Int]
    private var live: [Int]
    private(set) var peak: [Int]
    private var mark: [Int32]
    private var tensorMark: [Int32]
    private var generation: Int32 = 0

    init(_ pg: PlacementGraph, deviceCount: Int) {
        self.pg = pg
        self.deviceCount = deviceCount
        deviceOfUnit = [Int32](repeating: -1, count: pg.unitCount)
        remainingConsumers = (0..<pg.unitCount).map { Int32(pg.outEdges.count($0)) }
        leaves = [Bool](repeating: false, count: pg.unitCount)
        received = [Bool](repeating: false, count: pg.graph.tensorCount * deviceCount)
        persistent = [Int](repeating: 0, count: deviceCount)
        live = [Int](repeating: 0, count: deviceCount)
        peak = [Int](repeating: 0, count: deviceCount)
        mark = [Int32](repeating: 0, count: pg.unitCount)
        tensorMark = [Int32](repeating: 0, count: pg.graph.tensorCount)
    }

    func isEmpty(_ d: Int) -> Bool { peak[d] == 0 && persistent[d] == 0 }

    /// The failure of a placer that filled the devices in order and found no room for group `g`.
    static func groupDidNotFit(_ pg: PlacementGraph, group g: Int, algorithm: Algorithm) -> PlacementFailure {
        var alone = SequentialFootprint(pg, deviceCount: 1)
        let need = alone.peakIfAdded(pg.groupUnits[g], to: 0)
        return PlacementFailure(algorithm: algorithm, culprit: pg.describe(group: g),
                                reason: "\(pg.describe(group: g)) did not fit: it needs \(Quantity.formatBytes(need)) on its own and the devices it could still go to are full")
    }

    /// The device's peak if `group` (the units of one colocation group) joined it now.
    mutating func peakIfAdded(_ group: some Collection<Int32>, to d: Int) -> Int {
        generation &+= 1
        let g = generation
        for u in group { mark[Int(u)] = g }
        var extra = 0
        var groupPersistent = 0
        for u in group {
            let unit = pg.units[Int(u)]
            groupPersistent += unit.persistentBytes
            extra += unit.temporaryBytes + unit.outputBytes + unit.retainedBytes
            for e in pg.inEdges[Int(u)] {
                let p = Int(pg.edgeSource[Int(e)])
                if mark[p] == g || deviceOfUnit[p] == Int32(d) { continue }
                for item in pg.items(ofEdge: Int(e)) {
                    let t = Int(pg.itemTensor[item])
                    if received[t * deviceCount + d] || tensorMark[t] == g { continue }
                    tensorMark[t] = g
                    extra += pg.itemBytes[item]
                }
            }
        }
        return max(peak[d], persistent[d] + groupPersistent + live[d] + extra)
    }

    mutating func add(_ group: some Collection<Int32>, to d: Int) {
        for u in group { persistent[d] += pg.units[Int(u)].persistentBytes }
        for u in group {
            let unit = pg.units[Int(u)]
            for e in pg.inEdges[Int(u)] {
                let p = Int(pg.edgeSource[Int(e)])
                guard deviceOfUnit[p] != Int32(d) else { continue }
                for item in pg.items(ofEdge: Int(e)) where !received[Int(pg.itemTensor[item]) * deviceCount + d] {
                    received[Int(pg.itemTensor[item]) * deviceCount + d] = true
                    live[d] += pg.itemBytes[item]
                }
            }
            live[d] += unit.temporaryBytes + unit.outputBytes + unit.retainedBytes
            peak[d] = max(peak[d], persistent[d] + live[d])
            live[d] -= unit.temporaryBytes
            deviceOfUnit[Int(u)] = Int32(d)
            for e in pg.inEdges[Int(u)] {
                let p = Int(pg.edgeSource[Int(e)])
                remainingConsumers[p] -= 1
                if deviceOfUnit[p] != Int32(d) { leaves[p] = true }
                if remainingConsumers[p] == 0 && !leaves[p] && deviceOfUnit[p] == Int32(d) { live[d] -= pg.units[p].outputBytes }
            }
        }
    }
}
