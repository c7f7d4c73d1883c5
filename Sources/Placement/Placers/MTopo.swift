/// m-TOPO: walk the units in topological order and fill device 0, then device 1, ... as Baechi's
/// uniform mode does: a device takes groups while the memory they would hold together (scratch,
/// outputs and parameters, summed) stays within the total over the devices plus the largest
/// group. Unlike Baechi's, it also moves on when the device's own memory would overflow, by
/// `SequentialFootprint`'s estimate; the last device fills up to its memory.
public struct MTopoPlacer: Placer {
    public init() {}
    public var algorithm: Algorithm { .mTOPO }

    public func place(_ pg: PlacementGraph, limits: [Int], tieBreak: TieBreak) throws(PlacementFailure) -> UnitPlacement {
        let deviceCount = limits.count
        var footprint = SequentialFootprint(pg, deviceCount: deviceCount)
        var groupMemory = [Int](repeating: 0, count: pg.groupCount)
        for unit in pg.units {
            groupMemory[Int(unit.group)] += unit.temporaryBytes + unit.outputBytes + unit.retainedBytes + unit.persistentBytes
        }
        let cap = groupMemory.reduce(0, +) / deviceCount + (groupMemory.max() ?? 0)
        var held = [Int](repeating: 0, count: deviceCount)
        var device = 0
        var placed = [Bool](repeating: false, count: pg.groupCount)
        for u in pg.topologicalOrder {
            let g = Int(pg.units[Int(u)].group)
            if placed[g] { continue }
            let group = pg.groupUnits[g]
            while device < deviceCount {
                let last = device == deviceCount - 1
                let balanced = last || held[device] + groupMemory[g] <= cap || footprint.isEmpty(device)
                if balanced && footprint.peakIfAdded(group, to: device) <= limits[device] { break }
                device += 1
            }
            guard device < deviceCount else { throw SequentialFootprint.groupDidNotFit(pg, group: g, algorithm: .mTOPO) }
            footprint.add(group, to: device)
            held[device] += groupMemory[g]
            placed[g] = true
        }
        return UnitPlacement(deviceOfUnit: footprint.deviceOfUnit)
    }
}
