/// m-TOPO: walk the units in topological order and fill device 0, then device 1, ... up to a
/// uniform cap (the total footprint over the devices plus the largest group), never above a
/// device's own memory limit (which Baechi's uniform mode forgets to check). The last device may
/// fill up to its limit.
///
/// Memory is measured by `StaticFootprint`, so the plan fits whatever the schedule; with the cap
/// fixed, a larger memory limit never makes it fail (it is monotone in memory).
public struct MTopoPlacer: Placer {
    public init() {}
    public var algorithm: Algorithm { .mTOPO }

    public func place(_ pg: PlacementGraph, limits: [Int]) throws(PlacementFailure) -> UnitPlacement {
        let deviceCount = limits.count
        var footprint = StaticFootprint(pg, deviceCount: deviceCount)
        let cap = Self.uniformCap(pg, deviceCount: deviceCount)
        var deviceOfUnit = [Int32](repeating: -1, count: pg.unitCount)
        var device = 0
        for u in pg.topologicalOrder {
            if deviceOfUnit[Int(u)] >= 0 { continue }
            let group = pg.groupUnits[Int(pg.units[Int(u)].group)]
            while device < deviceCount {
                let limit = device == deviceCount - 1 ? limits[device] : min(cap, limits[device])
                if footprint.totalIfAdded(group, to: device) <= limit { break }
                device += 1
            }
            guard device < deviceCount else {
                var alone = StaticFootprint(pg, deviceCount: 1)
                let need = alone.totalIfAdded(group, to: 0)
                let g = Int(pg.units[Int(u)].group)
                throw PlacementFailure(algorithm: .mTOPO, culprit: pg.describe(group: g),
                                       reason: "\(pg.describe(group: g)) did not fit: it needs \(Quantity.formatBytes(need)) (parameters, outputs and inputs held at once) and every device from the first it could use onwards is full")
            }
            footprint.add(group, to: device)
            for member in group { deviceOfUnit[Int(member)] = Int32(device) }
        }
        return UnitPlacement(deviceOfUnit: deviceOfUnit)
    }

    /// Total footprint / devices + the largest group's footprint on its own.
    static func uniformCap(_ pg: PlacementGraph, deviceCount: Int) -> Int {
        var total = 0
        for node in pg.graph.nodes { total += node.persistentBytes + node.outputBytes.reduce(0, +) }
        var largest = 0
        var scratch = StaticFootprint(pg, deviceCount: 1)
        for g in 0..<pg.groupCount {
            largest = max(largest, scratch.totalIfAdded(pg.groupUnits[g], to: 0))
        }
        return total / max(1, deviceCount) + largest
    }
}
