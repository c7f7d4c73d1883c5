import Basics
import CZlib
import Foundation

/// One array as NumPy saves it (`numpy.save`, and each member of `numpy.savez`): a shape, an element
/// type and the elements in C (row-major) order as little-endian bytes. How users bring their own
/// data: `np.savez("train.npz", x=images, y=labels)`.
public struct NumPyArray: Sendable, Equatable {
    /// The element types read: NumPy's numeric types and bool. Others (complex, strings, dates,
    /// objects, structured types) have no use as training data and are refused with a message.
    public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
        case bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float16, float32, float64

        /// Bytes per element.
        public var itemSize: Int {
            switch self {
            case .bool, .int8, .uint8: 1
            case .int16, .uint16, .float16: 2
            case .int32, .uint32, .float32: 4
            case .int64, .uint64, .float64: 8
            }
        }

        /// The `descr` NumPy writes for it: `<f4`, and `|u1` for one byte, which has no byte order.
        public var descr: String { (itemSize == 1 ? "|" : "<") + code }

        /// Integers and bool: what `integers()` converts.
        public var isInteger: Bool { !isFloatingPoint }

        public var isFloatingPoint: Bool { self == .float16 || self == .float32 || self == .float64 }

        public var description: String { rawValue }

        /// NumPy's type code without the byte order: `b1`, `i8`, `u1`, `f4`.
        var code: String {
            let kind = switch self {
            case .bool: "b"
            case .int8, .int16, .int32, .int64: "i"
            case .uint8, .uint16, .uint32, .uint64: "u"
            case .float16, .float32, .float64: "f"
            }
            return kind + String(itemSize)
        }

        /// The type of a code (`f4`); nil for one not read.
        init?(code: String) {
            guard let match = Self.allCases.first(where: { $0.code == code }) else { return nil }
            self = match
        }
    }

    /// The most data one array may hold: 4 GiB, a billion float32s. A header is checked against it
    /// (and against the file's size) before anything is allocated.
    public static let maximumBytes = 1 << 32
    /// NumPy's own limit on dimensions (64 since NumPy 2, 32 before).
    public static let maximumDimensions = 64

    public let shape: [Int]
    public let dtype: DType
    /// The elements in C order, little-endian: `count * dtype.itemSize` bytes.
    public let bytes: [UInt8]

    /// Elements: the product of the shape (1 for a 0-d array, 0 for an empty one).
    public var count: Int { shape.reduce(1, *) }

    /// An array of `dtype` over little-endian `bytes` in C order; their number must match the shape.
    public init(shape: [Int], dtype: DType, bytes: [UInt8]) {
        precondition(shape.count <= Self.maximumDimensions && shape.allSatisfy { $0 >= 0 }, "not a NumPy shape: \(shape)")
        precondition(NPYHeader.dataBytes(shape, dtype) != nil, "shape \(shape) holds more than \(Self.maximumBytes) bytes")
        precondition(bytes.count == shape.reduce(dtype.itemSize, *), "\(bytes.count) bytes for shape \(shape) of \(dtype)")
        self.shape = shape
        self.dtype = dtype
        self.bytes = bytes
    }

    /// A float32 array.
    public init(shape: [Int], floats: [Float]) {
        self.init(shape: shape, dtype: .float32, bytes: Self.littleEndianBytes(floats.map(\.bitPattern)))
    }

    /// An int64 array (labels, as `y.astype(np.int64)` gives them).
    public init(shape: [Int], int64: [Int64]) {
        self.init(shape: shape, dtype: .int64, bytes: Self.littleEndianBytes(int64))
    }

    /// Every element as a Float, whatever the type: integers rounded to the nearest Float (exact up to
    /// 2^24), float64 rounded to nearest, bool as 0 and 1.
    public func floats() -> [Float] {
        bytes.withUnsafeBytes { raw in
            let count = self.count
            func each(_ element: (Int) -> Float) -> [Float] {
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for i in 0..<count { buffer[i] = element(i) }
                    initialized = count
                }
            }
            return switch dtype {
            case .bool: each { raw[$0] != 0 ? 1 : 0 }
            case .uint8: each { Float(raw[$0]) }
            case .int8: each { Float(Int8(bitPattern: raw[$0])) }
            case .int16: each { Float(Int16(bitPattern: Self.load(raw, $0, as: UInt16.self))) }
            case .uint16: each { Float(Self.load(raw, $0, as: UInt16.self)) }
            case .int32: each { Float(Int32(bitPattern: Self.load(raw, $0, as: UInt32.self))) }
            case .uint32: each { Float(Self.load(raw, $0, as: UInt32.self)) }
            case .int64: each { Float(Int64(bitPattern: Self.load(raw, $0, as: UInt64.self))) }
            case .uint64: each { Float(Self.load(raw, $0, as: UInt64.self)) }
            case .float16: each { Self.float(half: Self.load(raw, $0, as: UInt16.self)) }
            case .float32: each { Float(bitPattern: Self.load(raw, $0, as: UInt32.self)) }
            case .float64: each { Float(Double(bitPattern: Self.load(raw, $0, as: UInt64.self))) }
            }
        }
    }

    /// Every element as an Int, for integer and bool arrays (labels, token ids); a float array is
    /// refused rather than truncated, and so is a uint64 beyond `Int.max`.
    public func integers() throws -> [Int] {
        guard dtype.isInteger else {
            throw Refusal("the array holds \(dtype) values, not integers: save it as integers (labels with y.astype(np.int64))")
        }
        return try bytes.withUnsafeBytes { raw in
            let count = self.count
            func each(_ element: (Int) throws -> Int) rethrows -> [Int] {
                try [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for i in 0..<count {
                        buffer[i] = try element(i)
                        initialized += 1
                    }
                }
            }
            return switch dtype {
            case .bool: each { raw[$0] != 0 ? 1 : 0 }
            case .uint8: each { Int(raw[$0]) }
            case .int8: each { Int(Int8(bitPattern: raw[$0])) }
            case .int16: each { Int(Int16(bitPattern: Self.load(raw, $0, as: UInt16.self))) }
            case .uint16: each { Int(Self.load(raw, $0, as: UInt16.self)) }
            case .int32: each { Int(Int32(bitPattern: Self.load(raw, $0, as: UInt32.self))) }
            case .uint32: each { Int(Self.load(raw, $0, as: UInt32.self)) }
            case .int64: each { Int(Int64(bitPattern: Self.load(raw, $0, as: UInt64.self))) }
            case .uint64:
                try each { i in
                    let value = Self.load(raw, i, as: UInt64.self)
                    guard let exact = Int(exactly: value) else {
                        throw Refusal("the array's element \(i) is \(value), beyond the largest 64-bit signed integer")
                    }
                    return exact
                }
            case .float16, .float32, .float64: []  // refused above
            }
        }
    }

    private static func load<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, _ index: Int, as: T.Type) -> T {
        T(littleEndian: raw.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self))
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: values.count * MemoryLayout<T>.size)
        bytes.withUnsafeMutableBytes { raw in
            for (i, value) in values.enumerated() { raw.storeBytes(of: value.littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self) }
        }
        return bytes
    }

    /// An IEEE half-precision value, exactly (every float16 is a Float).
    static func float(half: UInt16) -> Float {
        let sign = UInt32(half >> 15) << 31
        let exponent = UInt32(half >> 10 & 0x1F)
        let fraction = UInt32(half & 0x3FF)
        switch exponent {
        case 0:  // zero or subnormal: fraction x 2^-24
            let magnitude = Float(fraction) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:  // infinity or NaN
            return Float(bitPattern: sign | 0x7F80_0000 | fraction << 13)
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | fraction << 13)
        }
    }
}

