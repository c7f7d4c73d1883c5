import CZlib
import Foundation

/// An IDX file (LeCun's MNIST format): a magic number naming the element type and rank, the
/// dimensions as big-endian 32-bit integers, then the elements. Only unsigned bytes (type 0x08) occur
/// in the datasets fedbaechi reads.
public struct IDXArray: Sendable {
    public var dimensions: [Int]
    public var bytes: [UInt8]

    /// Reads a gzip'd (or plain) IDX file of unsigned bytes, checking that it is complete.
    public static func read(path: String) throws -> IDXArray {
        let data = try inflate(path: path)
        return try parse(data, file: path)
    }

    static func parse(_ data: [UInt8], file: String) throws -> IDXArray {
        guard data.count >= 4 else { throw DatasetError.corrupt(file: file, reason: "too short for an IDX header") }
        guard data[0] == 0, data[1] == 0, data[2] == 0x08, (1...4).contains(data[3]) else {
            let magic = data[0..<4].map { String(format: "%02x", $0) }.joined()
            throw DatasetError.corrupt(file: file, reason: "bad magic number 0x\(magic), expected an IDX file of unsigned bytes")
        }
        let rank = Int(data[3])
        let headerSize = 4 + 4 * rank
        guard data.count >= headerSize else { throw DatasetError.corrupt(file: file, reason: "header cut short") }
        var dimensions: [Int] = []
        for d in 0..<rank {
            let at = 4 + 4 * d
            dimensions.append(data[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) })
        }
        let expected = dimensions.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard dimensions.allSatisfy({ $0 > 0 && $0 < 1 << 28 }), data.count - headerSize == expected else {
            throw DatasetError.corrupt(file: file, reason: "header promises \(dimensions.map(String.init).joined(separator: "x")) bytes of data, file holds \(data.count - headerSize)")
        }
        return IDXArray(dimensions: dimensions, bytes: Array(data[headerSize...]))
    }

    /// The whole decompressed content, with zlib's own checks: a truncated or damaged gzip stream is
    /// an error, never silently short data.
    static func inflate(path: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else {
            throw DatasetError.corrupt(file: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let read = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
            if read < 0 || (code != Z_OK && code != Z_STREAM_END) {
                throw DatasetError.corrupt(file: path, reason: "gzip data damaged or cut short (\(message))")
            }
            if read == 0 { break }
            result.append(contentsOf: chunk[0..<Int(read)])
        }
        return result
    }
}
