import Basics
import Foundation
@testable import Runtime
import Testing

/// A site's round figures travel to every site as doubles and come back the same.
@Suite struct SiteRoundStatsTests {
    func stats(site: Int, accuracy: Double?) -> SiteRoundStats {
        SiteRoundStats(site: site, trainExamples: 6_000 + site, trainLoss: 0.123_456_789, testLoss: 2.5 + Double(site),
                       testAccuracy: accuracy, testExamples: 1_000, bytesSent: (1 << 40) + 7, localSeconds: 3.25,
                       aggregationSeconds: 1e-6)
    }

    /// Every field, compared by hand: the struct has no equality of its own.
    func expectSame(_ a: SiteRoundStats, _ b: SiteRoundStats, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.site == b.site, sourceLocation: sourceLocation)
        #expect(a.trainExamples == b.trainExamples, sourceLocation: sourceLocation)
        #expect(a.trainLoss.bitPattern == b.trainLoss.bitPattern, sourceLocation: sourceLocation)
        #expect(a.testLoss.bitPattern == b.testLoss.bitPattern, sourceLocation: sourceLocation)
        #expect(a.testAccuracy.map(\.bitPattern) == b.testAccuracy.map(\.bitPattern), sourceLocation: sourceLocation)
        #expect(a.testExamples == b.testExamples, sourceLocation: sourceLocation)
        #expect(a.bytesSent == b.bytesSent, sourceLocation: sourceLocation)
        #expect(a.localSeconds.bitPattern == b.localSeconds.bitPattern, sourceLocation: sourceLocation)
        #expect(a.aggregationSeconds.bitPattern == b.aggregationSeconds.bitPattern, sourceLocation: sourceLocation)
    }

    @Test(arguments: [0.8125, 0, nil] as [Double?])
    func figuresRoundTripThroughTheirMessage(accuracy: Double?) throws {
        let original = stats(site: 4, accuracy: accuracy)
        #expect(original.packed.count == SiteRoundStats.packedCount)
        expectSame(try SiteRoundStats(site: 4, packed: original.packed[...]), original)
    }

    /// What allgather hands every site: the sites' messages one after another, cut back by site.
    @Test func gatheredMessagesSplitBySite() throws {
        let sites = (0..<3).map { stats(site: $0, accuracy: $0 == 1 ? nil : 0.5 + Double($0) / 8) }
        let all = sites.flatMap(\.packed)
        let n = SiteRoundStats.packedCount
        for s in 0..<3 { expectSame(try SiteRoundStats(site: s, packed: all[(s * n)..<((s + 1) * n)]), sites[s]) }
    }

    @Test func aMessageOfAnotherLengthIsABug() {
        #expect(throws: LogicError.self) { try SiteRoundStats(site: 0, packed: [1, 2, 3][...]) }
    }
}