// MARK: - .npy files

extension NumPyArray {
    /// The longest header read. NumPy writes under 200 bytes for any shape and itself refuses headers
    /// over 10,000 bytes unless told otherwise.
    static let maximumHeaderBytes = 1 << 16

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Reads a `.npy` file (`numpy.save`): versions 1.0, 2.0 and 3.0, little- or big-endian, C order.
    /// Errors are `DatasetError`s of one line naming the file.
    public static func read(path: String) throws -> NumPyArray {
        try NumPyProblem.reporting(path) {
            let file = try ReadOnlyFile(path: path)
            var stream = FileStream(file: file, range: 0..<file.size)
            return try parse(&stream, size: file.size, onDisk: true)
        }
    }

    /// Writes a `.npy` file (format 1.0) that `numpy.load` reads. A failure is a `DatasetError.unwritable`.
    public func write(to path: String) throws {
        try FileWriter.writing(path) { writer in
            try writer.append(npyHeader)
            try writer.append(bytes)
        }
    }

    /// One `.npy` from `stream`, whose length is `size` (a file's size, or what a zip archive says an
    /// entry holds). The header is checked against `size` before the data is read; `onDisk` says that
    /// `size` bytes are known to be there, so the data can be allocated at once instead of as it arrives.
    static func parse<Stream: ByteStream>(_ stream: inout Stream, size: Int, onDisk: Bool) throws -> NumPyArray {
        let prefix = try stream.read(8)
        guard prefix.count == 8 else { throw NumPyProblem.damaged("too short for a .npy header (\(prefix.count) bytes)") }
        guard Array(prefix[0..<6]) == magic else { throw NumPyProblem.damaged("not a .npy array (it does not start with \\x93NUMPY)") }
        let (major, minor) = (prefix[6], prefix[7])
        guard (1...3).contains(major), minor == 0 else {
            throw NumPyProblem.refused(".npy format version \(major).\(minor) is not read (1.0, 2.0 and 3.0 are)")
        }
        let lengthField = try stream.read(major == 1 ? 2 : 4)
        guard lengthField.count == (major == 1 ? 2 : 4) else { throw NumPyProblem.damaged("the .npy header is cut short") }
        let headerLength = lengthField.reversed().reduce(0) { $0 << 8 | Int($1) }
        let dataStart = 8 + lengthField.count + headerLength
        guard headerLength <= maximumHeaderBytes else {
            throw NumPyProblem.damaged("the .npy header claims \(headerLength) bytes, more than the \(maximumHeaderBytes) fedbaechi reads")
        }
        guard dataStart <= size else {
            throw NumPyProblem.damaged("the .npy header claims \(headerLength) bytes, more than the \(size) there are")
        }
        let headerBytes = try stream.read(headerLength)
        guard headerBytes.count == headerLength else { throw NumPyProblem.damaged("the .npy header is cut short") }
        let header = try NPYHeader(headerBytes, utf8: major == 3)
        let available = size - dataStart
        let described = "shape \(header.shapeText) of \(header.dtype)"
        guard available >= header.dataBytes else {
            throw NumPyProblem.damaged("truncated: its \(described) needs \(header.dataBytes) bytes of data, \(available) are there")
        }
        guard available == header.dataBytes else {
            throw NumPyProblem.damaged("\(available - header.dataBytes) bytes follow the \(header.dataBytes) its \(described) needs")
        }
        var data = try stream.read(header.dataBytes, preallocate: onDisk)
        guard data.count == header.dataBytes else {
            throw NumPyProblem.damaged("truncated: its \(described) needs \(header.dataBytes) bytes of data, only \(data.count) could be read")
        }
        guard try stream.read(1).isEmpty else { throw NumPyProblem.damaged("more data follows its \(described) than the archive says") }
        let width = header.dtype.itemSize
        if header.bigEndian && width > 1 {
            data.withUnsafeMutableBufferPointer { buffer in
                for start in stride(from: 0, to: buffer.count, by: width) { buffer[start..<(start + width)].reverse() }
            }
        }
        return NumPyArray(shape: header.shape, dtype: header.dtype, bytes: data)
    }

