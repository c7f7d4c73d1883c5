import CClp

/// The linear program behind m-SCT (Hanen and Munier's relaxation), solved with COIN-OR CLP.
///
/// Variables: `x_e` in [0, 1] per unit edge (0: the child runs where the parent ran), start time
/// `s_i >= 0` per unit, makespan `w`. Minimise `w` subject to
/// `s_i + p_i + c_ij x_ij <= s_j` per edge, `sum_j x_ij >= |succ(i)| - 1` (at most one favourite
/// child), `sum_i x_ij >= |pred(j)| - 1` (at most one favourite parent) and `s_i + p_i <= w`.
///
/// CLP's primal simplex starts from the feasible point with no favourites (`x = 1`, earliest start
/// times), which it improves along the critical paths. Simplex time grows faster than linearly,
/// so a graph of more than `windowUnits` units is solved as a rolling horizon: windows of
/// `windowUnits` consecutive units in topological order, each an exact LP over its units and
/// their incoming edges, with the start times of earlier windows fixed (at their earliest
/// values given the chosen `x`) and each parent's favourite budget reduced by what earlier
/// windows used. A graph within one window gets the exact LP.
public struct FavoriteChildLP: Sendable {
    /// `x_e` per unit edge.
    public let edgeValues: [Double]
    /// The LP's optimal makespan for one window (a lower bound with unlimited devices); with
    /// several windows, the makespan of the earliest schedule under the chosen `x`.
    public let makespanMicros: Double
    public let windows: Int
    public let solveSeconds: Double

    public static let defaultWindowUnits = 2000

    public enum SolveError: Error, CustomStringConvertible {
        case status(Int32)
        public var description: String {
            switch self {
            case .status(let s): return "the m-SCT linear program was not solved to optimality (CLP status \(s))"
            }
        }
    }

    public init(_ pg: PlacementGraph, windowUnits: Int = FavoriteChildLP.defaultWindowUnits) throws(SolveError) {
        let started = ContinuousClock.now
        let unitCount = pg.unitCount
        let edgeCount = pg.edgeSource.count
        let window = max(1, windowUnits)
        var x = [Double](repeating: 1, count: edgeCount)
        var start = [Double](repeating: 0, count: unitCount)
        var budgetUsed = [Double](repeating: 0, count: unitCount)
        var windowOf = [Int32](repeating: 0, count: unitCount)
        for (position, u) in pg.topologicalOrder.enumerated() { windowOf[Int(u)] = Int32(position / window) }
        let windowCount = (unitCount + window - 1) / window
        var exactMakespan = 0.0

        var localUnit = [Int32](repeating: -1, count: unitCount)
        var localSource = [Int32](repeating: -1, count: unitCount)
        for w in 0..<windowCount {
            let units = pg.topologicalOrder[(w * window)..<min((w + 1) * window, unitCount)]
            for (k, u) in units.enumerated() { localUnit[Int(u)] = Int32(k) }
            var edges = [Int32]()
            var firstEdge = [Int]()
            for u in units {
                firstEdge.append(edges.count)
                edges.append(contentsOf: pg.inEdges[Int(u)])
            }
            let n = units.count, m = edges.count

            // Rows: precedence per edge; then favourite-parent, favourite-child and completion rows.
            var rowLower = [Double](), rowUpper = [Double]()
            rowLower.reserveCapacity(m + 2 * n)
            rowUpper.reserveCapacity(m + 2 * n)
            var columns = [[(Int32, Double)]](repeating: [], count: m + n + 1)
            for (k, e) in edges.enumerated() {
                let i = Int(pg.edgeSource[Int(e)]), j = Int(pg.edgeDestination[Int(e)])
                let row = Int32(rowLower.count)
                rowLower.append(-.infinity)
                if localUnit[i] >= 0 && windowOf[i] == Int32(w) {
                    rowUpper.append(-pg.units[i].computeMicros)
                    columns[m + Int(localUnit[i])].append((row, 1))
                } else {
                    rowUpper.append(-(start[i] + pg.units[i].computeMicros))
                }
                columns[m + Int(localUnit[j])].append((row, -1))
                columns[k].append((row, pg.edgeComm[Int(e)]))
            }
            for (local, u) in units.enumerated() where pg.inEdges.count(Int(u)) >= 2 {
                let row = Int32(rowLower.count)
                rowLower.append(Double(pg.inEdges.count(Int(u)) - 1))
                rowUpper.append(.infinity)
                for k in firstEdge[local]..<(firstEdge[local] + pg.inEdges.count(Int(u))) { columns[k].append((row, 1)) }
            }
            // A parent may keep a favourite among these edges only within what earlier windows left.
            var sources = [Int32]()
            var edgesOf = [[Int]]()
            for (k, e) in edges.enumerated() {
                let i = Int(pg.edgeSource[Int(e)])
                if localSource[i] < 0 {
                    localSource[i] = Int32(sources.count)
                    sources.append(Int32(i))
                    edgesOf.append([])
                }
                edgesOf[Int(localSource[i])].append(k)
            }
            for (s, i) in sources.enumerated() {
                localSource[Int(i)] = -1
                let left = max(0, 1 - budgetUsed[Int(i)])
                let lower = Double(edgesOf[s].count) - left
                guard lower > 0 else { continue }
                let row = Int32(rowLower.count)
                rowLower.append(lower)
                rowUpper.append(.infinity)
                for k in edgesOf[s] { columns[k].append((row, 1)) }
            }
            for u in units where pg.outEdges[Int(u)].allSatisfy({ windowOf[Int(pg.edgeDestination[Int($0)])] != Int32(w) }) {
                let row = Int32(rowLower.count)
                rowLower.append(-.infinity)
                rowUpper.append(-pg.units[Int(u)].computeMicros)
                columns[m + Int(localUnit[Int(u)])].append((row, 1))
                columns[m + n].append((row, -1))
            }

            // The feasible start: no favourites, earliest starts.
            var initial = [Double](repeating: 0, count: m + n + 1)
            for k in 0..<m { initial[k] = 1 }
            var offset = 0
            for u in units {
                var s = 0.0
                for e in pg.inEdges[Int(u)] {
                    let i = Int(pg.edgeSource[Int(e)])
                    let si = windowOf[i] == Int32(w) ? initial[m + Int(localUnit[i])] : start[i]
                    s = max(s, si + pg.units[i].computeMicros + pg.edgeComm[Int(e)])
                }
                initial[m + offset] = s
                initial[m + n] = max(initial[m + n], s + pg.units[Int(u)].computeMicros)
                offset += 1
            }

            let solution = try Self.solve(columns: columns, rowLower: rowLower, rowUpper: rowUpper,
                                          edgeColumns: m, initial: initial)
            for (k, e) in edges.enumerated() {
                let value = min(1, max(0, solution[k]))
                x[Int(e)] = value
                budgetUsed[Int(pg.edgeSource[Int(e)])] += 1 - value
            }
            if windowCount == 1 { exactMakespan = solution[m + n] }
            // Earliest starts under the chosen x, fixed for later windows.
            for u in units {
                var s = 0.0
                for e in pg.inEdges[Int(u)] {
                    let i = Int(pg.edgeSource[Int(e)])
                    s = max(s, start[i] + pg.units[i].computeMicros + pg.edgeComm[Int(e)] * x[Int(e)])
                }
                start[Int(u)] = s
            }
            for u in units { localUnit[Int(u)] = -1 }
        }
        var forward = 0.0
        for u in 0..<unitCount { forward = max(forward, start[u] + pg.units[u].computeMicros) }
        edgeValues = x
        makespanMicros = windowCount == 1 ? exactMakespan : forward
        windows = windowCount
        solveSeconds = (ContinuousClock.now - started).seconds
    }

