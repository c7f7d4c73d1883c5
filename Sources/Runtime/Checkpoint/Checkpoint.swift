import Basics
import CZlib
import Foundation
import MPI
import Tensors

/// What one rank saves to continue training exactly where it was.
///
/// `position` counts what is done: training steps (single and model-parallel) or rounds (federated).
/// `run` describes the run (mode, model, seed, ...): a checkpoint is only resumed by the same run.
public struct Checkpoint: Sendable, Equatable {
    public var position: Int
    public var rank: Int
    public var ranks: Int
    public var run: [String: String]
    /// Counters and generator states, bit patterns included (a Double is stored by its bits).
    public var scalars: [String: UInt64] = [:]
    public var parameters = ParameterState()

    public init(position: Int, rank: Int, ranks: Int, run: [String: String]) {
        self.position = position
        self.rank = rank
        self.ranks = ranks
        self.run = run
    }
}

/// A checkpoint that cannot be used, or a checkpoint directory that cannot be, with the reason.
public struct CheckpointError: UserFacingError {
    /// `rejected`: the directory or flags do not fit this run (the user must choose); `failed`: reading
    /// or writing went wrong while running.
    public enum Kind: Sendable { case rejected, failed }

    public let description: String
    public let kind: Kind
    public init(_ description: String, kind: Kind = .failed) {
        self.description = description
        self.kind = kind
    }

    public var exitStatus: ExitStatus { kind == .rejected ? .badInput : .runtime }
}

/// The file format: "FBCKPT" + format version (UInt16) + payload length (UInt64) + CRC-32 of the
/// payload (UInt32), then the payload: a JSON header (its length first, UInt32) naming every array
/// and its length, followed by the arrays' Float32 values, all little-endian. The CRC catches a
/// torn or damaged file; the version lets a later release refuse, rather than misread, an old one.
public enum CheckpointFile {
    static let magic = Array("FBCKPT".utf8)
    public static let formatVersion: UInt16 = 1
    /// Refuse before allocating: no checkpoint of ours comes near this.
    static let largestPayload = 1 << 36

    private struct Header: Codable {
        var position: Int
        var rank: Int
        var ranks: Int
        var run: [String: String]
        var scalars: [String: UInt64]
        var optimizerSteps: [String: Int]
        /// (name, kind: "value" or "slot", slot index, element count), in payload order.
        var arrays: [ArrayEntry]
    }

    private struct ArrayEntry: Codable {
        var parameter: String
        var slot: Int  // -1 for the value itself
        var count: Int
    }

    public static func encode(_ checkpoint: Checkpoint) throws -> Data {
        var file = Data()
        try stream(checkpoint) { file.append(contentsOf: $0) }
        return file
    }

    /// The file's bytes in order, handed to `sink` piece by piece straight from the parameter arrays:
    /// writing a checkpoint takes no second copy of what the rank holds (a model-parallel rank's memory
    /// stays within its plan while it saves). The checksum, which precedes the payload, is a first pass.
    static func stream(_ checkpoint: Checkpoint, into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var entries: [ArrayEntry] = []
        var blobs: [[Float]] = []
        for name in checkpoint.parameters.values.keys.sorted() {
            let values = checkpoint.parameters.values[name]!
            entries.append(ArrayEntry(parameter: name, slot: -1, count: values.count))
            blobs.append(values)
            for (slot, array) in (checkpoint.parameters.slots[name] ?? []).enumerated() {
                entries.append(ArrayEntry(parameter: name, slot: slot, count: array.count))
                blobs.append(array)
            }
        }
        let header = Header(position: checkpoint.position, rank: checkpoint.rank, ranks: checkpoint.ranks, run: checkpoint.run,
                            scalars: checkpoint.scalars, optimizerSteps: checkpoint.parameters.optimizerSteps, arrays: entries)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var payloadHead = Data()
        let json = try encoder.encode(header)
        append(UInt32(json.count), to: &payloadHead)
        payloadHead.append(json)
        // The payload: the header, then every array as Float32 little-endian (every platform we build for).
        func payload(_ piece: (UnsafeRawBufferPointer) throws -> Void) rethrows {
            try payloadHead.withUnsafeBytes(piece)
            for blob in blobs { try blob.withUnsafeBytes(piece) }
        }
        var crc: uLong = CZlib.crc32(0, nil, 0)
        payload { crc = crc32(crc, $0) }
        var prefix = Data(magic)
        append(formatVersion, to: &prefix)
        append(UInt64(payloadHead.count + blobs.reduce(0) { $0 + 4 * $1.count }), to: &prefix)
        append(UInt32(truncatingIfNeeded: crc), to: &prefix)
        try prefix.withUnsafeBytes(sink)
        try payload(sink)
    }