    /// The `.npy` header `numpy.save` writes (format 1.0; `maximumDimensions` keeps it short): the magic,
    /// the version, the length, then the dict, padded with spaces to a multiple of 64 bytes and ended by a newline.
    var npyHeader: [UInt8] {
        let dict = "{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(NPYHeader.text(shape, upTo: .max)), }"
        let unpadded = Self.magic.count + 2 + 2 + dict.utf8.count + 1
        let text = dict + String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = text.utf8.count
        return Self.magic + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(text.utf8)
    }
}

/// What a `.npy` header says, checked: the dict of `descr`, `fortran_order` and `shape`.
struct NPYHeader {
    var dtype: NumPyArray.DType
    var bigEndian: Bool
    var shape: [Int]
    var dataBytes: Int

    /// The shape as a message shows it: `text(shape)`.
    var shapeText: String { NPYHeader.text(shape) }

    /// A shape as Python writes the tuple, `(60000, 784)`, `(3,)`, `()`; in a message cut after `limit`
    /// dimensions (a damaged header may have 64).
    static func text(_ shape: [Int], upTo limit: Int = 8) -> String {
        if shape.count == 1 { return "(\(shape[0]),)" }
        let shown = shape.prefix(limit).map(String.init).joined(separator: ", ")
        return "(" + shown + (shape.count > limit ? ", ... (\(shape.count) dimensions)" : "") + ")"
    }

    init(_ bytes: [UInt8], utf8: Bool) throws {
        guard case .dict(let keys, let values) = try PythonLiteral(parsing: bytes, utf8: utf8) else {
            throw NumPyProblem.damaged("the .npy header is not a dict")
        }
        var fields = [String: PythonLiteral]()
        for (key, value) in zip(keys, values) {
            guard case .string(let name) = key else { throw NumPyProblem.damaged("the .npy header has a key that is not a string") }
            guard fields.updateValue(value, forKey: name) == nil else {
                throw NumPyProblem.damaged("the .npy header gives \(MessageText.quoted(name)) twice")
            }
        }
        for name in ["descr", "fortran_order", "shape"] where fields[name] == nil {
            throw NumPyProblem.damaged("the .npy header has no '\(name)'")
        }
        if let other = fields.keys.sorted().first(where: { !["descr", "fortran_order", "shape"].contains($0) }) {
            throw NumPyProblem.damaged("the .npy header has the unknown key \(MessageText.quoted(other))")
        }

        switch fields["descr"]! {
        case .string(let descr):
            (dtype, bigEndian) = try Self.elementType(descr)
        case .list:
            throw NumPyProblem.refused("it is a structured array (named fields), which is not read: save each field as an array of its own")
        default:
            throw NumPyProblem.damaged("the .npy header's descr is not a string")
        }

        guard case .tuple(let dimensions) = fields["shape"]! else {
            throw NumPyProblem.damaged("the .npy header's shape is not a tuple")
        }
        shape = try dimensions.map { dimension in
            guard case .integer(let size) = dimension, size >= 0 else {
                throw NumPyProblem.damaged("the .npy header's shape holds something other than sizes (whole numbers >= 0)")
            }
            return size
        }
        guard shape.count <= NumPyArray.maximumDimensions else {
            throw NumPyProblem.refused("it has \(shape.count) dimensions, more than NumPy's \(NumPyArray.maximumDimensions)")
        }
        guard let bytes = Self.dataBytes(shape, dtype) else {
            throw NumPyProblem.refused("its shape \(NPYHeader.text(shape)) of \(dtype) is more than the \(NumPyArray.maximumBytes / (1 << 30)) GiB fedbaechi reads in one array")
        }
        dataBytes = bytes

        guard case .bool(let fortranOrder) = fields["fortran_order"]! else {
            throw NumPyProblem.damaged("the .npy header's fortran_order is not True or False")
        }
        // With at most one dimension above 1, Fortran order lays the elements out as C order does.
        if fortranOrder && shape.filter({ $0 > 1 }).count > 1 {
            throw NumPyProblem.refused("it is in Fortran (column-major) order; save it in C order, as np.ascontiguousarray(x) gives it")
        }
    }

    /// The bytes of data a shape of `dtype` holds, or nil beyond `NumPyArray.maximumBytes`. The product
    /// of the dimensions other than 0 is bounded too, so that `count` cannot overflow in any order.
    static func dataBytes(_ shape: [Int], _ dtype: NumPyArray.DType) -> Int? {
        var product = dtype.itemSize
        for size in shape where size != 0 {
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow, next <= NumPyArray.maximumBytes else { return nil }
            product = next
        }
        return shape.contains(0) ? 0 : product
    }

    /// The element type of a `descr` (`<f4`, `>i8`, `|u1`) and whether it is big-endian.
    static func elementType(_ descr: String) throws -> (NumPyArray.DType, bigEndian: Bool) {
        let order = descr.first.flatMap { "<>|".contains($0) ? $0 : nil }
        let code = order == nil ? descr : String(descr.dropFirst())
        if let dtype = NumPyArray.DType(code: code) { return (dtype, order == ">") }
        let quoted = "'" + MessageText.escaped(descr, limit: 24) + "'"
        if code.hasPrefix("O") {
            throw NumPyProblem.refused("it holds Python objects (dtype \(quoted)), which only a pickle can restore, and fedbaechi never loads pickles: save numbers (x.astype(np.float32))")
        }
        throw NumPyProblem.refused("its dtype \(quoted) is not read: fedbaechi reads bool, int8-int64, uint8-uint64, float16, float32 and float64 (convert with .astype(np.float32))")
    }
}

