import Basics
@testable import Runtime
import Testing

/// The per-rank figures of a model-parallel report travel as doubles and come back the same.
@Suite struct RankFiguresTests {
    @Test func figuresRoundTripThroughTheirMessage() throws {
        let figures = RankFigures(compute: 0.012_345_678_9, communicationWait: 1e-9, other: 0, peakBytes: (1 << 40) + 3,
                                  peakResidentBytes: 123_456_789_012, startResidentBytes: 37 << 20, dataBytes: 1)
        #expect(figures.packed.count == RankFigures.packedCount)
        #expect(try RankFigures(rank: 2, packed: figures.packed) == figures)
        #expect(figures.packed == [0.012_345_678_9, 1e-9, 0, 1_099_511_627_779, 123_456_789_012, 38_797_312, 1])
    }

    @Test func aMessageOfAnotherLengthIsABug() {
        #expect(throws: LogicError.self) { try RankFigures(rank: 1, packed: [1, 2, 3]) }
        #expect(throws: LogicError.self) { try RankFigures(rank: 1, packed: [1, 2, 3, 4, 5, 6, 7, 8]) }
    }
}
