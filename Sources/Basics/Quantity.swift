/// Parses and prints byte counts, rates and durations the way people write them.
public enum Quantity {
    public enum ParseError: Error, CustomStringConvertible {
        case invalid(String, expected: String)
        /// Readable, but beyond what fedbaechi computes with exactly (`limit` says how far it goes).
        case outOfRange(String, limit: String)
        public var description: String {
            switch self {
            case .invalid(let text, let expected): return "cannot read \"\(shown(text))\" as \(expected)"
            case .outOfRange(let text, let limit): return "\"\(shown(text))\" is out of range: \(limit)"
            }
        }

        /// A value as typed, but one line and not endless.
        private func shown(_ text: String) -> String {
            let flat = String(text.unicodeScalars.map { $0.value < 0x20 ? " " : Character($0) })
            return flat.count > 40 ? String(flat.prefix(40)) + "..." : flat
        }
    }

    /// Longer than any quantity anyone writes; the parse below is quadratic in the length.
    static let maximumTextLength = 64

    /// The longest duration fedbaechi reads (about 11.6 days): times are summed over graphs of up to
    /// millions of ops and must stay exact in a Double.
    public static let maximumMicros = 1e12

    /// The largest memory size (1 EiB): a device's memory is summed and doubled by the placers'
    /// searches, which must stay far from `Int.max`.
    public static let maximumBytes = 1 << 60

    /// The longest leading number of `text` and the unit after it.
    private static func split(_ text: String) -> (Double, String)? {
        guard text.utf8.count <= maximumTextLength else { return nil }
        let trimmed = Array(text.trimmingWhitespace())
        var length = trimmed.count
        while length > 0 {
            if let value = Double(String(trimmed[..<length])), value.isFinite {
                return (value, String(trimmed[length...]).trimmingWhitespace())
            }
            length -= 1
        }
        return nil
    }

    private static let byteUnits: [String: Double] = [
        "b": 1, "byte": 1, "bytes": 1,
        "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
        "k": 1024, "m": 1_048_576, "g": 1_073_741_824, "t": 1_099_511_627_776,
        "kib": 1024, "mib": 1_048_576, "gib": 1_073_741_824, "tib": 1_099_511_627_776,
    ]

    /// `2GiB`, `8 GB`, `500MiB`, `1073741824B` (decimal kB/MB/GB, binary KiB/MiB/GiB).
    public static func bytes(_ text: String) throws(ParseError) -> Int {
        // No unit is no memory size: `1.5` meant GiB or GB, surely not 2 bytes.
        let expected = "a memory size with its unit (e.g. 8GiB, 500MB, 1073741824B)"
        guard let (value, unit) = split(text), let scale = byteUnits[unit.lowercased()], value >= 0 else {
            throw .invalid(text, expected: expected)
        }
        let bytes = (value * scale).rounded()
        guard bytes <= Double(maximumBytes) else { throw .outOfRange(text, limit: "at most 1 EiB (1152921504606846976 bytes)") }
        return Int(bytes)
    }

    /// `5.7GB/s`, `800MB/s`, `12.5GiB/s` (bytes) or `100Gb/s`, `10Gbit/s` (bits): returns bytes per second.
    public static func bandwidth(_ text: String) throws(ParseError) -> Double {
        let expected = "a bandwidth (e.g. 5.7GB/s, 100Gb/s)"
        guard let (value, unit) = split(text), value > 0, unit.lowercased().hasSuffix("/s") else {
            throw .invalid(text, expected: expected)
        }
        let rate = String(unit.dropLast(2))
        let prefixes: [String: Double] = ["": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12]
        let bytesPerSecond: Double
        if rate.lowercased().hasSuffix("bit") || rate.hasSuffix("b") {
            let prefix = rate.lowercased().hasSuffix("bit") ? String(rate.dropLast(3)) : String(rate.dropLast(1))
            guard let scale = prefixes[prefix.lowercased()] else { throw .invalid(text, expected: expected) }
            bytesPerSecond = value * scale / 8
        } else {
            guard !rate.isEmpty, let scale = byteUnits[rate.lowercased()] else { throw .invalid(text, expected: expected) }
            bytesPerSecond = value * scale
        }
        // Outside this range transfer times become infinite or vanish below a double's resolution.
        guard bytesPerSecond >= 1, bytesPerSecond <= 1e15 else {
            throw .outOfRange(text, limit: "a bandwidth from 1B/s to 1PB/s")
        }
        return bytesPerSecond
    }

    /// `134us`, `0.2ms`, `1s`, `500ns`: returns microseconds.
    public static func micros(_ text: String) throws(ParseError) -> Double {
        let expected = "a duration (e.g. 134us, 0.2ms)"
        let units: [String: Double] = ["ns": 1e-3, "us": 1, "µs": 1, "ms": 1e3, "s": 1e6]
        guard let (value, unit) = split(text), value >= 0, let scale = units[unit.lowercased()] else {
            throw .invalid(text, expected: expected)
        }
        guard value * scale <= maximumMicros else {
            throw .outOfRange(text, limit: "at most 1e12us (the longest time a graph may hold)")
        }
        return value * scale
    }

    /// `8 GiB`, `512 MiB`, `123 B`: binary units, up to three significant decimals.
    public static func formatBytes(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        return formatNumber(value) + " " + units[unit]
    }

    /// `140.9 ms`, `850 us`, `2.31 s`.
    public static func formatMicros(_ micros: Double) -> String {
        if micros >= 1e6 { return formatNumber(micros / 1e6) + " s" }
        if micros >= 1e3 { return formatNumber(micros / 1e3) + " ms" }
        return formatNumber(micros) + " us"
    }

    /// `5.7 GB/s`.
    public static func formatBandwidth(bytesPerSecond: Double) -> String {
        if bytesPerSecond >= 1e9 { return formatNumber(bytesPerSecond / 1e9) + " GB/s" }
        if bytesPerSecond >= 1e6 { return formatNumber(bytesPerSecond / 1e6) + " MB/s" }
        return formatNumber(bytesPerSecond) + " B/s"
    }

    /// At most three decimals, trailing zeros dropped; whole numbers above 100 keep one decimal at most.
    public static func formatNumber(_ value: Double) -> String {
        let decimals = abs(value) >= 100 ? 1 : abs(value) >= 10 ? 2 : 3
        return fixed(value, decimals: decimals, trim: true)
    }

    /// `value` with exactly `decimals` decimals (trailing zeros dropped when `trim`).
    public static func fixed(_ value: Double, decimals: Int, trim: Bool = false) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        guard abs(value) < 1e15 else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = scaled / scale
        let integer = whole.rounded(.towardZero)
        var fraction = String(Int64(scaled - integer * scale))
        while fraction.count < decimals { fraction = "0" + fraction }
        if trim { while fraction.hasSuffix("0") { fraction.removeLast() } }
        let sign = value < 0 && scaled != 0 ? "-" : ""
        let integerText = String(Int64(integer))
        return fraction.isEmpty ? sign + integerText : sign + integerText + "." + fraction
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace.
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
