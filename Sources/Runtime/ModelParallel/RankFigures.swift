import Basics

/// One rank's figures over a model-parallel run, as they travel to rank 0 for `ModelParallelReport`:
/// medians over the measured steps, in seconds, and the rank's peak memory.
struct RankFigures: Sendable, Equatable {
    var compute: Double
    var communicationWait: Double
    var other: Double
    var peakBytes: Int

    /// How many doubles `packed` holds.
    static let packedCount = 4

    /// The message a rank sends: its figures in a fixed order (byte counts are exact as doubles up to 2^53).
    var packed: [Double] { [compute, communicationWait, other, Double(peakBytes)] }

    init(compute: Double, communicationWait: Double, other: Double, peakBytes: Int) {
        self.compute = compute
        self.communicationWait = communicationWait
        self.other = other
        self.peakBytes = peakBytes
    }

    /// The figures rank `rank` sent as `packed`.
    init(rank: Int, packed: [Double]) throws {
        guard packed.count == Self.packedCount else {
            throw LogicError("rank \(rank) sent \(packed.count) figures, \(Self.packedCount) expected")
        }
        self.init(compute: packed[0], communicationWait: packed[1], other: packed[2], peakBytes: Int(packed[3]))
    }
}
