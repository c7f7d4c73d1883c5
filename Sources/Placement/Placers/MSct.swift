import Synchronization

/// m-SCT: m-ETF plus favourite children from the small-communication-times linear program
/// (Hanen and Munier), solved with COIN-OR CLP. Edges whose relaxed value is below `threshold`
/// mark favourite children; a device that just ran a parent waits for its favourite child when
/// the child would start there earliest, so the pair skips the transfer (see `ListScheduler`).
///
/// The linear program depends only on the graph, so it is solved once per placement graph and
/// reused for every memory limit. It knows no devices, so with links that differ per pair its edge
/// weights are the slowest link's (`PlacementGraph.edgeComm`, see `Links.slowest`): a pair whose
/// transfer would be expensive on some link stays favoured; where the scheduler then picks a device,
/// each transfer costs its own pair's link.
public final class MSCTPlacer: Placer {
    public let threshold: Double
    /// Solutions by placement graph (the graph is kept so its identity cannot be reused).
    private let solutions = Mutex<[ObjectIdentifier: (PlacementGraph, Result<FavoriteChildLP, FavoriteChildLP.SolveError>)]>([:])

    public init(threshold: Double = 0.1) { self.threshold = threshold }
    public var algorithm: Algorithm { .mSCT }

    /// The solved linear program for `pg` (solved on first use).
    public func linearProgram(for pg: PlacementGraph) throws(FavoriteChildLP.SolveError) -> FavoriteChildLP {
        let key = ObjectIdentifier(pg)
        if let cached = solutions.withLock({ $0[key] }) { return try cached.1.get() }
        let result: Result<FavoriteChildLP, FavoriteChildLP.SolveError>
        do { result = .success(try FavoriteChildLP(pg)) } catch { result = .failure(error) }
        solutions.withLock { $0[key] = (pg, result) }
        return try result.get()
    }

    public func place(_ pg: PlacementGraph, limits: [Int], tieBreak: TieBreak) throws(PlacementFailure) -> UnitPlacement {
        let lp: FavoriteChildLP
        do { lp = try linearProgram(for: pg) } catch {
            throw PlacementFailure(algorithm: .mSCT, culprit: nil, reason: error.description)
        }
        let favorite = lp.favoriteChildren(pg, threshold: threshold)
        var scheduler = ListScheduler(pg, limits: limits, favorite: favorite, algorithm: .mSCT, tieBreak: tieBreak)
        return try scheduler.run()
    }
}
