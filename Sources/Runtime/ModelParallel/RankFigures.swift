import Basics

/// One rank's figures over a model-parallel run, as they travel to rank 0 for `ModelParallelReport`:
/// medians over the measured steps, in seconds, and the rank's memory: the peak its executor
/// counted, the peak resident memory the operating system reports and what it held at start.
struct RankFigures: Sendable, Equatable {
    var compute: Double
    var communicationWait: Double
    var other: Double
    var peakBytes: Int
    var peakResidentBytes: Int
    var startResidentBytes: Int
    /// Examples the rank holds.
    var dataBytes: Int

    /// How many doubles `packed` holds.
    static let packedCount = 7

    /// The message a rank sends: its figures in a fixed order (byte counts are exact as doubles up to 2^53).
    var packed: [Double] {
        [compute, communicationWait, other, Double(peakBytes), Double(peakResidentBytes), Double(startResidentBytes), Double(dataBytes)]
    }

    init(compute: Double, communicationWait: Double, other: Double, peakBytes: Int, peakResidentBytes: Int = 0,
         startResidentBytes: Int = 0, dataBytes: Int = 0) {
        self.compute = compute
        self.communicationWait = communicationWait
        self.other = other
        self.peakBytes = peakBytes
        self.peakResidentBytes = peakResidentBytes
        self.startResidentBytes = startResidentBytes
        self.dataBytes = dataBytes
    }

    /// The figures rank `rank` sent as `packed`.
    init(rank: Int, packed: [Double]) throws {
        guard packed.count == Self.packedCount else {
            throw LogicError("rank \(rank) sent \(packed.count) figures, \(Self.packedCount) expected")
        }
        self.init(compute: packed[0], communicationWait: packed[1], other: packed[2], peakBytes: Int(packed[3]),
                  peakResidentBytes: Int(packed[4]), startResidentBytes: Int(packed[5]), dataBytes: Int(packed[6]))
    }
}
