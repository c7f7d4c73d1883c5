import Foundation

/// A file of one JSON object per line (metrics, reports): each record is written whole and flushed,
/// so a reader following the file never sees half a line, and a run that dies keeps what it wrote.
public final class JSONLinesWriter {
    public let path: String
    private let handle: FileHandle
    private let encoder: JSONEncoder

    /// Opens `path` for writing: truncated, or (`appending`, a resumed run) continued after its last line.
    public init(path: String, appending: Bool = false) throws(Refusal) {
        self.path = path
        let exists = FileManager.default.fileExists(atPath: path)
        if !(appending && exists) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw Refusal("cannot write \(path): \(Self.reason(path))")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw Refusal("cannot write \(path): \(Self.reason(path))") }
        if appending { handle.seekToEndOfFile() }
        self.handle = handle
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
    }

    /// Appends one record as one line.
    public func write<Record: Encodable>(_ record: Record) throws {
        var line = try encoder.encode(record)
        line.append(0x0A)
        try handle.write(contentsOf: line)
    }

    public func close() throws { try handle.close() }

    /// Why a path cannot be written, in words.
    private static func reason(_ path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            return "its directory \(directory) does not exist"
        }
        if !directory.isEmpty, !isDirectory.boolValue { return "\(directory) is not a directory" }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return "it is a directory" }
        return "permission denied"
    }
}