    /// Minimises the last column subject to the rows; `initial` is a feasible point.
    private static func solve(columns: [[(Int32, Double)]], rowLower: [Double], rowUpper: [Double],
                              edgeColumns: Int, initial: [Double]) throws(SolveError) -> [Double] {
        let columnCount = columns.count
        var starts = [CoinBigIndex]()
        starts.reserveCapacity(columnCount + 1)
        var rows = [Int32](), values = [Double]()
        for column in columns {
            starts.append(CoinBigIndex(rows.count))
            for (row, value) in column.sorted(by: { $0.0 < $1.0 }) {
                rows.append(row)
                values.append(value)
            }
        }
        starts.append(CoinBigIndex(rows.count))
        let columnLower = [Double](repeating: 0, count: columnCount)
        var columnUpper = [Double](repeating: .infinity, count: columnCount)
        for k in 0..<edgeColumns { columnUpper[k] = 1 }
        var objective = [Double](repeating: 0, count: columnCount)
        objective[columnCount - 1] = 1

        guard let model = Clp_newModel() else { throw .status(-1) }
        defer { Clp_deleteModel(model) }
        Clp_setLogLevel(model, 0)
        Clp_loadProblem(model, Int32(columnCount), Int32(rowLower.count), starts, rows, values,
                        columnLower, columnUpper, objective, rowLower, rowUpper)
        if let column = Clp_primalColumnSolution(model) {
            for k in 0..<columnCount { column[k] = initial[k] }
        }
        Clp_primal(model, 1)
        if Clp_status(model) != 0 { Clp_dual(model, 0) }
        let status = Clp_status(model)
        guard status == 0, let solution = Clp_getColSolution(model) else { throw .status(status) }
        return Array(UnsafeBufferPointer(start: solution, count: columnCount))
    }

    /// Favourite child of each unit (-1 for none): edges with `x_e` below `threshold`, taken in
    /// increasing `x_e` (larger communication first on ties) so every unit keeps at most one
    /// favourite child and is the favourite child of at most one parent.
    public func favoriteChildren(_ pg: PlacementGraph, threshold: Double) -> [Int32] {
        var candidates = (0..<edgeValues.count).filter { edgeValues[$0] < threshold }
        candidates.sort { a, b in
            (edgeValues[a], -pg.edgeComm[a], a) < (edgeValues[b], -pg.edgeComm[b], b)
        }
        var favorite = [Int32](repeating: -1, count: pg.unitCount)
        var hasParent = [Bool](repeating: false, count: pg.unitCount)
        for e in candidates {
            let s = Int(pg.edgeSource[e]), t = Int(pg.edgeDestination[e])
            if favorite[s] < 0 && !hasParent[t] {
                favorite[s] = Int32(t)
                hasParent[t] = true
            }
        }
        return favorite
    }
}
