/// Everything on one device: the one with the most memory (the first such). Whether it fits is
/// decided by the simulator's peak memory, which for one device does not depend on any choice.
public struct SinglePlacer: Placer {
    public init() {}
    public var algorithm: Algorithm { .single }

    public func place(_ pg: PlacementGraph, limits: [Int], tieBreak: TieBreak) throws(PlacementFailure) -> UnitPlacement {
        let device = Self.device(limits: limits)
        return UnitPlacement(deviceOfUnit: [Int32](repeating: Int32(device), count: pg.unitCount))
    }

    static func device(limits: [Int]) -> Int {
        var best = 0
        for d in limits.indices where limits[d] > limits[best] { best = d }
        return best
    }
}