/// A Python literal as `ast.literal_eval` reads a `.npy` header: dicts, tuples, lists, strings,
/// integers, True, False and None. Nothing is evaluated; anything else is an error.
indirect enum PythonLiteral: Equatable {
    case dict(keys: [PythonLiteral], values: [PythonLiteral])
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case string(String)
    case integer(Int)
    case bool(Bool)
    case none

    /// Deeper nesting is an error (a header nests two deep): bounds the parser's stack.
    static let maximumDepth = 16

    /// The literal `bytes` hold, and nothing else but spaces; strings are Latin-1 (format 1.0 and
    /// 2.0) or UTF-8 (3.0).
    init(parsing bytes: [UInt8], utf8: Bool) throws {
        var parser = Parser(bytes: bytes, utf8: utf8)
        self = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.position == bytes.count else { throw parser.failure("something follows the dict") }
    }

    private struct Parser {
        let bytes: [UInt8]
        let utf8: Bool
        var position = 0

        init(bytes: [UInt8], utf8: Bool) {
            self.bytes = bytes
            self.utf8 = utf8
        }

        func failure(_ what: String) -> NumPyProblem {
            NumPyProblem.damaged("the .npy header is not a Python literal: \(what) at byte \(position)")
        }

        var next: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipSpace() {
            while let byte = next, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        }

        mutating func value(depth: Int) throws -> PythonLiteral {
            skipSpace()
            guard let byte = next else { throw failure("it ends early") }
            guard depth < PythonLiteral.maximumDepth else { throw failure("it nests too deep") }
            switch byte {
            case UInt8(ascii: "{"):
                var keys = [PythonLiteral](), values = [PythonLiteral]()
                _ = try sequence(closedBy: UInt8(ascii: "}")) { parser in
                    keys.append(try parser.value(depth: depth + 1))
                    parser.skipSpace()
                    guard parser.next == UInt8(ascii: ":") else { throw parser.failure("a key without ':'") }
                    parser.position += 1
                    values.append(try parser.value(depth: depth + 1))
                }
                return .dict(keys: keys, values: values)
            case UInt8(ascii: "("):
                var items = [PythonLiteral]()
                let commas = try sequence(closedBy: UInt8(ascii: ")")) { items.append(try $0.value(depth: depth + 1)) }
                // `(3)` is 3 in Python; only `(3,)` is a tuple.
                return items.count == 1 && commas == 0 ? items[0] : .tuple(items)
            case UInt8(ascii: "["):
                var items = [PythonLiteral]()
                _ = try sequence(closedBy: UInt8(ascii: "]")) { items.append(try $0.value(depth: depth + 1)) }
                return .list(items)
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "u") where position + 1 < bytes.count && (bytes[position + 1] == UInt8(ascii: "'") || bytes[position + 1] == UInt8(ascii: "\"")):
                position += 1  // Python 2's unicode prefix
                return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return .integer(try integer())
            default:
                let start = position
                while let letter = next, isNameByte(letter) { position += 1 }
                switch String(decoding: bytes[start..<position], as: UTF8.self) {
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "None": return .none
                default:
                    position = start
                    throw failure("unexpected \(MessageText.quoted(String(decoding: [byte], as: UTF8.self)))")
                }
            }
        }

        /// Items up to `close` (already past the opening bracket), separated by commas, a trailing one
        /// allowed; returns how many commas there were.
        mutating func sequence(closedBy close: UInt8, item: (inout Parser) throws -> Void) throws -> Int {
            position += 1
            var commas = 0
            while true {
                skipSpace()
                if next == close { position += 1; return commas }
                try item(&self)
                skipSpace()
                if next == UInt8(ascii: ",") {
                    position += 1
                    commas += 1
                } else if next == close {
                    position += 1
                    return commas
                } else {
                    throw failure(next == nil ? "it ends early" : "expected ',' or '\(Character(UnicodeScalar(close)))'")
                }
            }
        }

        mutating func string() throws -> String {
            let quote = bytes[position]
            position += 1
            var text = [UInt8]()
            while true {
                guard let byte = next, byte != 0x0A else { throw failure("a string is not closed") }
                position += 1
                if byte == quote { break }
                guard byte == UInt8(ascii: "\\") else { text.append(byte); continue }
                guard let escaped = next else { throw failure("a string is not closed") }
                position += 1
                switch escaped {
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "0"): text.append(0)
                case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): text.append(escaped)
                default: text += [UInt8(ascii: "\\"), escaped]  // as Python keeps unknown escapes
                }
            }
            guard let decoded = String(bytes: text, encoding: utf8 ? .utf8 : .isoLatin1) else { throw failure("a string is not UTF-8") }
            return decoded
        }

        /// A decimal integer as Python writes one: no leading zeros, and Python 2's `L` suffix.
        mutating func integer() throws -> Int {
            let negative = next == UInt8(ascii: "-")
            if negative { position += 1 }
            let start = position
            var value = 0
            while let digit = next, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) {
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { throw failure("an integer too large") }
                value = sum
                position += 1
            }
            guard position > start else { throw failure("'-' without digits") }
            guard bytes[start] != UInt8(ascii: "0") || position - start == 1 else { throw failure("an integer with a leading zero") }
            if next == UInt8(ascii: "L") || next == UInt8(ascii: "l") { position += 1 }
            if let after = next, isNameByte(after) || after == UInt8(ascii: ".") { throw failure("a number that is not an integer") }
            return negative ? -value : value
        }

        func isNameByte(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}

// MARK: - .npz archives

/// An `.npz` file: a zip archive of `.npy` arrays, as `numpy.savez` (stored) and
/// `numpy.savez_compressed` (deflated) write it. Users bring their own data this way.
public enum NumPyArchive {
    /// The arrays of an `.npz` file by name (the entry name without `.npy`). Read: stored and deflated
    /// entries, ZIP64; refused with a one-line `DatasetError` naming the file: damage of any kind
    /// (checked with each entry's CRC-32), encryption, other compression methods, entries that are not
    /// `.npy` arrays, and what `NumPyArray.read` refuses. Sizes in the archive are checked against the
    /// file's size before anything is allocated, and decompressed data is held only as it arrives.
    public static func read(path: String) throws -> [String: NumPyArray] {
        try NumPyProblem.reporting(path) {
            let file = try ReadOnlyFile(path: path)
            var arrays = [String: NumPyArray]()
            for entry in try ZipDirectory(file).entries {
                do {
                    arrays[entry.arrayName] = try entry.read(from: file)
                } catch let problem as NumPyProblem {
                    throw problem.within("array \(MessageText.quoted(entry.arrayName))")
                }
            }
            return arrays
        }
    }

