import Foundation
import MPI

/// A run's use of its checkpoint directory, agreed by every rank before training starts: the directory
/// is locked, holds this run's files only, and the position to resume from (if any) is one that every
/// rank has intact.
///
/// The rules, in the order they are checked (on rank 0, the answer broadcast):
/// - another job holding the directory's lock: refused, naming its host and pid;
/// - a fresh run (no `--resume`) into a directory that holds checkpoints: refused unless `overwrite`,
///   which removes them first;
/// - `--resume` of a directory whose `run.json` names another configuration: refused, naming what differs;
/// - `--resume` where some rank has no intact checkpoint of a position every other rank has: refused,
///   naming the rank and its files (never a silent restart that would drop the other ranks' progress).
public struct CheckpointRun: Sendable {
    public let directory: CheckpointDirectory
    public let identity: RunIdentity
    /// The checkpoint of this rank to continue from; nil for a start at position 0.
    public let resumed: Checkpoint?
    /// Lines for rank 0 to print (files passed over, files discarded by `overwrite`).
    public let notes: [String]
    /// Held (rank 0) until the process ends.
    let lock: DirectoryLock?

    /// Rank 0's verdict on the directory, sent to every rank.
    private struct Verdict: Codable {
        var failure: String?
        var notes: [String] = []
    }

    /// What one rank found among its own files.
    private struct Inventory: Codable {
        var intact: [Int]
        var files: [String]
        var problems: [String]
    }

    /// Collective over `world` (nil: a single process). `unit` names positions in messages ("step", "round").
    public static func open(path: String, identity: RunIdentity, resume: Bool, overwrite: Bool, unit: String,
                            world: Communicator?, keep: Int = 2) throws -> CheckpointRun {
        let rank = world?.rank ?? 0
        var verdict = Verdict()
        var lock: DirectoryLock?
        if rank == 0 {
            do throws(CheckpointError) {
                _ = try CheckpointDirectory(path: path, rank: 0)
                lock = try DirectoryLock.acquire(directory: path)
                verdict.notes = try claim(path: path, identity: identity, resume: resume, overwrite: overwrite, unit: unit)
            } catch {
                verdict.failure = error.description
            }
        }
        if let world {
            let bytes = try world.broadcastBytes(rank == 0 ? Array(try JSONEncoder().encode(verdict)) : [], root: 0)
            verdict = try JSONDecoder().decode(Verdict.self, from: Data(bytes))
        }
        if let failure = verdict.failure { throw CheckpointError(failure, kind: .rejected) }
        let directory = try CheckpointDirectory(path: path, rank: rank, keep: keep)
        guard resume else {
            return CheckpointRun(directory: directory, identity: identity, resumed: nil, notes: verdict.notes, lock: lock)
        }

        let found = directory.intact(run: identity.configuration)
        let mine = Inventory(intact: found.positions, files: directory.positions().map(directory.fileName(position:)),
                             problems: found.notes)
        let inventories: [Inventory]
        if let world {
            inventories = try world.allgatherv(Array(try JSONEncoder().encode(mine)))
                .map { try JSONDecoder().decode(Inventory.self, from: Data($0)) }
        } else {
            inventories = [mine]
        }
        var notes = verdict.notes
        for (r, inventory) in inventories.enumerated() {
            notes += inventory.problems.map { "rank \(r): \($0): passed over" }
        }
        guard inventories.contains(where: { !$0.files.isEmpty }) else {
            notes.append("no checkpoint to resume from in \(path): starting at \(unit) 0")
            return CheckpointRun(directory: directory, identity: identity, resumed: nil, notes: notes, lock: lock)
        }
        var common = Set(inventories[0].intact)
        for inventory in inventories.dropFirst() { common.formIntersection(inventory.intact) }
        guard let position = common.max() else {
            throw CheckpointError(missingCommonPosition(inventories, path: path, unit: unit), kind: .rejected)
        }
        for (r, inventory) in inventories.enumerated() where (inventory.intact.max() ?? position) > position {
            notes.append("rank \(r) has \(unit) \(inventory.intact.max()!), but not every rank has it intact: "
                         + "every rank resumes from \(unit) \(position)")
        }
        let checkpoint = try directory.load(position: position)
        return CheckpointRun(directory: directory, identity: identity, resumed: checkpoint, notes: notes, lock: lock)
    }