    public static func decode(_ data: Data) throws(CheckpointError) -> Checkpoint {
        let prefix = magic.count + 2 + 8 + 4
        guard data.count >= prefix, Array(data.prefix(magic.count)) == magic else {
            throw CheckpointError("not a fedbaechi checkpoint")
        }
        let version: UInt16 = read(data, at: magic.count)
        guard version == formatVersion else {
            throw CheckpointError("checkpoint format version \(version), this fedbaechi reads version \(formatVersion)")
        }
        let length: UInt64 = read(data, at: magic.count + 2)
        guard length <= UInt64(largestPayload), data.count - prefix == Int(length) else {
            throw CheckpointError("the file is truncated or has trailing bytes (\(data.count - prefix) payload bytes, header says \(length))")
        }
        let payload = data[(data.startIndex + prefix)..<data.endIndex]  // a slice: no copy of the arrays
        let stored: UInt32 = read(data, at: magic.count + 10)
        guard crc32(payload) == stored else { throw CheckpointError("checksum mismatch: the file is damaged") }
        guard payload.count >= 4 else { throw CheckpointError("the payload has no header") }
        let jsonLength = Int(read(payload, at: 0) as UInt32)
        guard jsonLength <= payload.count - 4 else { throw CheckpointError("the header runs past the end of the file") }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: payload.subdata(in: (payload.startIndex + 4)..<(payload.startIndex + 4 + jsonLength)))
        } catch {
            throw CheckpointError("unreadable header: \(error)")
        }
        var checkpoint = Checkpoint(position: header.position, rank: header.rank, ranks: header.ranks, run: header.run)
        checkpoint.scalars = header.scalars
        checkpoint.parameters.optimizerSteps = header.optimizerSteps
        var offset = 4 + jsonLength
        for entry in header.arrays {
            guard entry.count >= 0, entry.count <= (payload.count - offset) / 4 else {
                throw CheckpointError("array \(entry.parameter) runs past the end of the file")
            }
            let values = payload.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: entry.count) { buffer, initialized in
                    let source = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 4 * entry.count)])
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
                    initialized = entry.count
                }
            }
            offset += 4 * entry.count
            if entry.slot < 0 {
                checkpoint.parameters.values[entry.parameter] = values
            } else {
                checkpoint.parameters.slots[entry.parameter, default: []].append(values)
            }
        }
        guard offset == payload.count else { throw CheckpointError("\(payload.count - offset) unexplained bytes at the end") }
        return checkpoint
    }

    private static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { UInt32(truncatingIfNeeded: crc32(CZlib.crc32(0, nil, 0), $0)) }
    }

    /// `crc` continued over `bytes`.
    private static func crc32(_ crc: uLong, _ bytes: UnsafeRawBufferPointer) -> uLong {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return crc }
        var crc = crc
        var offset = 0
        while offset < bytes.count {  // zlib takes lengths as UInt32
            let length = min(1 << 30, bytes.count - offset)
            crc = CZlib.crc32(crc, base + offset, uInt(length))
            offset += length
        }
        return crc
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    private static func read<T: FixedWidthInteger>(_ data: Data, at offset: Int) -> T {
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { target in
            data.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + MemoryLayout<T>.size)]))
            }
        }
        return T(littleEndian: value)
    }
}

/// One rank's checkpoints in a directory shared by all ranks: `ckpt-<position>-rank<rank>.fbck`.
/// Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a crash leaves
/// either the old file set or the new one; the newest `keep` are kept, so a damaged newest one
/// still leaves one to fall back to. The directory holds one run's files only (`CheckpointRun`
/// sees to that), so pruning never touches another run's.
public struct CheckpointDirectory: Sendable {
    public let path: String
    public let rank: Int
    public let keep: Int