    public static func read(contentsOf url: URL) throws -> [String: NumPyArray] {
        try read(path: url.path)
    }

    /// Writes `arrays` as an uncompressed `.npz` (what `numpy.savez` writes), in the order of their
    /// names; `numpy.load` reads it. A failure is a `DatasetError.unwritable`.
    public static func write(_ arrays: [String: NumPyArray], to path: String) throws {
        try write(arrays, to: path, zip64: false)
    }

    public static func write(_ arrays: [String: NumPyArray], to url: URL) throws {
        try write(arrays, to: url.path)
    }

    /// `zip64` writes ZIP64 records even for a small archive (as Python's `force_zip64` does), so that
    /// the tests reach what only archives of 4 GiB and more need otherwise.
    static func write(_ arrays: [String: NumPyArray], to path: String, zip64 forced: Bool) throws {
        let names = arrays.keys.sorted()
        for name in names where (name + ".npy").utf8.count > 0xFFFF {
            throw DatasetError.unwritable(file: path, reason: "the array name \(MessageText.quoted(name)) is longer than a zip entry's name may be")
        }
        try FileWriter.writing(path) { writer in
            var directory = [UInt8]()
            for name in names {
                let array = arrays[name]!
                let header = array.npyHeader
                let entryName = Array((name + ".npy").utf8)
                let size = UInt64(header.count + array.bytes.count)
                let crc = crc32(array.bytes, continuing: crc32(header))
                let offset = UInt64(writer.written)
                let largeSize = forced || size >= 0xFFFF_FFFF
                let largeOffset = forced || offset >= 0xFFFF_FFFF
                let flags: UInt16 = entryName.allSatisfy { $0 < 0x80 } ? 0 : 0x800  // bit 11: the name is UTF-8
                let version: UInt16 = largeSize || largeOffset ? 45 : 20

                var local = ZipBytes()
                local.u32(0x0403_4B50)
                local.u16(version); local.u16(flags); local.u16(0)  // stored
                local.u16(0); local.u16(0x21)  // 1980-01-01 00:00, the earliest date a zip can hold
                local.u32(crc)
                local.u32(largeSize ? 0xFFFF_FFFF : UInt32(size)); local.u32(largeSize ? 0xFFFF_FFFF : UInt32(size))
                local.u16(UInt16(entryName.count)); local.u16(largeSize ? 20 : 0)
                local.bytes += entryName
                if largeSize { local.u16(1); local.u16(16); local.u64(size); local.u64(size) }
                try writer.append(local.bytes)
                try writer.append(header)
                try writer.append(array.bytes)

                var extra = ZipBytes()
                if largeSize { extra.u64(size); extra.u64(size) }
                if largeOffset { extra.u64(offset) }
                var central = ZipBytes()
                central.u32(0x0201_4B50)
                central.u16(3 << 8 | version); central.u16(version); central.u16(flags); central.u16(0)  // made on Unix; stored
                central.u16(0); central.u16(0x21)
                central.u32(crc)
                central.u32(largeSize ? 0xFFFF_FFFF : UInt32(size)); central.u32(largeSize ? 0xFFFF_FFFF : UInt32(size))
                central.u16(UInt16(entryName.count)); central.u16(extra.bytes.isEmpty ? 0 : UInt16(4 + extra.bytes.count)); central.u16(0)
                central.u16(0); central.u16(0); central.u32(0o100644 << 16)  // disk 0, binary, a regular file rw-r--r--
                central.u32(largeOffset ? 0xFFFF_FFFF : UInt32(offset))
                central.bytes += entryName
                if !extra.bytes.isEmpty { central.u16(1); central.u16(UInt16(extra.bytes.count)); central.bytes += extra.bytes }
                directory += central.bytes
            }
            let directoryOffset = UInt64(writer.written)
            let directorySize = UInt64(directory.count)
            try writer.append(directory)
            let large = forced || names.count >= 0xFFFF || directoryOffset >= 0xFFFF_FFFF || directorySize >= 0xFFFF_FFFF
            var end = ZipBytes()
            if large {
                let recordOffset = UInt64(writer.written)
                end.u32(0x0606_4B50); end.u64(44); end.u16(3 << 8 | 45); end.u16(45); end.u32(0); end.u32(0)
                end.u64(UInt64(names.count)); end.u64(UInt64(names.count)); end.u64(directorySize); end.u64(directoryOffset)
                end.u32(0x0706_4B50); end.u32(0); end.u64(recordOffset); end.u32(1)
            }
            end.u32(0x0605_4B50); end.u16(0); end.u16(0)
            end.u16(large ? 0xFFFF : UInt16(names.count)); end.u16(large ? 0xFFFF : UInt16(names.count))
            end.u32(large ? 0xFFFF_FFFF : UInt32(directorySize)); end.u32(large ? 0xFFFF_FFFF : UInt32(directoryOffset))
            end.u16(0)
            try writer.append(end.bytes)
        }
    }
}

/// The central directory of a zip archive, found from the end-of-central-directory record (and its
/// ZIP64 form), with every entry's place checked against the file.
private struct ZipDirectory {
    struct Entry {
        var arrayName: String
        var method: Int
        var crc: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var dataStart: Int

        /// The entry's array, its CRC-32 checked.
        func read(from file: ReadOnlyFile) throws -> NumPyArray {
            let stored = FileStream(file: file, range: dataStart..<(dataStart + compressedSize))
            let array: NumPyArray
            let crc: UInt32
            if method == 0 {
                var stream = Checksummed(stored)
                array = try NumPyArray.parse(&stream, size: uncompressedSize, onDisk: true)
                crc = stream.crc
            } else {
                let inflater = try Inflater(stored)
                var stream = Checksummed(inflater)
                array = try NumPyArray.parse(&stream, size: uncompressedSize, onDisk: false)
                guard !inflater.hasTrailingBytes else { throw NumPyProblem.damaged("compressed bytes follow the end of its compressed data") }
                crc = stream.crc
            }
            guard crc == self.crc else {
                throw NumPyProblem.damaged("its CRC-32 is \(String(format: "%08x", crc)), the archive says \(String(format: "%08x", self.crc))")
            }
            return array
        }
    }

