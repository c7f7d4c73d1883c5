/// e^x for eight lanes at once, for the softmax of large outputs (a language model's vocabulary):
/// Swift on Linux calls libm's `expf` one element at a time, which made the softmax cross-entropy a
/// third of a gru-lm step.
///
/// Cephes' single-precision method: x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in two constants
/// so that n ln 2 is exact), e^r by a degree-7 polynomial, 2^n put into the exponent bits. Within 2
/// units in the last place of the correctly rounded result on [-87.3, 88] (checked against Double's
/// `exp` in the tests); inputs below -87.3 give the smallest normal number's neighbourhood instead of
/// subnormals or 0 (a softmax weight of 1e-38 beside a largest weight of 1), above 88 give e^88; NaN
/// stays NaN. The same lanes give the same result on every run.
@inline(__always)
func exponential(_ x: Lanes) -> Lanes {
    var x = x.replacing(with: 88, where: x .> 88)
    x = x.replacing(with: -87.336_54, where: x .< -87.336_54)
    // Adding 1.5 * 2^23 rounds x / ln 2 to the nearest integer, which lands in the low mantissa bits.
    let magic: Float = 12_582_912
    let shifted = x * 1.442_695_04 + magic
    let n = shifted - magic
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p: Lanes = Lanes(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let y = p * r * r + r + 1
    let exponent = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(Lanes(repeating: magic), to: SIMD8<Int32>.self)
    return y * unsafeBitCast((exponent &+ 127) &<< 23, to: Lanes.self)
}

extension SIMD8 where Scalar == Float {
    /// The lanes' sum, added in lane order (SIMD's own `sum()` leaves the order unspecified).
    @inline(__always) var orderedSum: Float {
        var total: Float = 0
        for lane in 0..<8 { total += self[lane] }
        return total
    }
}
