import ArgumentParser
import Foundation
import MPI
import Runtime

/// `--checkpoint-dir`, `--checkpoint-every`, `--resume`: the same for every training mode.
struct CheckpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write checkpoints to this directory (one file per rank and checkpoint; the newest two are kept).",
                               valueName: "directory"))
    var checkpointDir: String?

    @Option(help: "Checkpoint every N training steps (single, model-parallel; default 100) or rounds (federated; default 1), and at the end.")
    var checkpointEvery: Int?

    @Flag(help: "Continue from the newest checkpoint in --checkpoint-dir that every rank has intact (a fresh start when there is none).")
    var resume = false

    func validate() throws {
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if checkpointDir == nil, resume || checkpointEvery != nil {
            throw ValidationError("--resume and --checkpoint-every need --checkpoint-dir")
        }
    }

    /// The directory for this rank, created if needed.
    func directory(rank: Int) throws -> CheckpointDirectory? {
        guard let checkpointDir else { return nil }
        do { return try CheckpointDirectory(path: checkpointDir, rank: rank) } catch {
            throw CommandFailure(error.description, status: .badInput)
        }
    }

    /// Whether a checkpoint is due after `position` of `total`.
    func due(_ position: Int, of total: Int, defaultEvery: Int) -> Bool {
        checkpointDir != nil && (position % (checkpointEvery ?? defaultEvery) == 0 || position == total)
    }
}

extension Train {
    /// What makes two runs the same run: a checkpoint is only resumed by a run with the same values.
    func runIdentity(extra: [String: String] = [:]) -> [String: String] {
        var identity = [
            "mode": mode.rawValue, "model": chosenModel.rawValue, "dataset": (dataset ?? chosenModel.dataset).rawValue,
            "seed": "\(seed)", "optimizer": optimizer.rawValue,
            "learning_rate": "\(learningRate ?? optimizer.defaultLearningRate)",
            "batch_size": "\(batchSize ?? chosenModel.defaultBatchSize)", "limit_train": limitTrain.map(String.init) ?? "all",
        ]
        identity.merge(extra) { $1 }
        return identity
    }

    /// The newest checkpoint every rank has (`world` nil: a single process), with the notes about damaged
    /// or foreign files printed by the rank that found them.
    func newestCheckpoint(_ directory: CheckpointDirectory, run: [String: String], world: Communicator?) throws -> Checkpoint? {
        let (position, notes): (Int?, [String])
        if let world {
            (position, notes) = try directory.newestCommon(run: run, world: world)
        } else {
            let intact = directory.intact(run: run)
            (position, notes) = (intact.positions.first, intact.notes)
        }
        for note in notes { FileHandle.standardError.write(Data("fedbaechi: rank \(directory.rank): \(note)\n".utf8)) }
        guard let position else { return nil }
        do { return try directory.load(position: position) } catch {
            throw CommandFailure(error.description, status: .runtime)
        }
    }

    func save(_ checkpoint: Checkpoint, to directory: CheckpointDirectory?, log: CheckpointLog) throws {
        guard let directory else { return }
        let started = Date()
        do { try directory.save(checkpoint) } catch { throw CommandFailure(error.description, status: .runtime) }
        log.count += 1
        log.seconds += Date().timeIntervalSince(started)
    }

    /// The metrics file, appended to when a run resumes (its earlier lines stay).
    func openMetrics(_ path: String, appending: Bool) throws -> FileHandle {
        guard appending, let handle = FileHandle(forWritingAtPath: path) else { return try openMetrics(path) }
        handle.seekToEndOfFile()
        return handle
    }

    /// One JSON object per line (the metrics files).
    func writeLine<Record: Encodable>(_ record: Record, to file: FileHandle?) throws {
        guard let file else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        file.write(try encoder.encode(record) + Data("\n".utf8))
    }
}

/// How many checkpoints a rank wrote and how long writing them took: the cost a user pays for them.
final class CheckpointLog {
    var count = 0
    var seconds = 0.0
    let started = Date()

    /// "checkpoints: 3 written by rank 0 in 0.21 s, 0.4% of the run" (nil when none was written).
    func summary(rank: Int) -> String? {
        guard count > 0 else { return nil }
        let total = Date().timeIntervalSince(started)
        return String(format: "checkpoints: %d written by rank %d in %.2f s, %.1f%% of the run", count, rank, seconds,
                      100 * seconds / max(total, 1e-9))
    }
}