    var entries: [Entry] = []

    /// The largest expansion deflate allows: 258 bytes from one 2-bit code, 1032 to 1. A size claimed
    /// beyond it is a lie, refused before inflating.
    static let deflateRatio = 1032

    init(_ file: ReadOnlyFile) throws {
        let endLength = 22
        let tailLength = min(file.size, endLength + 0xFFFF)
        let tail = try file.bytes(at: file.size - tailLength, count: tailLength)
        // The last end record whose comment fits in the file.
        var endAt = tail.count - endLength
        while endAt >= 0 && !(tail[endAt] == 0x50 && Self.u32(tail, endAt) == 0x0605_4B50 && endAt + endLength + Self.u16(tail, endAt + 20) <= tail.count) {
            endAt -= 1
        }
        guard endAt >= 0 else {
            let start = try file.bytes(at: 0, count: min(file.size, 6))
            if start == NumPyArray.magic {
                throw NumPyProblem.refused("it is one array (.npy, numpy.save), not an archive of arrays (.npz): save with np.savez(path, x=..., y=...)")
            }
            if start.count >= 4 && Self.u32(start, 0) == 0x0403_4B50 {
                throw NumPyProblem.damaged("the zip archive is cut short (it has no end-of-central-directory record)")
            }
            throw NumPyProblem.refused(file.size == 0 ? "the file is empty, not an .npz archive" : "not an .npz archive (a zip file, as np.savez writes)")
        }
        let endPosition = file.size - tailLength + endAt
        var disk = UInt64(Self.u16(tail, endAt + 4)), directoryDisk = UInt64(Self.u16(tail, endAt + 6))
        var entriesHere = UInt64(Self.u16(tail, endAt + 8)), entryCount = UInt64(Self.u16(tail, endAt + 10))
        var directorySize = UInt64(Self.u32(tail, endAt + 12)), directoryOffset = UInt64(Self.u32(tail, endAt + 16))
        var directoryEnd = endPosition
        // ZIP64: a locator just before the end record points at the 64-bit end record.
        let locator = endPosition >= 20 ? try file.bytes(at: endPosition - 20, count: 20) : []
        if locator.count == 20 && Self.u32(locator, 0) == 0x0706_4B50 {
            let recordOffset = Self.u64(locator, 8)
            guard endPosition >= 76, recordOffset <= UInt64(endPosition - 76) else {
                throw NumPyProblem.damaged("the ZIP64 end record is said to be at \(recordOffset), outside the file")
            }
            let record = try file.bytes(at: Int(recordOffset), count: 56)
            guard Self.u32(record, 0) == 0x0606_4B50 else { throw NumPyProblem.damaged("the ZIP64 end record is missing") }
            disk = UInt64(Self.u32(record, 16)); directoryDisk = UInt64(Self.u32(record, 20))
            entriesHere = Self.u64(record, 24); entryCount = Self.u64(record, 32)
            directorySize = Self.u64(record, 40); directoryOffset = Self.u64(record, 48)
            directoryEnd = Int(recordOffset)
        }
        guard disk == 0, directoryDisk == 0, entriesHere == entryCount else {
            throw NumPyProblem.refused("it is a zip archive split over several disks, which is not read")
        }
        guard directoryOffset <= UInt64(directoryEnd), directorySize <= UInt64(directoryEnd) - directoryOffset else {
            throw NumPyProblem.damaged("the zip directory (\(directorySize) bytes at \(directoryOffset)) lies outside the file")
        }
        // Every directory record is at least 46 bytes: the count is bounded by the file before allocating.
        guard entryCount <= directorySize / 46 else {
            throw NumPyProblem.damaged("the zip directory of \(directorySize) bytes cannot hold the \(entryCount) entries it claims")
        }
        let directory = try file.bytes(at: Int(directoryOffset), count: Int(directorySize))
        let dataEnd = Int(directoryOffset)

        struct Located { var entry: Entry; var name: [UInt8]; var headerOffset: Int }
        var located = [Located]()
        var position = 0
        while position < directory.count {
            guard position + 46 <= directory.count, Self.u32(directory, position) == 0x0201_4B50 else {
                throw NumPyProblem.damaged("zip directory record \(located.count + 1) is damaged")
            }
            let flags = Self.u16(directory, position + 8)
            let method = Self.u16(directory, position + 10)
            let crc = Self.u32(directory, position + 16)
            var compressed = UInt64(Self.u32(directory, position + 20))
            var uncompressed = UInt64(Self.u32(directory, position + 24))
            let nameLength = Self.u16(directory, position + 28), extraLength = Self.u16(directory, position + 30)
            let commentLength = Self.u16(directory, position + 32)
            var startDisk = UInt64(Self.u16(directory, position + 34))
            var headerOffset = UInt64(Self.u32(directory, position + 42))
            let nameStart = position + 46, extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= directory.count else { throw NumPyProblem.damaged("zip directory record \(located.count + 1) runs past the directory") }
            let nameBytes = Array(directory[nameStart..<extraStart])
            guard let name = String(bytes: nameBytes, encoding: .utf8) else {
                throw NumPyProblem.damaged("zip entry \(located.count + 1)'s name is not UTF-8")
            }
            let entryLabel = "zip entry \(MessageText.quoted(name))"
            // ZIP64 extra field: the 64-bit values of the fields set to all ones, in this order.
            var extra = extraStart
            while extra + 4 <= extraStart + extraLength {
                let id = Self.u16(directory, extra), length = Self.u16(directory, extra + 2)
                guard extra + 4 + length <= extraStart + extraLength else {
                    throw NumPyProblem.damaged("\(entryLabel) has an extra field that runs past its record")
                }
                if id == 1 {
                    var field = extra + 4
                    func take(_ width: Int) throws -> UInt64 {
                        guard field + width <= extra + 4 + length else { throw NumPyProblem.damaged("\(entryLabel) has a ZIP64 field too short") }
                        defer { field += width }
                        return width == 8 ? Self.u64(directory, field) : UInt64(Self.u32(directory, field))
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try take(8) }
                    if compressed == 0xFFFF_FFFF { compressed = try take(8) }
                    if headerOffset == 0xFFFF_FFFF { headerOffset = try take(8) }
                    if startDisk == 0xFFFF { startDisk = try take(4) }
                }
                extra += 4 + length
            }
            guard startDisk == 0 else { throw NumPyProblem.refused("it is a zip archive split over several disks, which is not read") }
            guard name.hasSuffix(".npy") else {
                throw NumPyProblem.refused("\(entryLabel) is not a .npy array (an .npz holds only arrays, as np.savez writes)")
            }
            guard flags & 0x41 == 0 else { throw NumPyProblem.refused("\(entryLabel) is encrypted") }
            guard method == 0 || method == 8 else {
                throw NumPyProblem.refused("\(entryLabel) is compressed with zip method \(method); np.savez stores (0) and np.savez_compressed deflates (8)")
            }
            guard headerOffset < UInt64(dataEnd), compressed <= UInt64(dataEnd) else {
                throw NumPyProblem.damaged("\(entryLabel) lies outside the file")
            }
            guard method == 8 || compressed == uncompressed else {
                throw NumPyProblem.damaged("\(entryLabel) is stored (uncompressed) but its sizes differ: \(compressed) and \(uncompressed) bytes")
            }
            guard uncompressed / UInt64(Self.deflateRatio) <= compressed + 1 else {
                throw NumPyProblem.damaged("\(entryLabel) claims \(uncompressed) bytes from \(compressed) compressed, more than deflate can give")
            }
            guard uncompressed <= UInt64(NumPyArray.maximumBytes + NumPyArray.maximumHeaderBytes + 12) else {
                throw NumPyProblem.refused("\(entryLabel) holds \(uncompressed) bytes, more than the \(NumPyArray.maximumBytes / (1 << 30)) GiB fedbaechi reads in one array")
            }
            let entry = Entry(arrayName: String(name.dropLast(4)), method: method, crc: crc, compressedSize: Int(compressed),
                              uncompressedSize: Int(uncompressed), dataStart: 0)
            located.append(Located(entry: entry, name: nameBytes, headerOffset: Int(headerOffset)))
            position = next
        }
        guard located.count == entryCount || entryCount == 0xFFFF else {
            throw NumPyProblem.damaged("the zip directory holds \(located.count) entries, its end record says \(entryCount)")
        }
        var seen = Set<String>()
        for item in located where !seen.insert(item.entry.arrayName).inserted {
            throw NumPyProblem.damaged("two arrays are named \(MessageText.quoted(item.entry.arrayName))")
        }

        // Each entry's local header and data, in file order, neither overlapping the next nor the
        // directory: one compressed stream cannot be counted twice (an overlapping zip bomb).
        located.sort { $0.headerOffset < $1.headerOffset }
        for (index, item) in located.enumerated() {
            let label = "zip entry \(MessageText.quoted(item.entry.arrayName + ".npy"))"
            let limit = index + 1 < located.count ? located[index + 1].headerOffset : dataEnd
            guard item.headerOffset + 30 <= limit else { throw NumPyProblem.damaged("\(label)'s header overlaps what follows it") }
            let header = try file.bytes(at: item.headerOffset, count: 30)
            guard Self.u32(header, 0) == 0x0403_4B50 else { throw NumPyProblem.damaged("\(label)'s local header is missing") }
            let nameLength = Self.u16(header, 26), extraLength = Self.u16(header, 28)
            let dataStart = item.headerOffset + 30 + nameLength + extraLength
            guard dataStart <= limit, item.entry.compressedSize <= limit - dataStart else {
                throw NumPyProblem.damaged("\(label)'s data overlaps what follows it")
            }
            guard try file.bytes(at: item.headerOffset + 30, count: nameLength) == item.name else {
                throw NumPyProblem.damaged("\(label) has another name in its local header")
            }
            var entry = item.entry
            entry.dataStart = dataStart
            entries.append(entry)
        }
    }

