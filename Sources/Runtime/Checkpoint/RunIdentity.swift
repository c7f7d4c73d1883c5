import Foundation

/// What makes two runs the same run: the configuration that decides every number a run computes (model,
/// data, plan, optimizer, seed, ranks), as flag-like names and values, and a hash of it that names the run.
///
/// The target length (epochs, steps, rounds) is not part of it: a run may be continued further than
/// first planned.
public struct RunIdentity: Sendable, Equatable, Codable {
    public let configuration: [String: String]

    public init(_ configuration: [String: String]) { self.configuration = configuration }

    /// FNV-1a (64 bits) over the sorted `name=value` lines, in hexadecimal: stable across platforms and
    /// releases, which Swift's `Hasher` is not.
    public var hash: String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for name in configuration.keys.sorted() {
            for byte in Array("\(name)=\(configuration[name]!)\n".utf8) {
                value ^= UInt64(byte)
                value = value &* 0x0000_0100_0000_01b3
            }
        }
        return String(format: "%016llx", value)
    }

    /// "model mlp (saved run: lenet), seed 2 (saved run: 1)": what differs from `saved`, or nil when nothing does.
    public func differences(from saved: RunIdentity) -> String? {
        let names = Set(configuration.keys).union(saved.configuration.keys).filter { configuration[$0] != saved.configuration[$0] }
        guard !names.isEmpty else { return nil }
        return names.sorted().map { "\($0) \(configuration[$0] ?? "(not set)") (saved run: \(saved.configuration[$0] ?? "not set"))" }
            .joined(separator: ", ")
    }
}

/// `run.json` in a checkpoint directory: which run the checkpoints there belong to.
public struct RunRecord: Codable, Sendable {
    public var identity: String
    public var configuration: [String: String]
    public var started: String
    public var host: String

    public static let fileName = "run.json"

    public init(identity: RunIdentity) {
        self.identity = identity.hash
        configuration = identity.configuration
        started = ISO8601DateFormatter().string(from: Date())
        host = ProcessInfo.processInfo.hostName
    }

    public var runIdentity: RunIdentity { RunIdentity(configuration) }

    public static func read(directory: String) throws(CheckpointError) -> RunRecord? {
        let path = directory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError("cannot read \(path): \(String(cString: strerror(errno)))", kind: .rejected)
        }
        do { return try JSONDecoder().decode(RunRecord.self, from: data) } catch {
            throw CheckpointError("\(path) is not a run record of fedbaechi (expected JSON with identity and configuration)",
                                  kind: .rejected)
        }
    }

    public func write(directory: String) throws(CheckpointError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = directory + "/" + Self.fileName
        do { try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CheckpointError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// An advisory lock (flock) on a checkpoint directory, held by one process of a job (rank 0) until it
/// exits: a second job on the same directory is refused instead of mixing its files with the first's.
/// The lock file names the holder, so the refusal can say who it is.
public final class DirectoryLock: Sendable {
    public let path: String
    private let descriptor: Int32

    public static let fileName = "lock"

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Takes the lock without waiting, or explains who holds it.
    ///
    /// The holder's line is composed before the lock is taken and written over the old one in one
    /// `pwrite`, so the window in which a loser can see no holder is a few system calls wide; a loser
    /// that still finds the file empty reads it again for up to a second before saying "holder unknown".
    public static func acquire(directory: String) throws(CheckpointError) -> DirectoryLock {
        let path = directory + "/" + fileName
        let holder = "host \(ProcessInfo.processInfo.hostName), pid \(getpid()), since \(ISO8601DateFormatter().string(from: Date()))\n"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CheckpointError("cannot open the lock file \(path): \(String(cString: strerror(errno)))", kind: .rejected)
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            close(descriptor)
            guard reason == EWOULDBLOCK else {
                throw CheckpointError("cannot lock \(path): \(String(cString: strerror(reason)))", kind: .rejected)
            }
            let holder = Self.holder(path: path)
            throw CheckpointError("\(directory) is in use by another run (\(holder ?? "holder unknown")): "
                                  + "wait for it to end, or use another --checkpoint-dir", kind: .rejected)
        }
        let length = holder.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        if length >= 0 { _ = ftruncate(descriptor, off_t(length)) }
        return DirectoryLock(path: path, descriptor: descriptor)
    }

    /// The holder's line, waiting up to a second for a holder that has the lock but has not written it yet.
    private static func holder(path: String) -> String? {
        for attempt in 0..<50 {
            if attempt > 0 { usleep(20_000) }
            let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { return text }
        }
        return nil
    }
}
