import ArgumentParser
import Foundation
import MPI
import Runtime

/// `--checkpoint-dir`, `--checkpoint-every`, `--resume`, `--overwrite`: the same for every training mode.
struct CheckpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write checkpoints to this directory (one file per rank and checkpoint; the newest two are kept). The directory belongs to one run: it is locked while the run lasts, and a run with checkpoints there is continued with --resume or replaced with --overwrite.",
                               valueName: "directory"))
    var checkpointDir: String?

    @Option(help: "Checkpoint every N training steps (single, model-parallel; default 100) or rounds (federated; default 1), at the end, and when the run is stopped by SIGINT or SIGTERM.")
    var checkpointEvery: Int?

    @Flag(help: "Continue the run whose checkpoints are in --checkpoint-dir, from the newest position every rank has intact (a fresh start when the directory has none). Refused when the flags describe another run.")
    var resume = false

    @Flag(help: "Start a fresh run in --checkpoint-dir even though it holds another run's checkpoints: they are deleted first.")
    var overwrite = false

    func validate() throws {
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if checkpointDir == nil, resume || checkpointEvery != nil || overwrite {
            throw ValidationError("--resume, --overwrite and --checkpoint-every need --checkpoint-dir")
        }
        if resume && overwrite { throw ValidationError("--resume continues a run and --overwrite replaces it: choose one") }
    }

    /// Whether a checkpoint is due after `position` of `total`.
    func due(_ position: Int, of total: Int, defaultEvery: Int) -> Bool {
        checkpointDir != nil && (position % (checkpointEvery ?? defaultEvery) == 0 || position == total)
    }
}

extension Train {
    /// What makes two runs the same run: a checkpoint is only resumed by a run with the same values.
    func runIdentity(extra: [String: String] = [:]) -> RunIdentity {
        var identity = [
            "mode": mode.rawValue, "model": chosenModel.rawValue, "dataset": (dataset ?? chosenModel.dataset).rawValue,
            "seed": "\(seed)", "optimizer": optimizer.rawValue,
            "learning_rate": "\(learningRate ?? optimizer.defaultLearningRate)",
            "batch_size": "\(batchSize ?? chosenModel.defaultBatchSize)", "limit_train": limitTrain.map(String.init) ?? "all",
        ]
        identity.merge(extra) { $1 }
        return RunIdentity(identity)
    }

    /// Opens the checkpoint directory for this run on every rank (`world` nil: one process), or ends the
    /// job with the reason it cannot be used. Rank 0 prints what it found; nil without `--checkpoint-dir`.
    func openCheckpoints(_ identity: RunIdentity, unit: String, world: Communicator?) throws -> CheckpointRun? {
        Interruption.shared.install(unit: unit, speaks: world?.rank ?? 0 == 0)
        guard let path = checkpointOptions.checkpointDir else { return nil }
        let run: CheckpointRun
        do {
            run = try CheckpointRun.open(path: path, identity: identity, resume: checkpointOptions.resume,
                                         overwrite: checkpointOptions.overwrite, unit: unit, world: world)
        } catch let error as CheckpointError {
            // Every rank reached the same verdict.
            let failure = CommandFailure(error.description, status: error.kind == .rejected ? .badInput : .runtime)
            if let world { failure.exitEveryRank(world) }
            throw failure
        }
        if world?.rank ?? 0 == 0 {
            for note in run.notes { FileHandle.standardError.write(Data("fedbaechi: \(note)\n".utf8)) }
        }
        if let resumed = run.resumed { Interruption.shared.checkpointWritten(run.filePattern(position: resumed.position), position: resumed.position) }
        return run
    }

    /// Says that a resumed run is already at or past its target; true when there is nothing to train.
    func alreadyComplete(_ run: CheckpointRun?, target: Int, unit: String, speaks: Bool) -> Bool {
        guard let position = run?.resumed?.position, position >= target else { return false }
        if speaks {
            print("nothing to do: the checkpoint in \(run!.directory.path) is at \(unit) \(position), "
                  + "\(position == target ? "the" : "past the") target of \(target) \(unit)s; raise the target to train further")
        }
        return true
    }

    func save(_ checkpoint: Checkpoint, to run: CheckpointRun?, log: CheckpointLog) throws {
        guard let run else { return }
        let started = Date()
        do { try run.directory.save(checkpoint) } catch { throw CommandFailure(error.description, status: .runtime) }
        log.count += 1
        log.seconds += Date().timeIntervalSince(started)
        log.lastPosition = checkpoint.position
        Interruption.shared.checkpointWritten(run.filePattern(position: checkpoint.position), position: checkpoint.position)
    }

    /// Collective: stops the run when any rank received SIGINT or SIGTERM, after `saveCheckpoint` (called
    /// on every rank at the same position unless one was just written there), with rank 0 saying where.
    func stopIfInterrupted(at position: Int, log: CheckpointLog, world: Communicator?,
                           saveCheckpoint: () throws -> Void) throws {
        Interruption.shared.progress(position)
        guard let signal = try Interruption.shared.agreed(world: world) else { return }
        if checkpointOptions.checkpointDir != nil, log.lastPosition != position { try saveCheckpoint() }
        try world?.barrier()
        Interruption.shared.report(final: true)
        if world != nil { MPIEnvironment.finalize() }
        Foundation.exit(Interruption.exitStatus(signal))
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
    var lastPosition: Int?
    let started = Date()

    /// "checkpoints: 3 written by rank 0 in 0.21 s, 0.4% of the run" (nil when none was written).
    func summary(rank: Int) -> String? {
        guard count > 0 else { return nil }
        let total = Date().timeIntervalSince(started)
        return String(format: "checkpoints: %d written by rank %d in %.2f s, %.1f%% of the run", count, rank, seconds,
                      100 * seconds / max(total, 1e-9))
    }
}
