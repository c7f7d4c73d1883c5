import Basics

/// Kirkman triple systems KTS(v), v = 3 (mod 6): all (v-1)/2 parallel classes of v/3 triples, every pair
/// of sites in exactly one triple.
///
/// Routes, tried in this order (each result still goes through `DesignVerifier`):
/// - the affine geometry AG(m, 3) for v = 3^m: lines of each direction form a class;
/// - tripling KTS(u) -> KTS(3u) (u = 3 mod 6): a resolvable transversal design TD(3,3) on each block;
/// - 1-rotational over Z_{v-1} plus a fixed point (v = 3, 9 mod 24), by exact-cover search for a base
///   class invariant under the half turn;
/// - two levels Z_n x {0,1} plus a fixed point (v = 2n+1, n odd; the Ray-Chaudhuri-Wilson setting
///   for 2q+1), one base class whose n translates are the classes;
/// - three levels Z_n x {0,1,2} (v = 3n, n odd; the setting of the 3q construction): one base class
///   with n translates plus (n-1)/2 transversal starters that each give one fixed class.
/// The searches are seeded and budgeted, so a size either gets the same design every time or none.
/// A 1-rotational KTS over an abelian group with more than one involution (Z_2 x Z_10 for v = 21, say)
/// cannot exist: a pair {x, x + s} with s an involution other than the half turn has a short orbit, and
/// any block through it with a full orbit would cover it twice. Such sizes use the level constructions.
public enum KirkmanTripleSystems {
    public static func make(sites v: Int) -> ResolvableDesign? {
        guard v >= 3, v % 6 == 3 else { return nil }
        if v == 3 { return ResolvableDesign(sites: 3, classes: [[[0, 1, 2]]], construction: "single triple") }
        if let m = exponentOfThree(v) { return affineGeometry(dimension: m) }
        if v % 9 == 0, let inner = make(sites: v / 3) { return tripled(inner) }
        if v % 24 == 3 || v % 24 == 9, let design = oneRotational(sites: v) { return design }
        if v % 12 == 3, let design = twoLevel(sites: v) { return design }
        if v % 12 == 9, let design = threeLevel(sites: v) { return design }
        return nil
    }

    static func exponentOfThree(_ v: Int) -> Int? {
        var x = v, m = 0
        while x > 1 && x % 3 == 0 { x /= 3; m += 1 }
        return x == 1 ? m : nil
    }

    /// AG(m, 3): points are vectors of Z_3^m (site = sum x_i 3^i), lines {p, p+d, p+2d}.
    public static func affineGeometry(dimension m: Int) -> ResolvableDesign {
        let v = Int(pow3(m))
        func add(_ p: Int, _ d: Int) -> Int {
            var result = 0, place = 1, a = p, b = d
            for _ in 0..<m {
                result += ((a % 3 + b % 3) % 3) * place
                a /= 3; b /= 3; place *= 3
            }
            return result
        }
        var classes: [[[Int]]] = []
        for d in 1..<v {
            // One direction per pair {d, 2d}: keep d when its lowest non-zero digit is 1.
            var x = d
            while x % 3 == 0 { x /= 3 }
            guard x % 3 == 1 else { continue }
            var lines: [[Int]] = []
            for p in 0..<v {
                let line = [p, add(p, d), add(add(p, d), d)]
                if line.min() == p { lines.append(line) }
            }
            classes.append(lines)
        }
        return ResolvableDesign(sites: v, classes: classes, construction: "affine geometry AG(\(m),3)")
    }

    private static func pow3(_ m: Int) -> Int { (0..<m).reduce(1) { x, _ in x * 3 } }

    /// KTS(u) -> KTS(3u). Site (a, x), a in Z_3, is a*u + x. Each block {x,y,z} of class P gives, for
    /// each k in Z_3, the triples {(a,x), (a+k,y), (a-k,z)}: coordinates summing to 0 mod 3, so the nine
    /// cross pairs are covered once, three disjoint triples per k. Together with the class of columns
    /// {(0,x),(1,x),(2,x)} that is 3(u-1)/2 + 1 = (3u-1)/2 classes.
    public static func tripled(_ inner: ResolvableDesign) -> ResolvableDesign {
        let u = inner.sites
        var classes: [[[Int]]] = [(0..<u).map { [$0, u + $0, 2 * u + $0] }]
        for parallelClass in inner.classes {
            for k in 0..<3 {
                var triples: [[Int]] = []
                for block in parallelClass {
                    let (x, y, z) = (block[0], block[1], block[2])
                    for a in 0..<3 {
                        triples.append([a * u + x, ((a + k) % 3) * u + y, ((a + 3 - k) % 3) * u + z])
                    }
                }
                classes.append(triples)
            }
        }
        return ResolvableDesign(sites: 3 * u, classes: classes, construction: "tripled from KTS(\(u)) [\(inner.construction)]")
    }

