import Foundation

/// Where a float initializer's bytes are in a file: inside the ONNX file itself, or in an external data
/// file beside it.
///
/// Model parallelism exists for models no single rank can hold, so no rank may hold all of a model's
/// weights, not even while it reads the file: the model is decoded without the bytes of its large float
/// initializers, and each rank reads only the weights of the parameters it holds, when it builds its part.
/// Reads go through `pread` rather than a mapping, so what a rank has read and dropped does not stay in
/// its resident memory as mapped file pages.
struct StoredBytes: Sendable, Hashable {
    var path: String
    var offset: Int
    var length: Int

    /// The bytes, read now.
    func read() throws(ONNXTrainingError) -> Data {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ONNXTrainingError("cannot open \(path) to read weights: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var data = Data(count: length)
        var done = 0
        var failure: Int32 = 0
        data.withUnsafeMutableBytes { buffer in
            while done < length {
                let got = pread(descriptor, buffer.baseAddress! + done, length - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                if got <= 0 { failure = got < 0 ? errno : 0; break }
                done += got
            }
        }
        guard done == length else {
            let reason = failure == 0 ? "the file ends first" : String(cString: strerror(failure))
            throw ONNXTrainingError("cannot read bytes \(offset)+\(length) of \(path): \(reason)")
        }
        return data
    }
}

/// Decodes an ONNX file with its large float initializers left in the file.
enum StoredWeights {
    /// Initializers with fewer raw bytes stay in the decoded model: shape constants and small tensors
    /// cost nothing, and keeping them spares a read per tensor.
    static let threshold = 64 << 10

    /// The model without the raw bytes of its large float and double initializers, and where those bytes are.
    ///
    /// The file is mapped, and only the keys and lengths of the protocol-buffer fields are walked: the
    /// pages of the weights are never touched. The fields the walk does not rewrite are copied as they are.
    static func decode(path: String) throws(ONNXTrainingError) -> (model: Onnx_ModelProto, stored: [String: StoredBytes]) {
        // Only regular files: a FIFO would block the read, a device never end it.
        var status = stat()
        guard stat(path, &status) == 0 else { throw ONNXTrainingError("cannot be read: \(String(cString: strerror(errno)))") }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw ONNXTrainingError("cannot be read: not a regular file") }
        guard Int(status.st_size) <= ONNXImporter.maximumFileBytes else { throw ONNXTrainingError("the ONNX file is larger than 4 GiB") }
        let file: Data
        do { file = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw ONNXTrainingError("cannot be read: \(error.localizedDescription)")
        }
        let walked: Result<(Data, [String: StoredBytes]), ONNXTrainingError> = file.withUnsafeBytes { bytes in
            do throws(ONNXTrainingError) {
                var stored: [String: StoredBytes] = [:]
                let wire = Wire(bytes: bytes)
                // ModelProto.graph is field 7; GraphProto.initializer is field 5.
                let model = try wire.rewrite(0..<bytes.count, field: 7) { graph throws(ONNXTrainingError) in
                    try wire.rewrite(graph, field: 5) { tensor throws(ONNXTrainingError) in
                        try wire.stripped(tensor, path: path, into: &stored)
                    }
                }
                return .success((model, stored))
            } catch {
                return .failure(error)
            }
        }
        let (stripped, stored) = try walked.get()
        do { return (try Onnx_ModelProto(serializedBytes: stripped), stored) } catch {
            throw ONNXTrainingError("not a valid ONNX model: its bytes do not decode as an ONNX ModelProto")
        }
    }
}

/// The protocol-buffer wire format, as far as finding and rewriting length-delimited fields needs.
private struct Wire {
    let bytes: UnsafeRawBufferPointer

    struct Field {
        var number: UInt64
        /// 0 varint, 1 fixed 64-bit, 2 length-delimited, 5 fixed 32-bit.
        var wireType: UInt64
        /// The whole field, key included.
        var whole: Range<Int>
        /// The payload: the bytes of a length-delimited field after its length, the value otherwise.
        var payload: Range<Int>
    }

    func invalid() -> ONNXTrainingError {
        ONNXTrainingError("not a valid ONNX model: its bytes do not decode as an ONNX ModelProto")
    }

    func varint(_ at: inout Int, end: Int) throws(ONNXTrainingError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard at < end, shift < 64 else { throw invalid() }
            let byte = bytes[at]
            at += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    func fields(_ range: Range<Int>) throws(ONNXTrainingError) -> [Field] {
        var fields: [Field] = []
        var at = range.lowerBound
        while at < range.upperBound {
            let start = at
            let key = try varint(&at, end: range.upperBound)
            let (number, wireType) = (key >> 3, key & 7)
            let payload: Range<Int>
            switch wireType {
            case 0:
                let valueStart = at
                _ = try varint(&at, end: range.upperBound)
                payload = valueStart..<at
            case 1, 5:
                let size = wireType == 1 ? 8 : 4
                guard range.upperBound - at >= size else { throw invalid() }
                payload = at..<(at + size)
                at += size
            case 2:
                let length = try varint(&at, end: range.upperBound)
                guard length <= UInt64(range.upperBound - at) else { throw invalid() }
                payload = at..<(at + Int(length))
                at += Int(length)
            default:
                throw invalid()  // groups (3, 4) are not in ONNX's schema
            }
            guard number > 0 else { throw invalid() }
            fields.append(Field(number: number, wireType: wireType, whole: start..<at, payload: payload))
        }
        return fields
    }

    func append(_ range: Range<Int>, to data: inout Data) {
        data.append(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + range.lowerBound, count: range.count)
    }

    static func appendVarint(_ value: UInt64, to data: inout Data) {
        var value = value
        while value >= 0x80 {
            data.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        data.append(UInt8(value))
    }

    /// The message in `range` with every length-delimited field `field` replaced by what `transform`
    /// makes of its payload; other fields as they are.
    func rewrite(_ range: Range<Int>, field: UInt64, _ transform: (Range<Int>) throws(ONNXTrainingError) -> Data) throws(ONNXTrainingError) -> Data {
        var out = Data()
        for f in try fields(range) {
            guard f.number == field, f.wireType == 2 else { append(f.whole, to: &out); continue }
            let payload = try transform(f.payload)
            Self.appendVarint(field << 3 | 2, to: &out)
            Self.appendVarint(UInt64(payload.count), to: &out)
            out.append(payload)
        }
        return out
    }

    /// A TensorProto's bytes without its raw_data (field 9) when it is a large float or double tensor,
    /// recording where the data are; otherwise the tensor as it is.
    func stripped(_ range: Range<Int>, path: String, into stored: inout [String: StoredBytes]) throws(ONNXTrainingError) -> Data {
        let tensor = try fields(range)
        var dataType: UInt64 = 0
        var name: String?
        var raw: Field?
        for f in tensor {
            switch (f.number, f.wireType) {
            case (2, 0):
                var at = f.payload.lowerBound
                dataType = try varint(&at, end: f.payload.upperBound)
            case (8, 2):
                name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[f.payload]), as: UTF8.self)
            case (9, 2):
                raw = f
            default:
                break
            }
        }
        var out = Data()
        guard let raw, let name, dataType == 1 || dataType == 11, raw.payload.count >= StoredWeights.threshold else {
            append(range, to: &out)
            return out
        }
        stored[name] = StoredBytes(path: path, offset: raw.payload.lowerBound, length: raw.payload.count)
        for f in tensor where f.whole != raw.whole { append(f.whole, to: &out) }
        return out
    }
}