    public init(path: String, rank: Int, keep: Int = 2) throws(CheckpointError) {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) != nil else {
                throw CheckpointError("cannot create the checkpoint directory \(path): \(Self.creationProblem(path))", kind: .rejected)
            }
        } else if !isDirectory.boolValue {
            throw CheckpointError("\(path) is a file; --checkpoint-dir needs a directory", kind: .rejected)
        }
        self.path = path
        self.rank = rank
        self.keep = max(1, keep)
    }

    /// Why `path` could not be made: the first ancestor that exists and is not a writable directory.
    static func creationProblem(_ path: String) -> String {
        var ancestor = (path as NSString).deletingLastPathComponent
        while !ancestor.isEmpty, !FileManager.default.fileExists(atPath: ancestor) { ancestor = (ancestor as NSString).deletingLastPathComponent }
        var isDirectory: ObjCBool = false
        if ancestor.isEmpty { ancestor = "." }
        if FileManager.default.fileExists(atPath: ancestor, isDirectory: &isDirectory), !isDirectory.boolValue {
            return "\(ancestor) is a file, not a directory"
        }
        return access(ancestor, W_OK) == 0 ? "the file system refused" : "\(ancestor) is not writable"
    }

    public func fileName(position: Int) -> String { String(format: "ckpt-%010d-rank%05d.fbck", position, rank) }

    /// Writes atomically, then removes this rank's checkpoints older than the newest `keep`, and those
    /// after this one: they are of a course the run abandoned when it resumed from an earlier step.
    public func save(_ checkpoint: Checkpoint) throws(CheckpointError) {
        let final = path + "/" + fileName(position: checkpoint.position)
        let temporary = final + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw CheckpointError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var failure: String?
        do {
            try CheckpointFile.stream(checkpoint) { raw in
                var written = 0
                while written < raw.count {
                    let n = write(descriptor, raw.baseAddress! + written, raw.count - written)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw CheckpointError(String(cString: strerror(errno)))
                    }
                    written += n
                }
            }
        } catch let error as CheckpointError {
            failure = error.description
        } catch {
            failure = "cannot encode the checkpoint: \(error)"
        }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw CheckpointError("cannot write \(temporary): \(failure)")
        }
        guard rename(temporary, final) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CheckpointError("cannot rename \(temporary): \(reason)")
        }
        let directory = open(path, O_RDONLY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        let existing = positions()
        for later in existing where later > checkpoint.position { unlink(path + "/" + fileName(position: later)) }
        for old in existing.filter({ $0 <= checkpoint.position }).dropLast(keep) { unlink(path + "/" + fileName(position: old)) }
    }

    /// Positions this rank has files for, ascending (whether intact or not).
    public func positions() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let suffix = String(format: "-rank%05d.fbck", rank)
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("ckpt-"), name.hasSuffix(suffix) else { return nil }
            return Int(name.dropFirst(5).dropLast(suffix.count))
        }.sorted()
    }

    public func load(position: Int) throws(CheckpointError) -> Checkpoint {
        let file = path + "/" + fileName(position: position)
        guard let data = FileManager.default.contents(atPath: file) else { throw CheckpointError("cannot read \(file)") }
        do throws(CheckpointError) {
            let checkpoint = try CheckpointFile.decode(data)
            guard checkpoint.position == position, checkpoint.rank == rank else {
                throw CheckpointError("it holds position \(checkpoint.position) of rank \(checkpoint.rank)")
            }
            return checkpoint
        } catch {
            throw CheckpointError("\(file): \(error.description)")
        }
    }

    /// The path of this rank's checkpoint at `position`.
    public func filePath(position: Int) -> String { path + "/" + fileName(position: position) }

    /// The intact checkpoints, newest first, with a note for each damaged one passed over.
    public func intact(run: [String: String]) -> (positions: [Int], notes: [String]) {
        var good: [Int] = []
        var notes: [String] = []
        for position in positions().reversed() {
            do {
                let checkpoint = try load(position: position)
                guard checkpoint.run == run else {
                    let differing = Set(run.keys).union(checkpoint.run.keys).filter { run[$0] != checkpoint.run[$0] }.sorted()
                    notes.append("\(fileName(position: position)) is from another run (\(differing.map { "\($0) \(checkpoint.run[$0] ?? "-") vs \(run[$0] ?? "-")" }.joined(separator: ", "))): skipped")
                    continue
                }
                good.append(position)
            } catch {
                notes.append("\(error.description)")
            }
        }
        return (good, notes)
    }
}

extension Double {
    /// A Double stored in a checkpoint scalar by its bits, so it comes back exactly.
    public init(checkpointBits: UInt64?) { self = Double(bitPattern: checkpointBits ?? 0) }
}