    static func u16(_ bytes: [UInt8], _ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }
    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }
}

/// Little-endian fields of a zip record, appended.
private struct ZipBytes {
    var bytes: [UInt8] = []
    mutating func u16(_ value: UInt16) { bytes += [UInt8(value & 0xFF), UInt8(value >> 8)] }
    mutating func u32(_ value: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(value >> UInt32(shift) & 0xFF)) } }
    mutating func u64(_ value: UInt64) { for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(value >> UInt64(shift) & 0xFF)) } }
}

// MARK: - Bytes in and out

/// What is wrong with a NumPy file, before the caller adds which file: damaged, or not read.
struct NumPyProblem: Error {
    var reason: String
    var damaged: Bool

    static func damaged(_ reason: String) -> NumPyProblem { NumPyProblem(reason: reason, damaged: true) }
    static func refused(_ reason: String) -> NumPyProblem { NumPyProblem(reason: reason, damaged: false) }

    /// The same problem, said of a part of the file (`array "x"`).
    func within(_ part: String) -> NumPyProblem { NumPyProblem(reason: part + ": " + reason, damaged: damaged) }

    /// `body`'s problems as `DatasetError`s naming `path`.
    static func reporting<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let problem as NumPyProblem {
            throw problem.damaged ? DatasetError.corrupt(file: path, reason: problem.reason) : DatasetError.unreadable(file: path, reason: problem.reason)
        }
    }
}

/// A file open for reading at offsets. Nothing is read without first checking that it is there, so a
/// size or offset from a header never decides an allocation by itself.
private final class ReadOnlyFile {
    let descriptor: Int32
    let size: Int