    /// "rank 1 has no intact checkpoint of step 6 or 8 (ckpt-...: checksum mismatch, ...); ranks 0, 2 have steps 6, 8".
    private static func missingCommonPosition(_ inventories: [Inventory], path: String, unit: String) -> String {
        let everywhere = Set(inventories.flatMap(\.intact)).sorted()
        let lacking = inventories.indices.filter { r in !Set(everywhere).isSubset(of: inventories[r].intact) }
        let worst = lacking.min { inventories[$0].intact.count < inventories[$1].intact.count } ?? 0
        let files = inventories[worst].problems.isEmpty
            ? (inventories[worst].files.isEmpty ? "it has no checkpoint files" : inventories[worst].files.joined(separator: ", "))
            : inventories[worst].problems.joined(separator: "; ")
        let others = inventories.indices.filter { !inventories[$0].intact.isEmpty }
        let othersText = others.isEmpty ? "no rank has an intact checkpoint"
            : "rank\(others.count == 1 ? "" : "s") \(others.map(String.init).joined(separator: ", ")) "
              + "\(others.count == 1 ? "has" : "have") \(unit)s \(everywhere.map(String.init).joined(separator: ", "))"
        return "cannot resume from \(path): rank \(worst) has no intact checkpoint of a \(unit) every rank has "
            + "(\(files)); \(othersText); restore those files, or start again with --overwrite"
    }

    /// Rank 0: checks the directory against this run and makes it this run's; returns lines to print.
    private static func claim(path: String, identity: RunIdentity, resume: Bool, overwrite: Bool,
                              unit: String) throws(CheckpointError) -> [String] {
        let saved = try RunRecord.read(directory: path)
        let ours = ownedFiles(path)
        if resume {
            if let saved, let differences = identity.differences(from: saved.runIdentity) {
                throw CheckpointError("--resume: the checkpoints in \(path) are of another run (configuration \(saved.identity), "
                                      + "this one is \(identity.hash)): \(differences); run with the saved run's flags, "
                                      + "or start this run with --overwrite instead of --resume", kind: .rejected)
            }
            if saved == nil { try RunRecord(identity: identity).write(directory: path) }
            return []
        }
        guard saved != nil || !ours.isEmpty else {
            try RunRecord(identity: identity).write(directory: path)
            return []
        }
        guard overwrite else {
            let newest = ours.compactMap(position(ofFile:)).max()
            let whose = saved.map { $0.identity == identity.hash ? "of this configuration (\($0.identity))"
                                                                 : "of another run (configuration \($0.identity))" } ?? "of an earlier run"
            throw CheckpointError("\(path) already holds checkpoints \(whose)\(newest.map { ", the newest at \(unit) \($0)" } ?? ""): "
                                  + "continue that run with --resume, or pass --overwrite to discard them", kind: .rejected)
        }
        for name in ours + [RunRecord.fileName] { unlink(path + "/" + name) }
        try RunRecord(identity: identity).write(directory: path)
        return ["--overwrite: removed \(ours.count) file\(ours.count == 1 ? "" : "s") of the earlier run from \(path)"]
    }

    /// Files of fedbaechi's own kinds in the directory (checkpoints, their temporaries, the saved plan).
    static func ownedFiles(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter {
            ($0.hasPrefix("ckpt-") && ($0.hasSuffix(".fbck") || $0.hasSuffix(".fbck.tmp"))) || $0 == planFileName
        }.sorted()
    }

    /// The saved placement of a model-parallel run, beside its checkpoints.
    public static let planFileName = "plan.json"

    static func position(ofFile name: String) -> Int? {
        guard name.hasPrefix("ckpt-"), name.hasSuffix(".fbck") else { return nil }
        return Int(name.dropFirst(5).prefix(10))
    }

    /// "/dir/ckpt-0000000036-rank*.fbck": every rank's file of a position, for messages.
    public func filePattern(position: Int) -> String {
        directory.path + "/" + String(format: "ckpt-%010d-rank*.fbck", position)
    }
}
