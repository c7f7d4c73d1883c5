import Testing
@testable import Federated

@Suite struct DesignTests {
    /// The KTS(9) written in the digest (the affine plane AG(2,3)).
    static let digestKTS9 = ResolvableDesign(sites: 9, classes: [
        [[0, 1, 5], [2, 6, 7], [3, 4, 8]],
        [[1, 6, 8], [3, 5, 7], [0, 2, 4]],
        [[1, 4, 7], [0, 3, 6], [2, 5, 8]],
        [[4, 5, 6], [0, 7, 8], [1, 2, 3]],
    ], construction: "digest")

    /// Kirkman's schoolgirl problem: the usual day-by-day solution on girls 0..14 (Sunday to Saturday).
    static let publishedKTS15 = ResolvableDesign(sites: 15, classes: [
        [[0, 5, 10], [1, 6, 11], [2, 7, 12], [3, 8, 13], [4, 9, 14]],
        [[0, 1, 4], [2, 3, 6], [7, 8, 11], [9, 10, 13], [12, 14, 5]],
        [[1, 2, 5], [3, 4, 7], [8, 9, 12], [10, 11, 14], [13, 0, 6]],
        [[4, 5, 8], [6, 7, 10], [11, 12, 0], [13, 14, 2], [1, 3, 9]],
        [[2, 4, 10], [3, 5, 11], [6, 8, 14], [7, 9, 0], [12, 13, 1]],
        [[4, 6, 12], [5, 7, 13], [8, 10, 1], [9, 11, 2], [14, 0, 3]],
        [[10, 12, 3], [11, 13, 4], [14, 1, 7], [0, 2, 8], [5, 6, 9]],
    ], construction: "published")

    @Test func digestKTS9PassesTheVerifier() {
        #expect(DesignVerifier.problems(in: Self.digestKTS9).isEmpty)
        #expect(Self.digestKTS9.isKirkmanTripleSystem)
        #expect(DesignVerifier.coversEveryPair(Self.digestKTS9))
    }

    @Test func publishedSchoolgirlSolutionIsAKirkmanTripleSystem() {
        #expect(DesignVerifier.problems(in: Self.publishedKTS15).isEmpty)
        #expect(Self.publishedKTS15.isKirkmanTripleSystem)
        // Our own KTS(15) has the same shape: 7 classes of 5 triples, all 105 pairs once.
        let ours = KirkmanTripleSystems.make(sites: 15)
        #expect(ours?.isKirkmanTripleSystem == true)
        #expect(ours?.classes.count == Self.publishedKTS15.classes.count)
    }

    @Test func verifierRejectsBrokenDesigns() {
        var classes = Self.digestKTS9.classes
        classes[1][0] = [0, 1, 8]  // pair 0-1 again, and site 1 twice in class 1
        #expect(!DesignVerifier.problems(in: ResolvableDesign(sites: 9, classes: classes, construction: "")).isEmpty)
        let missing = ResolvableDesign(sites: 9, classes: [[[0, 1, 2], [3, 4, 5]]], construction: "")
        #expect(DesignVerifier.problems(in: missing).contains { $0.contains("leaves out site 6") })
        let pairGroup = ResolvableDesign(sites: 5, classes: [[[0, 1, 2], [3, 4]]], construction: "")
        #expect(DesignVerifier.problems(in: pairGroup).contains { $0.contains("group of 2") })
        let outside = ResolvableDesign(sites: 3, classes: [[[0, 1, 3]]], construction: "")
        #expect(!DesignVerifier.problems(in: outside).isEmpty)
    }

    @Test func affineGeometryAndTriplingGiveKirkmanSystems() {
        #expect(KirkmanTripleSystems.affineGeometry(dimension: 3).isKirkmanTripleSystem)
        if let kts15 = KirkmanTripleSystems.make(sites: 15) {
            #expect(KirkmanTripleSystems.tripled(kts15).isKirkmanTripleSystem)
        }
        #expect(KirkmanTripleSystems.tripled(Self.publishedKTS15).isKirkmanTripleSystem)
    }

    @Test func classBoundsMatchHandCounts() {
        // floor((V-1)/2) for multiples of 3 ...
        #expect(ResolvableDesign.classBound(sites: 9) == 4)
        #expect(ResolvableDesign.classBound(sites: 12) == 5)
        #expect(ResolvableDesign.classBound(sites: 18) == 8)
        // ... the pair count for V = 1, 2 mod 3: 78 pairs / 15 per class = 5 for V = 13, 190 / 24 = 7 for V = 20 ...
        #expect(ResolvableDesign.classBound(sites: 13) == 5)
        #expect(ResolvableDesign.classBound(sites: 20) == 7)
        #expect(ResolvableDesign.classBound(sites: 16) == 6)
        // ... and a single class when groups of another class could hold at most two sites.
        for v in [4, 5, 6, 7, 8, 10, 11] { #expect(ResolvableDesign.classBound(sites: v) == 1, "V=\(v)") }
    }

    @Test func sevenSitesAdmitNoSecondClass() {
        // Brute force: no group of 3 to 5 among 7 sites meets both groups of {0,1,2}, {3,4,5,6} at most once.
        let first = [[0, 1, 2], [3, 4, 5, 6]]
        var found = false
        for mask in 0..<(1 << 7) where (3...5).contains(mask.nonzeroBitCount) {
            let group = (0..<7).filter { mask & (1 << $0) != 0 }
            if first.allSatisfy({ g in group.filter { g.contains($0) }.count <= 1 }) { found = true }
        }
        #expect(!found)
    }
}
