import Basics
import Foundation

/// Reads one file format into a `Graph`. Add a format (ONNX, a framework's trace) by conforming
/// to this protocol and listing the importer in `GraphImporters.all`, or, for an importer in
/// another module that Placement must not depend on (ONNX needs SwiftProtobuf), by passing it to
/// `GraphImporters.importGraph(from:name:among:)` beside `GraphImporters.all`.
public protocol GraphImporter: Sendable {
    /// A short name for messages and plans, e.g. `graph-json`.
    var formatName: String { get }
    /// What the format is, for the message when no importer recognises a file ("an ONNX model").
    var formatSummary: String { get }
    /// Whether the format is JSON: a file that is not JSON is then not in this format.
    var isJSON: Bool { get }
    /// A cheap look at the content (not the file name): does `data` seem to be in this format?
    func recognizes(_ data: Data) -> Bool
    /// Reads and validates the graph; `name` is used when the file does not name it.
    func importGraph(from data: Data, name: String) throws(GraphError) -> Graph
}

extension GraphImporter {
    public var formatSummary: String { formatName }
    public var isJSON: Bool { true }
}

/// The formats fedbaechi reads, tried in order; the format is chosen by content.
public enum GraphImporters {
    public static let all: [any GraphImporter] = [GraphJSONImporter(), TensorFlowProfileImporter()]

    /// The importer among `importers` whose format `data` is in.
    public static func importer(for data: Data, among importers: [any GraphImporter] = all) throws(GraphError) -> any GraphImporter {
        guard data.count <= GraphLimits.maximumFileBytes else {
            throw .tooLarge("the file is \(Quantity.formatBytes(data.count)), more than the \(Quantity.formatBytes(GraphLimits.maximumFileBytes)) fedbaechi reads")
        }
        if let importer = importers.first(where: { $0.recognizes(data) }) { return importer }
        // Formats that are not JSON (a binary model) are named in the messages too, so that a
        // damaged binary file is not only called "not JSON".
        let binary = importers.filter { !$0.isJSON }.map(\.formatSummary)
        let orBinary = binary.isEmpty ? "" : " or " + binary.joined(separator: " or ")
        guard let first = data.first(where: { !JSONScan.isWhitespace($0) }) else { throw .notJSON("the file is empty") }
        guard first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else {
            throw .notJSON("the file does not start with { or [" + (binary.isEmpty ? "" : ", and it is not " + binary.joined(separator: " or ")))
        }
        do { _ = try JSONSerialization.jsonObject(with: data) } catch {
            throw .notJSON((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)")
        }
        throw .unrecognizedFormat("unrecognised graph file: expected fedbaechi's graph JSON (\"nodes\" with \"compute_us\", \"edges\" with \"src\" and \"dst\") or a Baechi/TensorFlow profile (\"nodes\" with \"inputs\" and \"cost\")" + orBinary)
    }

    /// Detects the format of `data` among `importers` and reads it.
    public static func importGraph(from data: Data, name: String, among importers: [any GraphImporter] = all) throws(GraphError) -> (graph: Graph, format: String) {
        let importer = try importer(for: data, among: importers)
        return (try importer.importGraph(from: data, name: name), importer.formatName)
    }
}

/// Small helpers shared by the JSON importers.
enum JSONScan {
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// The object keys found in the first `limit` bytes (a key is a string followed by `:`),
    /// or nil when the content does not start with a JSON object.
    static func leadingKeys(_ data: Data, limit: Int = 1 << 16) -> Set<String>? {
        data.prefix(limit).withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Set<String>? in
            let bytes = buffer.bindMemory(to: UInt8.self)
            var i = 0
            while i < bytes.count, isWhitespace(bytes[i]) { i += 1 }
            guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return nil }
            var keys = Set<String>()
            while i < bytes.count {
                guard bytes[i] == UInt8(ascii: "\"") else { i += 1; continue }
                let start = i + 1
                i = start
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                    i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard i < bytes.count else { break }
                let end = i
                i += 1
                var j = i
                while j < bytes.count, isWhitespace(bytes[j]) { j += 1 }
                if j < bytes.count, bytes[j] == UInt8(ascii: ":"), end - start < 64 {
                    keys.insert(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
                }
            }
            return keys
        }
    }

