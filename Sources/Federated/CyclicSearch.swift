import Basics

/// Points Z_n x {0..<levels} plus `fixed` extra points that Z_n leaves in place: the setting of the
/// cyclic ("starter") constructions. Point ids: level * n + x for (x, level), levels * n + i for the
/// i-th fixed point, so ids run 0..<count and a design developed from it needs no relabelling.
struct CyclicPointSet {
    let n: Int
    let levels: Int
    let fixed: Int

    var count: Int { n * levels + fixed }
    var pureCount: Int { levels * (n / 2) }
    var mixedCount: Int { levels * (levels - 1) / 2 * n }
    var orbitCount: Int { pureCount + mixedCount + fixed * levels }

    func id(_ x: Int, level: Int) -> Int { level * n + ((x % n) + n) % n }
    func fixedId(_ i: Int) -> Int { levels * n + i }

    func translate(_ point: Int, by g: Int) -> Int {
        point >= levels * n ? point : (point / n) * n + (point % n + g) % n
    }

    private func levelPairIndex(_ a: Int, _ b: Int) -> Int {
        // a < b; pairs ordered (0,1), (0,2), ..., (1,2), ...
        a * levels - a * (a + 1) / 2 + (b - a - 1)
    }

    /// The Z_n-orbit of the pair {a, b} when it has full length n; nil for two fixed points and for
    /// the half-turn difference n/2 on one level, whose orbit is short (a group through such a pair
    /// would meet its partner again in the translate by n/2).
    func pairOrbit(_ a: Int, _ b: Int) -> Int? {
        let finite = levels * n
        if a >= finite && b >= finite { return nil }
        if a >= finite || b >= finite {
            let (f, p) = a >= finite ? (a - finite, b) : (b - finite, a)
            return pureCount + mixedCount + f * levels + p / n
        }
        let (la, xa, lb, xb) = (a / n, a % n, b / n, b % n)
        if la == lb {
            let d = (xb - xa + n) % n
            let m = min(d, n - d)
            if m == 0 || 2 * m == n { return nil }
            return la * (n / 2) + m - 1
        }
        let (lo, xlo, hi, xhi) = la < lb ? (la, xa, lb, xb) : (lb, xb, la, xa)
        return pureCount + levelPairIndex(lo, hi) * n + (xhi - xlo + n) % n
    }

    /// The orbits of all pairs of `group`, or nil when one is short or two coincide.
    func orbits(of group: [Int]) -> [Int]? {
        var result: [Int] = []
        for i in 0..<group.count {
            for j in (i + 1)..<group.count {
                guard let o = pairOrbit(group[i], group[j]), !result.contains(o) else { return nil }
                result.append(o)
            }
        }
        return result
    }

    /// The n translates of a base class: n parallel classes in which every used orbit appears once.
    func develop(_ base: [[Int]]) -> [[[Int]]] {
        (0..<n).map { g in base.map { $0.map { translate($0, by: g) } } }
    }
}

/// Finds a base parallel class on a `CyclicPointSet` by exact cover: every point in one group, every
/// pair orbit at most once (exactly once when `orbitsExact`), groups of three except the `preset` ones.
struct BaseClassSearch {
    let points: CyclicPointSet
    var orbitsExact: Bool
    /// Groups chosen beforehand (for instance the groups of four); their points and orbits are taken.
    var preset: [[Int]] = []
    /// Rows that take orbits but no points (the transversal starters of the 3-level construction).
    var orbitOnlyRows: [[Int]] = []
    /// Symmetry breaking: the first fixed point's group has (0, level 0) in it.
    var anchorFirstFixed = false
    /// When set (and `orbitsExact` is false), exactly this many orbits stay unused: the orbits become
    /// primary columns and `slack` extra columns take the unused ones, which prunes far better than
    /// leaving the orbits secondary.
    var slack: Int?

    struct Solution {
        var groups: [[Int]]
        /// Indices into `orbitOnlyRows` of the rows chosen.
        var orbitRows: [Int]
    }

    func run(seed: UInt64, budget: Int) -> Solution? {
        var pointTaken = [Bool](repeating: false, count: points.count)
        var orbitTaken = [Bool](repeating: false, count: points.orbitCount)
        for group in preset {
            guard let os = points.orbits(of: group) else { return nil }
            for p in group { if pointTaken[p] { return nil }; pointTaken[p] = true }
            for o in os { if orbitTaken[o] { return nil }; orbitTaken[o] = true }
        }
        let freePoints = (0..<points.count).filter { !pointTaken[$0] }
        var pointColumn = [Int](repeating: -1, count: points.count)
        for (i, p) in freePoints.enumerated() { pointColumn[p] = i }
        let freeOrbits = (0..<points.orbitCount).filter { !orbitTaken[$0] }
        var orbitColumn = [Int](repeating: -1, count: points.orbitCount)
        for (i, o) in freeOrbits.enumerated() { orbitColumn[o] = freePoints.count + i }

        var rows: [[Int]] = []
        var groups: [[Int]?] = []
        var orbitRowIndex: [Int] = []
        let anchor = points.fixed > 0 ? points.fixedId(0) : -1
        let m = freePoints.count
        for i in 0..<m {
            for j in (i + 1)..<m {
                let a = freePoints[i], b = freePoints[j]
                guard let ab = points.pairOrbit(a, b), orbitColumn[ab] >= 0 else { continue }
                for k in (j + 1)..<m {
                    let c = freePoints[k]
                    guard let ac = points.pairOrbit(a, c), let bc = points.pairOrbit(b, c),
                          orbitColumn[ac] >= 0, orbitColumn[bc] >= 0, ab != ac, ab != bc, ac != bc else { continue }
                    if anchorFirstFixed && (a == anchor || b == anchor || c == anchor)
                        && !(a == points.id(0, level: 0) || b == points.id(0, level: 0) || c == points.id(0, level: 0)) {
                        continue
                    }
                    rows.append([pointColumn[a], pointColumn[b], pointColumn[c],
                                 orbitColumn[ab], orbitColumn[ac], orbitColumn[bc]])
                    groups.append([a, b, c])
                    orbitRowIndex.append(-1)
                }
            }
        }
        for (index, orbitRow) in orbitOnlyRows.enumerated() {
            guard orbitRow.allSatisfy({ orbitColumn[$0] >= 0 }) else { continue }
            rows.append(orbitRow.map { orbitColumn[$0] })
            groups.append(nil)
            orbitRowIndex.append(index)
        }
        let slackColumns = orbitsExact ? 0 : (slack ?? 0)
        let orbitsPrimary = orbitsExact || slack != nil
        if slackColumns > 0 {
            let first = freePoints.count + freeOrbits.count
            for o in 0..<freeOrbits.count {
                for s in 0..<slackColumns {
                    rows.append([freePoints.count + o, first + s])
                    groups.append(nil)
                    orbitRowIndex.append(-2)
                }
            }
        }
        var generator = SplitMix64(seed: seed)
        var order = Array(rows.indices)
        order.shuffle(using: &generator)
        let primary = orbitsPrimary ? m + freeOrbits.count + slackColumns : m
        var cover = ExactCover(primary: primary, secondary: orbitsPrimary ? 0 : freeOrbits.count,
                               rows: order.map { rows[$0] })
        guard let chosen = cover.solve(budget: budget) else { return nil }
        var solution = Solution(groups: preset, orbitRows: [])
        for r in chosen {
            let original = order[r]
            if let group = groups[original] {
                solution.groups.append(group)
            } else if orbitRowIndex[original] >= 0 {
                solution.orbitRows.append(orbitRowIndex[original])
            }
        }
        return solution
    }
}
