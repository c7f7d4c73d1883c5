/// The hand-made baseline: cut the units, in topological order, into contiguous runs of about
/// equal compute time, one run per device (the way people split a model into pipeline stages by
/// hand). A run that would overflow its device's memory (by `SequentialFootprint`'s estimate)
/// spills onto the next device.
public struct ExpertPlacer: Placer {
    public init() {}
    public var algorithm: Algorithm { .expert }

    public func place(_ pg: PlacementGraph, limits: [Int], tieBreak: TieBreak) throws(PlacementFailure) -> UnitPlacement {
        let deviceCount = limits.count
        var footprint = SequentialFootprint(pg, deviceCount: deviceCount)
        let total = max(pg.units.reduce(0) { $0 + $1.computeMicros }, .leastNonzeroMagnitude)
        var device = 0
        var done = 0.0
        for u in pg.topologicalOrder {
            if footprint.deviceOfUnit[Int(u)] >= 0 { continue }
            let g = Int(pg.units[Int(u)].group)
            let group = pg.groupUnits[g]
            let compute = group.reduce(0.0) { $0 + pg.units[Int($1)].computeMicros }
            // The device whose share of the compute holds this group's midpoint.
            let wanted = min(deviceCount - 1, Int((done + compute / 2) / total * Double(deviceCount)))
            device = max(device, wanted)
            while device < deviceCount && footprint.peakIfAdded(group, to: device) > limits[device] { device += 1 }
            guard device < deviceCount else { throw SequentialFootprint.groupDidNotFit(pg, group: g, algorithm: .expert) }
            footprint.add(group, to: device)
            done += compute
        }
        return UnitPlacement(deviceOfUnit: footprint.deviceOfUnit)
    }
}
