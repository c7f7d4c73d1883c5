/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator whose whole state is one word, so
/// the same seed gives bitwise the same weights, masks, shuffles, searches and synthetic graphs on
/// every machine and in every Swift release. Every module draws from this one definition.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one named purpose (a parameter, a dropout node at a step), independent of the
    /// order in which purposes ask for numbers.
    public init(seed: UInt64, stream: String, index: UInt64 = 0) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in stream.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        var mixer = SplitMix64(seed: seed ^ hash)
        state = mixer.next() ^ (index &* 0x9e37_79b9_7f4a_7c15)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits: exactly representable as a Float.
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, bound) without modulo bias worth caring about (bound is far below 2^32): the top 32
    /// random bits scaled by `bound` (Lemire's multiply-shift). The parentheses matter: Swift's `>>` binds
    /// tighter than `*`.
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0 && bound <= 1 << 32, "nextIndex(below:) needs 0 < bound <= 2^32")
        return Int(((next() >> 32) * UInt64(bound)) >> 32)
    }

    /// A seeded Fisher-Yates shuffle of 0..<count.
    public mutating func permutation(_ count: Int) -> [Int] {
        var order = Array(0..<count)
        var i = count - 1
        while i > 0 {
            order.swapAt(i, nextIndex(below: i + 1))
            i -= 1
        }
        return order
    }

    /// Uniform in `0..<bound` by the remainder of one word (bias below 2^-32 for the bounds used);
    /// a bound of 0 or less counts as 1. Always draws one word. The placers, searches and synthetic
    /// graphs draw with this, training with `nextIndex(below:)`: each keeps its own seeded results.
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }

    /// Uniform in `low...high` through `below(_:)`.
    public mutating func between(_ low: Int, _ high: Int) -> Int { low + below(high - low + 1) }
}
