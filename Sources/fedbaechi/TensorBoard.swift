import Foundation
import Basics
import Placement
import SwiftProtobuf

// The three TensorBoard messages fedbaechi writes, as SwiftProtobuf messages written by hand (the
// machine has no protoc): the fields of tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto that scalar curves use.
//
//   message Event   { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }
//   message Summary { repeated Value value = 1; }
//   message Summary.Value { string tag = 1; oneof value { float simple_value = 2; } }

struct TensorBoardEvent: Sendable {
    var wallTime: Double = 0
    var step: Int64 = 0
    var fileVersion: String?
    var summary: TensorBoardSummary?
    var unknownFields = SwiftProtobuf.UnknownStorage()
}

struct TensorBoardSummary: Sendable {
    var value: [TensorBoardValue] = []
    var unknownFields = SwiftProtobuf.UnknownStorage()
}

struct TensorBoardValue: Sendable {
    var tag = ""
    var simpleValue: Float = 0
    var unknownFields = SwiftProtobuf.UnknownStorage()
}

extension TensorBoardEvent: SwiftProtobuf.Message, SwiftProtobuf._MessageImplementationBase, SwiftProtobuf._ProtoNameProviding {
    static let protoMessageName = "tensorflow.Event"
    // Fields 1 wall_time, 2 step, 3 file_version, then 5 (a delta of 2) summary, in SwiftProtobuf's name-map bytecode.
    static let _protobuf_nameMap = SwiftProtobuf._NameMap(bytecode: "\0\u{3}wall_time\0\u{1}step\0\u{3}file_version\0\u{4}\u{2}summary\0")

    mutating func decodeMessage<D: SwiftProtobuf.Decoder>(decoder: inout D) throws {
        while let field = try decoder.nextFieldNumber() {
            switch field {
            case 1: try decoder.decodeSingularDoubleField(value: &wallTime)
            case 2: try decoder.decodeSingularInt64Field(value: &step)
            case 3: try decoder.decodeSingularStringField(value: &fileVersion)
            case 5: try decoder.decodeSingularMessageField(value: &summary)
            default: break
            }
        }
    }

    func traverse<V: SwiftProtobuf.Visitor>(visitor: inout V) throws {
        if wallTime != 0 { try visitor.visitSingularDoubleField(value: wallTime, fieldNumber: 1) }
        if step != 0 { try visitor.visitSingularInt64Field(value: step, fieldNumber: 2) }
        if let fileVersion { try visitor.visitSingularStringField(value: fileVersion, fieldNumber: 3) }
        if let summary { try visitor.visitSingularMessageField(value: summary, fieldNumber: 5) }
        try unknownFields.traverse(visitor: &visitor)
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.wallTime == rhs.wallTime && lhs.step == rhs.step && lhs.fileVersion == rhs.fileVersion && lhs.summary == rhs.summary
            && lhs.unknownFields == rhs.unknownFields
    }
}

extension TensorBoardSummary: SwiftProtobuf.Message, SwiftProtobuf._MessageImplementationBase, SwiftProtobuf._ProtoNameProviding {
    static let protoMessageName = "tensorflow.Summary"
    static let _protobuf_nameMap = SwiftProtobuf._NameMap(bytecode: "\0\u{1}value\0")

    mutating func decodeMessage<D: SwiftProtobuf.Decoder>(decoder: inout D) throws {
        while let field = try decoder.nextFieldNumber() {
            if field == 1 { try decoder.decodeRepeatedMessageField(value: &value) }
        }
    }

    func traverse<V: SwiftProtobuf.Visitor>(visitor: inout V) throws {
        if !value.isEmpty { try visitor.visitRepeatedMessageField(value: value, fieldNumber: 1) }
        try unknownFields.traverse(visitor: &visitor)
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.value == rhs.value && lhs.unknownFields == rhs.unknownFields }
}

extension TensorBoardValue: SwiftProtobuf.Message, SwiftProtobuf._MessageImplementationBase, SwiftProtobuf._ProtoNameProviding {
    static let protoMessageName = "tensorflow.Summary.Value"
    static let _protobuf_nameMap = SwiftProtobuf._NameMap(bytecode: "\0\u{1}tag\0\u{3}simple_value\0")

    mutating func decodeMessage<D: SwiftProtobuf.Decoder>(decoder: inout D) throws {
        while let field = try decoder.nextFieldNumber() {
            switch field {
            case 1: try decoder.decodeSingularStringField(value: &tag)
            case 2: try decoder.decodeSingularFloatField(value: &simpleValue)
            default: break
            }
        }
    }

    func traverse<V: SwiftProtobuf.Visitor>(visitor: inout V) throws {
        if !tag.isEmpty { try visitor.visitSingularStringField(value: tag, fieldNumber: 1) }
        // Written even when 0: a scalar of 0 is a point of the curve.
        try visitor.visitSingularFloatField(value: simpleValue, fieldNumber: 2)
        try unknownFields.traverse(visitor: &visitor)
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.tag == rhs.tag && lhs.simpleValue.bitPattern == rhs.simpleValue.bitPattern && lhs.unknownFields == rhs.unknownFields
    }
}

/// A TensorBoard event file (`events.out.tfevents.<seconds>.<host>`): TFRecord framing around each
/// serialized Event, that is the length (UInt64), the masked CRC-32C of the length, the data, and the
/// masked CRC-32C of the data, all little-endian.
struct TensorBoardWriter {
    let path: String
    private var data = Data()

    /// A writer of a new event file in `directory` (created if needed); nothing is written until `flush`.
    init(directory: String, wallTime: Double) throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw Refusal("cannot create the TensorBoard folder \(directory): \(FileProblem.unwritable(directory + "/x") ?? "the file system refused")")
            }
        } else if !isDirectory.boolValue {
            throw Refusal("\(directory) is a file; --tensorboard needs a folder")
        }
        path = directory + "/events.out.tfevents.\(Int(wallTime)).\(ProcessInfo.processInfo.hostName).fedbaechi"
        var header = TensorBoardEvent()
        header.wallTime = wallTime
        header.fileVersion = "brain.Event:2"
        try append(header)
    }

    /// Adds one scalar point per tag at `step`.
    mutating func add(step: Int, wallTime: Double, scalars: [(tag: String, value: Double)]) throws {
        guard !scalars.isEmpty else { return }
        var event = TensorBoardEvent()
        event.wallTime = wallTime
        event.step = Int64(step)
        event.summary = TensorBoardSummary(value: scalars.map { TensorBoardValue(tag: $0.tag, simpleValue: Float($0.value)) })
        try append(event)
    }

    private mutating func append(_ event: TensorBoardEvent) throws {
        let bytes: Data = try event.serializedBytes()
        var length = UInt64(bytes.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        data.append(lengthBytes)
        appendUInt32(Self.masked(CRC32C.checksum(lengthBytes)))
        data.append(bytes)
        appendUInt32(Self.masked(CRC32C.checksum(bytes)))
    }

    private mutating func appendUInt32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    func flush() throws {
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw Refusal(FileProblem.writeFailure(error, path: path))
        }
    }

    /// TFRecord's mask: rotate right by 15 bits and add a constant.
    static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xa282_ead8 }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord files use; zlib has only CRC-32.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    static func checksum(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