    /// Seeds tried, each with its node budget, before a search gives up.
    static let searchSeeds: [UInt64] = Array(1...12)
    static let searchBudget = 200_000

    /// Points Z_{v-1} and a fixed point; the base class holds {inf, 0, t} (t = (v-1)/2) and pairs of
    /// triples B, B + t, so its translates by 0..<t are all the classes. B's images mod t partition the
    /// non-zero residues mod t and the differences of the B's use every class {d, -d} other than t once.
    static func oneRotational(sites v: Int) -> ResolvableDesign? {
        let n = v - 1, t = n / 2
        guard t >= 4 else { return nil }
        let imageColumns = t - 1
        var rows: [[Int]] = []
        var triples: [[Int]] = []
        func differenceClass(_ a: Int, _ b: Int) -> Int {
            let d = (b - a + n) % n
            return min(d, n - d)
        }
        for i in 1..<t {
            for j in (i + 1)..<t {
                for k in (j + 1)..<t {
                    for b in [j, j + t] {
                        for c in [k, k + t] {
                            let d1 = differenceClass(i, b), d2 = differenceClass(i, c), d3 = differenceClass(b, c)
                            guard d1 != d2 && d1 != d3 && d2 != d3 else { continue }
                            rows.append([i - 1, j - 1, k - 1, imageColumns + d1 - 1, imageColumns + d2 - 1, imageColumns + d3 - 1])
                            triples.append([i, b, c])
                        }
                    }
                }
            }
        }
        for seed in searchSeeds {
            var generator = SplitMix64(seed: seed)
            var order = Array(rows.indices)
            order.shuffle(using: &generator)
            var cover = ExactCover(primary: 2 * (t - 1), secondary: 0, rows: order.map { rows[$0] })
            guard let chosen = cover.solve(budget: searchBudget) else { continue }
            var base: [[Int]] = [[n, 0, t]]
            for r in chosen {
                let triple = triples[order[r]]
                base.append(triple)
                base.append(triple.map { ($0 + t) % n })
            }
            let classes = (0..<t).map { g in base.map { $0.map { $0 == n ? n : ($0 + g) % n } } }
            let design = ResolvableDesign(sites: v, classes: classes, construction: "1-rotational over Z_\(n)")
            if DesignVerifier.problems(in: design).isEmpty { return design }
        }
        return nil
    }

    /// v = 2n + 1, n odd: points Z_n x {0,1} plus a fixed point. One base class uses every pure
    /// difference of each level, every mixed difference and both orbits through the fixed point once.
    static func twoLevel(sites v: Int) -> ResolvableDesign? {
        let n = (v - 1) / 2
        guard n % 2 == 1 else { return nil }
        let points = CyclicPointSet(n: n, levels: 2, fixed: 1)
        var search = BaseClassSearch(points: points, orbitsExact: true)
        search.anchorFirstFixed = true
        for seed in searchSeeds {
            guard let solution = search.run(seed: seed, budget: searchBudget) else { continue }
            let design = ResolvableDesign(sites: v, classes: points.develop(solution.groups),
                                          construction: "two levels over Z_\(n) plus a fixed point")
            if DesignVerifier.problems(in: design).isEmpty { return design }
        }
        return nil
    }

    /// v = 3n, n odd: points Z_n x {0,1,2}. A base class (n translates) plus (n-1)/2 transversal
    /// starters {(0,0), (a,1), (b,2)}, each of whose n translates is one more class.
    static func threeLevel(sites v: Int) -> ResolvableDesign? {
        let n = v / 3
        guard n % 2 == 1, n >= 3 else { return nil }
        let points = CyclicPointSet(n: n, levels: 3, fixed: 0)
        var starters: [[Int]] = []
        var transversals: [[Int]] = []
        for a in 0..<n {
            for b in 0..<n {
                let t = [points.id(0, level: 0), points.id(a, level: 1), points.id(b, level: 2)]
                guard let orbits = points.orbits(of: t) else { continue }
                starters.append(orbits)
                transversals.append(t)
            }
        }
        var search = BaseClassSearch(points: points, orbitsExact: true)
        search.orbitOnlyRows = starters
        for seed in searchSeeds {
            guard let solution = search.run(seed: seed, budget: searchBudget) else { continue }
            var classes = points.develop(solution.groups)
            for index in solution.orbitRows {
                let t = transversals[index]
                classes.append((0..<n).map { g in t.map { points.translate($0, by: g) } })
            }
            let design = ResolvableDesign(sites: v, classes: classes,
                                          construction: "three levels over Z_\(n) with \((n - 1) / 2) transversal starters")
            if DesignVerifier.problems(in: design).isEmpty { return design }
        }
        return nil
    }
}
