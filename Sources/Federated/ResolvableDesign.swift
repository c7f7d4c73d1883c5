/// A communication schedule for the federated rounds: parallel classes, each a partition of the sites
/// into groups, with no two sites sharing a group in more than one class.
///
/// Sites are numbered 0..<sites. When every group has three sites and every pair meets exactly once this
/// is a Kirkman triple system; otherwise it is a resolvable packing, which is what other site counts get.
public struct ResolvableDesign: Sendable, Equatable, Codable {
    public let sites: Int
    public let classes: [[[Int]]]
    /// How the design was built, for people reading a report.
    public let construction: String

    public init(sites: Int, classes: [[[Int]]], construction: String) {
        self.sites = sites
        self.classes = classes
        self.construction = construction
    }

    /// Every group sorted and every class sorted by its first site, so equal designs compare equal.
    public func normalized() -> ResolvableDesign {
        let sorted = classes.map { $0.map { $0.sorted() }.sorted { $0.lexicographicallyPrecedes($1) } }
        return ResolvableDesign(sites: sites, classes: sorted, construction: construction)
    }

    /// True when this is a Kirkman triple system: triples only, all (sites - 1) / 2 classes.
    public var isKirkmanTripleSystem: Bool {
        sites % 6 == 3 && classes.count == (sites - 1) / 2
            && classes.allSatisfy { $0.allSatisfy { $0.count == 3 } } && DesignVerifier.problems(in: self).isEmpty
    }

    /// The most classes any resolvable packing on `sites` sites can have (groups of 3 to 5 sites).
    ///
    /// Three arguments, the smallest wins: each class puts every site with at least two new partners, so
    /// at most floor((V-1)/2) classes; each class uses at least V pairs when 3 divides V, V+2 (one group
    /// of four) when V = 1 mod 3 and V+4 (two groups of four beat one of five) when V = 2 mod 3, out of
    /// V(V-1)/2 pairs; and a group in one class meets each group of another class at most once, so with
    /// two or more classes no group is larger than floor(V/3), which rules out a second class when V is
    /// not a multiple of 3 and V < 12, and for V = 6.
    public static func classBound(sites v: Int) -> Int {
        if v < 3 { return 0 }
        if v <= 5 { return 1 }
        if v % 3 != 0 && v < 12 { return 1 }
        if v == 6 { return 1 }
        let perSite = (v - 1) / 2
        let pairsPerClass = v + [0, 2, 4][v % 3]
        let byPairs = v * (v - 1) / 2 / pairsPerClass
        return min(perSite, byPairs)
    }
}

/// Checks the properties every schedule we use must have; it has the last word over any construction.
public enum DesignVerifier {
    /// What is wrong with `design`, one sentence each; empty when it is a valid resolvable packing.
    public static func problems(in design: ResolvableDesign) -> [String] {
        var problems: [String] = []
        let v = design.sites
        guard v >= 3 else { return ["a design needs at least 3 sites, got \(v)"] }
        if design.classes.isEmpty { problems.append("the design has no classes") }
        var met = [Bool](repeating: false, count: v * v)
        for (index, parallelClass) in design.classes.enumerated() {
            var seen = [Bool](repeating: false, count: v)
            for group in parallelClass {
                if group.count < 3 || group.count > 5 {
                    problems.append("class \(index) has a group of \(group.count) sites \(group) (groups hold 3 to 5)")
                }
                for site in group {
                    guard site >= 0 && site < v else {
                        problems.append("class \(index) names site \(site), outside 0..<\(v)")
                        continue
                    }
                    if seen[site] { problems.append("class \(index) puts site \(site) in two groups") }
                    seen[site] = true
                }
                for a in group where a >= 0 && a < v {
                    for b in group where b > a && b < v {
                        if met[a * v + b] { problems.append("sites \(a) and \(b) share a group twice (again in class \(index))") }
                        met[a * v + b] = true
                    }
                }
            }
            if let missing = seen.firstIndex(of: false) {
                problems.append("class \(index) leaves out site \(missing)")
            }
        }
        return problems
    }

    /// True when every pair of sites shares exactly one group: the design uses every pair.
    public static func coversEveryPair(_ design: ResolvableDesign) -> Bool {
        let v = design.sites
        var count = 0
        for parallelClass in design.classes {
            for group in parallelClass { count += group.count * (group.count - 1) / 2 }
        }
        return problems(in: design).isEmpty && count == v * (v - 1) / 2
    }
}
