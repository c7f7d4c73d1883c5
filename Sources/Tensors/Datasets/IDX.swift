import CZlib
import Foundation

/// An IDX file (LeCun's MNIST format): a magic number naming the element type and rank, the
/// dimensions as big-endian 32-bit integers, then the elements. Only unsigned bytes (type 0x08) occur
/// in the datasets fedbaechi reads.
public struct IDXArray: Sendable {
    public var dimensions: [Int]
    public var bytes: [UInt8]

    /// The most elements one file may hold (1 GiB): Fashion-MNIST's training images are 47 MB. The
    /// header is checked against it before anything is allocated, so a damaged or hostile header
    /// (or a small gzip file that inflates to terabytes) is refused instead of exhausting memory.
    public static let maximumElements = 1 << 30

    /// Reads a gzip'd (or plain) IDX file of unsigned bytes, checking that it is complete and holds
    /// exactly what its header promises. Decompression stops as soon as it is clear the file is
    /// wrong, so the work and memory are bounded by the header's (checked) size.
    public static func read(path: String) throws -> IDXArray {
        try read(path: path, body: true)
    }

    /// The dimensions in a file's header, checked as `read` checks them, without reading the elements:
    /// how a process that needs no examples learns how many there are.
    public static func dimensions(path: String) throws -> [Int] {
        try read(path: path, body: false).dimensions
    }

    private static func read(path: String, body: Bool) throws -> IDXArray {
        guard let file = gzopen(path, "rb") else {
            throw DatasetError.corrupt(file: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(file) }
        return try parse(file: path, body: body) { buffer in try inflate(file, path: path, into: buffer) }
    }

    /// Parses IDX bytes already in memory (tests, and callers that decompressed themselves).
    static func parse(_ data: [UInt8], file: String) throws -> IDXArray {
        var offset = 0
        return try parse(file: file) { buffer in
            let count = min(buffer.count, data.count - offset)
            for i in 0..<count { buffer[i] = data[offset + i] }
            offset += count
            return count
        }
    }

    /// The format itself over any source of bytes: `fill` copies up to `buffer.count` next bytes
    /// into `buffer` and returns how many (fewer only at the end).
    private static func parse(file: String, body readsBody: Bool = true,
                              fill: (UnsafeMutableBufferPointer<UInt8>) throws -> Int) throws -> IDXArray {
        // Grows with what actually arrives, so a header promising 1 GiB over a few bytes of data
        // costs a few bytes, not a 1 GiB allocation.
        func read(_ count: Int) throws -> [UInt8] {
            var bytes = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: min(count, 1 << 20))
            while bytes.count < count {
                let wanted = min(chunk.count, count - bytes.count)
                let got = try chunk.withUnsafeMutableBufferPointer { try fill(UnsafeMutableBufferPointer(rebasing: $0[..<wanted])) }
                if got == 0 { break }
                if bytes.isEmpty { bytes.reserveCapacity(min(count, 4 * chunk.count)) }
                bytes.append(contentsOf: chunk[..<got])
            }
            return bytes
        }
        let magicBytes = try read(4)
        guard magicBytes.count == 4 else { throw DatasetError.corrupt(file: file, reason: "too short for an IDX header") }
        guard magicBytes[0] == 0, magicBytes[1] == 0, magicBytes[2] == 0x08, (1...4).contains(magicBytes[3]) else {
            let magic = magicBytes.map { String(format: "%02x", $0) }.joined()
            throw DatasetError.corrupt(file: file, reason: "bad magic number 0x\(magic), expected an IDX file of unsigned bytes")
        }
        let rank = Int(magicBytes[3])
        let header = try read(4 * rank)
        guard header.count == 4 * rank else { throw DatasetError.corrupt(file: file, reason: "header cut short") }
        let dimensions = (0..<rank).map { d in header[(4 * d)..<(4 * d + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let shape = dimensions.map(String.init).joined(separator: "x")
        var expected = 1
        for d in dimensions {
            guard d > 0 else { throw DatasetError.corrupt(file: file, reason: "header promises \(shape) bytes of data: a dimension is 0") }
            let (product, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maximumElements else {
                throw DatasetError.corrupt(file: file, reason: "header promises \(shape) bytes of data, more than the \(maximumElements) (1 GiB) fedbaechi reads")
            }
            expected = product
        }
        guard readsBody else { return IDXArray(dimensions: dimensions, bytes: []) }
        let body = try read(expected)
        guard body.count == expected else {
            throw DatasetError.corrupt(file: file, reason: "header promises \(shape) bytes of data, file holds \(body.count)")
        }
        guard try read(1).isEmpty else {
            throw DatasetError.corrupt(file: file, reason: "header promises \(shape) bytes of data, file holds more")
        }
        return IDXArray(dimensions: dimensions, bytes: body)
    }

    /// Up to `buffer.count` decompressed bytes, with zlib's own checks: a truncated or damaged gzip
    /// stream is an error, never silently short data.
    private static func inflate(_ file: gzFile, path: String, into buffer: UnsafeMutableBufferPointer<UInt8>) throws -> Int {
        guard !buffer.isEmpty else { return 0 }
        let read = gzread(file, buffer.baseAddress, UInt32(min(buffer.count, 1 << 24)))
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if read < 0 || (code != Z_OK && code != Z_STREAM_END) {
            throw DatasetError.corrupt(file: path, reason: "gzip data damaged or cut short (\(message))")
        }
        return Int(read)
    }
}
