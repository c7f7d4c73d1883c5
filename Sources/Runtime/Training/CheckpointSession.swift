import Basics
import Foundation
import MPI

/// A run's checkpoints and its response to SIGINT/SIGTERM, for every mode: the directory agreed by every
/// rank, the checkpoint to resume from, the writes and their cost, the stop at a boundary every rank agrees on.
final class CheckpointSession {
    let settings: CheckpointSettings?
    let run: CheckpointRun?
    let identity: RunIdentity
    /// "step" or "round": what positions count.
    let unit: String
    private let world: Communicator?
    private let reporter: any TrainingReporter
    private var count = 0
    private var seconds = 0.0
    private(set) var lastPosition: Int?
    private let started = Date()

    /// Collective: opens the directory for this run on every rank (`world` nil: one process), or throws
    /// the reason it cannot be used (every rank reaches the same verdict). Rank 0 reports what it found.
    init(_ settings: CheckpointSettings?, identity: RunIdentity, unit: String, world: Communicator?,
         reporter: any TrainingReporter) throws {
        self.settings = settings
        self.identity = identity
        self.unit = unit
        self.world = world
        self.reporter = reporter
        let speaks = (world?.rank ?? 0) == 0
        Interruption.shared.install(unit: unit, speaks: speaks)
        guard let settings else {
            run = nil
            return
        }
        do {
            run = try CheckpointRun.open(path: settings.directory, identity: identity, resume: settings.resume,
                                         overwrite: settings.overwrite, unit: unit, world: world)
        } catch let error as CheckpointError {
            throw JobFailure(error.description, status: error.kind == .rejected ? .badInput : .runtime, everyRank: true)
        }
        if speaks { for note in run!.notes { reporter.note(note) } }
        if let resumed = run!.resumed {
            Interruption.shared.checkpointWritten(run!.filePattern(position: resumed.position), position: resumed.position)
        }
    }

    var resumed: Checkpoint? { run?.resumed }
    var directoryPath: String? { run?.directory.path }

    /// The path of this rank's checkpoint of `position`, for messages.
    func filePath(position: Int) -> String { run?.directory.filePath(position: position) ?? "" }

    /// Says that a resumed run is at or past its target; true when there is nothing to train.
    func alreadyComplete(target: Int) -> Bool {
        guard let run, let position = run.resumed?.position, position >= target else { return false }
        if (world?.rank ?? 0) == 0 {
            reporter.say("nothing to do: the checkpoint in \(run.directory.path) is at \(unit) \(position), "
                         + "\(position == target ? "the" : "past the") target of \(target) \(unit)s; raise the target to train further")
        }
        return true
    }

    /// Writes a checkpoint when one is due after `position` of `total`.
    func saveIfDue(_ position: Int, of total: Int, defaultEvery: Int, _ checkpoint: () -> Checkpoint) throws {
        guard let settings, settings.due(position, of: total, defaultEvery: defaultEvery) else { return }
        try save(checkpoint())
    }

    func save(_ checkpoint: Checkpoint) throws {
        guard let run else { return }
        let started = Date()
        do { try run.directory.save(checkpoint) } catch { throw Refusal(error.description, status: .runtime) }
        count += 1
        seconds += Date().timeIntervalSince(started)
        lastPosition = checkpoint.position
        Interruption.shared.checkpointWritten(run.filePattern(position: checkpoint.position), position: checkpoint.position)
    }

    /// Collective: when any rank received SIGINT or SIGTERM, writes a checkpoint at `position` (on every
    /// rank, unless one was just written there), has rank 0 say where, and ends the process with
    /// 128 + the signal's number.
    func stopIfInterrupted(at position: Int, _ checkpoint: () -> Checkpoint) throws {
        Interruption.shared.progress(position)
        let others = world.map { world in (0..<world.size).filter { $0 != world.rank } } ?? []
        guard let signal = try PeerWatch.shared.waiting(for: others, "the ranks' agreement after \(unit) \(position)", {
            () throws(MPIError) in try Interruption.shared.agreed(world: world)
        }) else { return }
        if run != nil, lastPosition != position { try save(checkpoint()) }
        try world?.barrier()
        Interruption.shared.report(final: true)
        if world != nil { MPIEnvironment.finalize() }
        Foundation.exit(Interruption.exitStatus(signal))
    }

    /// "checkpoints: 3 written by rank 0 in 0.21 s, 0.4% of the run" (nil when none was written).
    var summary: String? {
        guard count > 0 else { return nil }
        let total = Date().timeIntervalSince(started)
        return String(format: "checkpoints: %d written by rank %d in %.2f s, %.1f%% of the run", count, world?.rank ?? 0, seconds,
                      100 * seconds / max(total, 1e-9))
    }
}

/// The metrics file of a run, written by rank 0: appended to when the run resumes (its earlier lines stay).
func openMetrics(_ path: String?, appending: Bool) throws -> JSONLinesWriter? {
    guard let path else { return nil }
    return try JSONLinesWriter(path: path, appending: appending)
}
