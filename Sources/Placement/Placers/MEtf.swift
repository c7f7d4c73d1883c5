/// m-ETF: memory-constrained earliest task first (Hwang, Chow, Anger and Lee's ETF with Baechi's
/// memory rules). See `ListScheduler` for the exact rules and how it avoids rescanning.
public struct METFPlacer: Placer {
    public init() {}
    public var algorithm: Algorithm { .mETF }

    public func place(_ pg: PlacementGraph, limits: [Int], tieBreak: TieBreak) throws(PlacementFailure) -> UnitPlacement {
        var scheduler = ListScheduler(pg, limits: limits, favorite: nil, algorithm: .mETF, tieBreak: tieBreak)
        return try scheduler.run()
    }
}
