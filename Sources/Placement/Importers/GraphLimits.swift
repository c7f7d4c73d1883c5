import Basics
import Foundation

/// The largest graph fedbaechi reads. Each bound is far above any real training graph (the GNMT
/// profile has 2,828 ops; the benchmarks place 1M-node synthetic graphs) and far below the point
/// where a damaged or hostile file would exhaust memory or overflow the 32-bit indices placement
/// uses, so a file beyond one is refused with a message naming it instead of being half read.
public enum GraphLimits {
    /// A graph file (JSON): Foundation's JSON decoder holds several times the file in memory, so a
    /// 1 GiB file already needs over 10 GiB.
    public static let maximumFileBytes = 1 << 30
    /// Ops in one graph: 16,777,216.
    public static let maximumNodes = 1 << 24
    /// Edges in one graph: 134,217,728 (the synthetic graphs have at most 4 per op).
    public static let maximumEdges = 1 << 27
    /// Output ports of one op (TensorFlow and ONNX ops have a handful).
    public static let maximumOutputsPerNode = 1 << 16
    /// Tensors (output ports plus one control output per op) in one graph.
    public static let maximumTensors = 1 << 26
    /// Persistent, scratch and output bytes of all ops together (1 PiB): sums stay exact far below
    /// `Int.max` in every placer.
    public static let maximumTotalBytes = 1 << 50
}

/// Reading a graph file from disk with the limits applied before anything is allocated.
public enum GraphFile {
    /// Why a graph file could not be read (as opposed to read and rejected).
    public struct ReadError: Error, CustomStringConvertible, LocalizedError {
        public let description: String
        public var errorDescription: String? { description }
    }

    /// The file's bytes, refusing what is not a regular file (a FIFO or `/dev/zero` would be read
    /// forever) and what is larger than `limit`.
    public static func read(path: String, limit: Int = GraphLimits.maximumFileBytes) throws(ReadError) -> Data {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            throw ReadError(description: reason)
        }
        guard (attributes[.type] as? FileAttributeType) == .typeRegular else {
            throw ReadError(description: "not a regular file")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        guard size <= limit else {
            throw ReadError(description: "the file is \(Quantity.formatBytes(size)), more than the \(Quantity.formatBytes(limit)) fedbaechi reads")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ReadError(description: "permission denied") }
        defer { try? handle.close() }
        // One byte more than allowed: a file that grew since it was measured is still caught.
        let data: Data
        do { data = try handle.read(upToCount: limit + 1) ?? Data() } catch {
            throw ReadError(description: FileProblem.reason(error, path: path))
        }
        guard data.count <= limit else {
            throw ReadError(description: "the file is more than the \(Quantity.formatBytes(limit)) fedbaechi reads")
        }
        return data
    }
}

extension GraphError {
    /// A name from the file as a message shows it, in quotes: see `escaped`.
    static func quoted(_ text: String) -> String { MessageText.quoted(text) }

    /// Control characters escaped (so a message stays one line) and at most 80 characters
    /// (`MessageText.escaped`).
    static func escaped(_ text: String, limit: Int = 80) -> String { MessageText.escaped(text, limit: limit) }

    /// The last safeguard of `description`: whatever a detail quoted, one line of at most 600 characters.
    static func oneLine(_ text: String) -> String { escaped(text, limit: 600) }
}
