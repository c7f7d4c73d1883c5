import Basics
/// Fixed-point numbers in Z_(2^64), so that masks hide a value perfectly and cancel exactly.
///
/// A mask drawn uniformly from Z_(2^64) and added with wrap-around makes the masked value uniform
/// whatever the value was; masks that cancel in a sum then leave the sum exact. Floating-point masks
/// can do neither: a large mask swamps the value's low bits, a small one hides little. Values are
/// scaled by 2^32 and rounded, so a sum is exact to 2^-33 per addend while it stays within +-2^31.
public enum FixedPoint {
    /// Bits after the binary point.
    public static let fractionBits = 32
    static let scale = 4_294_967_296.0  // 2^32
    /// The largest magnitude an encoded value may have: leaves room for sums of 2^(31 - 30) = 2 such
    /// values at their extreme, and for sums of hundreds of values of ordinary size.
    public static let limit = 1_073_741_824.0  // 2^30

    /// A value that fixed point cannot carry.
    public struct OutOfRange: UserFacingError {
        public let value: Double
        public var exitStatus: ExitStatus { .runtime }
        public var description: String {
            "a message value \(value) is outside the fixed-point range +-2^30 of masked sums"
                + " (a very small rho makes messages large: raise --rho-after)"
        }
    }

    public static func encode(_ value: Double) throws(OutOfRange) -> UInt64 {
        guard value.isFinite, abs(value) < limit else { throw OutOfRange(value: value) }
        return UInt64(bitPattern: Int64((value * scale).rounded()))
    }

    public static func encode(_ values: [Double]) throws(OutOfRange) -> [UInt64] {
        var encoded = [UInt64](repeating: 0, count: values.count)
        var bad: Double?
        values.withUnsafeBufferPointer { v in
            encoded.withUnsafeMutableBufferPointer { e in
                for i in 0..<v.count {
                    let value = v[i]
                    guard abs(value) < limit else { bad = value; return }  // NaN fails the test too
                    e[i] = UInt64(bitPattern: Int64((value * scale).rounded()))
                }
            }
        }
        if let bad { throw OutOfRange(value: bad) }
        return encoded
    }

    public static func decode(_ value: UInt64) -> Double { Double(Int64(bitPattern: value)) / scale }

    public static func decode(_ values: [UInt64]) -> [Double] {
        [Double](unsafeUninitializedCapacity: values.count) { out, initialized in
            values.withUnsafeBufferPointer { v in
                for i in 0..<v.count { out[i] = Double(Int64(bitPattern: v[i])) / scale }
            }
            initialized = values.count
        }
    }

    /// Element-wise sum with wrap-around: how masked shares combine.
    public static func add(_ a: inout [UInt64], _ b: [UInt64]) {
        precondition(a.count == b.count, "sums of vectors of different lengths")
        a.withUnsafeMutableBufferPointer { x in
            b.withUnsafeBufferPointer { y in for i in 0..<x.count { x[i] &+= y[i] } }
        }
    }
}