    /// One line describing why JSONDecoder rejected `data`, with the path to the value.
    static func describe(_ error: Error, data: Data) -> GraphError {
        guard let error = error as? DecodingError else { return .malformed("\(error)") }
        func path(_ keys: [CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text.isEmpty ? "the document" : text
        }
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return .notJSON(underlying ?? syntaxError(in: data) ?? context.debugDescription)
            }
            return .malformed("\(path(context.codingPath)): \(context.debugDescription)")
        case .keyNotFound(let key, let context):
            return .malformed("\(path(context.codingPath + [key])) is missing")
        case .typeMismatch(let type, let context):
            return .malformed("\(path(context.codingPath)): expected \(describe(type))")
        case .valueNotFound(let type, let context):
            return .malformed("\(path(context.codingPath)): expected \(describe(type)), found null")
        @unknown default:
            return .malformed("\(error)")
        }
    }

    /// Where and why `data` is not JSON. Foundation's JSONDecoder only says "The given data was not
    /// valid JSON"; JSONSerialization names the place (a truncated file, an unescaped control
    /// character, a number no Double holds), so the failure is parsed again, once, to say that.
    static func syntaxError(in data: Data) -> String? {
        do { _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        }
        // JSONSerialization reads 1e-400 as 0; JSONDecoder refuses it without a word.
        return unreadableNumber(in: data).map { "Number \($0) is not representable in Swift." }
    }

    private static let numberBytes = Set("-+.eE0123456789".utf8)

    /// The first number outside strings that a Double cannot hold (it overflows, or underflows to 0).
    static func unreadableNumber(in data: Data) -> String? {
        let bytes = [UInt8](data)
        var i = 0
        var inString = false
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                if b == UInt8(ascii: "\\") { i += 1 } else if b == UInt8(ascii: "\"") { inString = false }
                i += 1
                continue
            }
            if b == UInt8(ascii: "\"") { inString = true; i += 1; continue }
            guard b == UInt8(ascii: "-") || (b >= 0x30 && b <= 0x39) else { i += 1; continue }
            let start = i
            while i < bytes.count, numberBytes.contains(bytes[i]) { i += 1 }
            let token = String(decoding: bytes[start..<i], as: UTF8.self)
            let mantissa = token.prefix { $0 != "e" && $0 != "E" }
            if let value = Double(token), value.isFinite, value != 0 || !mantissa.contains(where: { ("1"..."9").contains($0) }) { continue }
            return token.count > 40 ? String(token.prefix(40)) + "..." : token
        }
        return nil
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Int.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }

    /// A whole number of bytes from a JSON number, or nil.
    static func wholeBytes(_ value: Double) -> Int? {
        guard value.isFinite, value.rounded() == value, abs(value) < 9e15 else { return nil }
        return Int(value)
    }
}

/// Merges colocation labels: nodes whose label lists share any entry get one label.
enum ColocationLabels {
    static func resolve(_ lists: [[String]]) -> [String?] {
        var index = [String: Int]()
        var sets = UnionFind<Int>(count: 0)
        var names = [String]()
        func id(_ label: String) -> Int {
            if let existing = index[label] { return existing }
            let new = sets.append()
            index[label] = new
            names.append(label)
            return new
        }
        // The first label of a list names the joined set.
        for list in lists {
            guard let first = list.first else { continue }
            let root = sets.find(id(first))
            for label in list.dropFirst() { sets.merge(id(label), into: root) }
        }
        return lists.map { list in list.first.map { names[sets.find(index[$0]!)] } }
    }
}