    init(path: String) throws {
        // Non-blocking, so that a FIFO is refused instead of waited on.
        descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw NumPyProblem.refused(String(cString: strerror(errno))) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw NumPyProblem.refused("not a regular file")
        }
        size = Int(status.st_size)
    }

    deinit { close(descriptor) }

    /// Fills `buffer` from `offset`, which the caller has checked lies within the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let got = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw NumPyProblem.refused("reading failed: \(String(cString: strerror(errno)))") }
            guard got > 0 else { throw NumPyProblem.damaged("the file ended at byte \(offset + done) while being read (did it change?)") }
            done += got
        }
    }

    /// `count` bytes from `offset`, when they lie within the file.
    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, count <= size, offset <= size - count else {
            throw NumPyProblem.damaged("it points at bytes \(offset)..<\(offset + count), beyond the end of the file (\(size) bytes)")
        }
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset) }
            initialized = count
        }
    }
}

/// Bytes that arrive in order: a stretch of a file, or what inflating one gives.
protocol ByteStream {
    /// Copies the next bytes into `buffer`, as many as fit; fewer only at the end.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension ByteStream {
    /// The next `count` bytes, or fewer when the stream ends first. Memory follows what arrives, unless
    /// `preallocate` says `count` is already known to be on disk.
    mutating func read(_ count: Int, preallocate: Bool = false) throws -> [UInt8] {
        let chunkSize = 1 << 20
        if preallocate || count <= chunkSize {
            return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                while initialized < count {
                    let got = try fill(UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[initialized...]))
                    if got == 0 { break }
                    initialized += got
                }
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(4 * chunkSize)
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while bytes.count < count {
            let wanted = min(chunkSize, count - bytes.count)
            let got = try chunk.withUnsafeMutableBytes { try fill(UnsafeMutableRawBufferPointer(rebasing: $0[..<wanted])) }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[..<got])
        }
        return bytes
    }
}

/// A stretch of a file that the caller checked lies within it.
private struct FileStream: ByteStream {
    let file: ReadOnlyFile
    var position: Int
    let end: Int

    init(file: ReadOnlyFile, range: Range<Int>) {
        self.file = file
        position = range.lowerBound
        end = range.upperBound
    }

    var isAtEnd: Bool { position == end }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = min(buffer.count, end - position)
        guard count > 0 else { return 0 }
        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]), at: position)
        position += count
        return count
    }
}

/// Another stream's bytes, with their CRC-32 (zlib's).
private struct Checksummed<Base: ByteStream>: ByteStream {
    var base: Base
    var crc: UInt32 = 0

    init(_ base: Base) { self.base = base }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = try base.fill(buffer)
        crc = crc32(UnsafeRawBufferPointer(rebasing: buffer[..<count]), continuing: crc)
        return count
    }
}

/// zlib's CRC-32 of `bytes` after `crc` (0 to start).
private func crc32<Bytes: ContiguousBytes>(_ bytes: Bytes, continuing crc: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { raw in
        var value = uLong(crc)
        var offset = 0
        while offset < raw.count {
            let length = min(raw.count - offset, 1 << 30)
            value = CZlib.crc32(value, raw.baseAddress!.assumingMemoryBound(to: Bytef.self) + offset, uInt(length))
            offset += length
        }
        return UInt32(truncatingIfNeeded: value)
    }
}

/// A raw deflate stream (zip method 8) inflated as it is read, with zlib's checks: damaged or cut
/// short compressed data is an error, never short or wrong data.
private final class Inflater: ByteStream {
    private var source: FileStream
    /// zlib's state points back at the stream, so it must not move: allocated, not a property.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 1)
    private var ended = false

    init(_ source: FileStream) throws {
        self.source = source
        stream.initialize(to: z_stream())
        // Negative window bits: raw deflate, no zlib header (as zip stores it).
        guard inflateInit2_(stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw NumPyProblem.refused("zlib could not start inflating")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
    }

    /// Whether compressed bytes are left after the end of the deflate stream.
    var hasTrailingBytes: Bool { stream.pointee.avail_in > 0 || !source.isAtEnd }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        while produced < buffer.count && !ended {
            if stream.pointee.avail_in == 0 {
                let got = try source.fill(input)
                stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = uInt(got)
            }
            let room = min(buffer.count - produced, Int(UInt32.max))
            let inputBefore = stream.pointee.avail_in
            stream.pointee.next_out = (buffer.baseAddress! + produced).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(room)
            let status = inflate(stream, Z_NO_FLUSH)
            let made = room - Int(stream.pointee.avail_out)
            produced += made
            switch status {
            case Z_STREAM_END:
                ended = true
            case Z_OK, Z_BUF_ERROR:
                if made == 0 && stream.pointee.avail_in == inputBefore {
                    throw NumPyProblem.damaged(inputBefore == 0 ? "its compressed data is cut short" : "its compressed data is damaged")
                }
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw NumPyProblem.damaged("its compressed data is damaged (\(message))")
            }
        }
        return produced
    }
}

/// A file written front to back, refusing on the first failure with a `DatasetError.unwritable`.
private struct FileWriter {
    let descriptor: Int32
    let path: String
    private(set) var written = 0

    /// Creates (or empties) `path` and hands it to `body`; the file is closed, and its close checked,
    /// after. A file that could not be written whole is removed: no half archive is left to be read.
    static func writing(_ path: String, _ body: (inout FileWriter) throws -> Void) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw DatasetError.unwritable(file: path, reason: String(cString: strerror(errno))) }
        var writer = FileWriter(descriptor: descriptor, path: path)
        do {
            try body(&writer)
        } catch {
            close(descriptor)
            unlink(path)
            throw error
        }
        guard close(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw DatasetError.unwritable(file: path, reason: reason)
        }
    }

    mutating func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let count = write(descriptor, raw.baseAddress! + done, raw.count - done)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    throw DatasetError.unwritable(file: path, reason: count < 0 ? String(cString: strerror(errno)) : "nothing was written")
                }
                done += count
            }
        }
        written += bytes.count
    }
}
