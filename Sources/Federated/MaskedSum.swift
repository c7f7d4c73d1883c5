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
        try values.withUnsafeBufferPointer { (v) throws(OutOfRange) in
            try encoded.withUnsafeMutableBufferPointer { (e) throws(OutOfRange) in try encode(v, into: e) }
        }
        return encoded
    }

    /// `encode` into a buffer of the same length, without allocating: the aggregation's per-chunk pass.
    public static func encode(_ v: UnsafeBufferPointer<Double>, into e: UnsafeMutableBufferPointer<UInt64>) throws(OutOfRange) {
        precondition(v.count == e.count, "encoding into a buffer of another length")
        for i in 0..<v.count {
            let value = v[i]
            guard abs(value) < limit else { throw OutOfRange(value: value) }  // NaN fails the test too
            e[i] = UInt64(bitPattern: Int64((value * scale).rounded()))
        }
    }

    public static func decode(_ value: UInt64) -> Double { Double(Int64(bitPattern: value)) / scale }

    /// `decode` into a buffer of the same length.
    public static func decode(_ v: UnsafeBufferPointer<UInt64>, into out: UnsafeMutableBufferPointer<Double>) {
        precondition(v.count == out.count, "decoding into a buffer of another length")
        for i in 0..<v.count { out[i] = Double(Int64(bitPattern: v[i])) / scale }
    }

    public static func decode(_ values: [UInt64]) -> [Double] {
        [Double](unsafeUninitializedCapacity: values.count) { out, initialized in
            values.withUnsafeBufferPointer { v in
                for i in 0..<v.count { out[i] = Double(Int64(bitPattern: v[i])) / scale }
            }
            initialized = values.count
        }
    }

    /// Element-wise sum with wrap-around: how masked shares combine.
    /// `add` on buffers of the same length.
    public static func add(_ x: UnsafeMutableBufferPointer<UInt64>, _ y: UnsafeBufferPointer<UInt64>) {
        precondition(x.count == y.count, "sums of vectors of different lengths")
        for i in 0..<x.count { x[i] &+= y[i] }
    }

    public static func add(_ a: inout [UInt64], _ b: [UInt64]) {
        precondition(a.count == b.count, "sums of vectors of different lengths")
        a.withUnsafeMutableBufferPointer { x in
            b.withUnsafeBufferPointer { y in for i in 0..<x.count { x[i] &+= y[i] } }
        }
    }
}
