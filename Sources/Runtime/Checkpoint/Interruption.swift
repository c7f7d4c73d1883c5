import Foundation
import MPI

/// SIGINT and SIGTERM during training: the first one asks the run to stop at the next step (or round)
/// boundary that every rank agrees on, write a checkpoint there and say where it stopped; a second one
/// ends the process at once.
///
/// Slurm pre-empts a job with SIGTERM and kills it a grace period later (KillWait, 30 s by default);
/// Open MPI's mpirun forwards SIGINT and SIGTERM to the ranks as SIGTERM and kills them one second
/// later (`OMPI_MCA_odls_base_sigkill_timeout` sets that grace). In case the orderly stop does not
/// finish in time, rank 0 prints where the run was shortly after the signal arrives.
public final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var received: Int32?
    private var sources: [DispatchSourceSignal] = []
    private var reported = false
    private var position = 0
    private var lastCheckpoint: String?
    private var unit = "step"
    private var speaks = true
    /// Training has taken its first step: before that (loading data, placing) a signal ends the process
    /// at once, as without this handler, since there is no step boundary near to stop at.
    private var armed = false

    public static let shared = Interruption()

    /// How long after the signal rank 0 says where the run is, if the orderly stop has not said it yet:
    /// within mpirun's default one-second grace.
    public static let fallbackDelay = 0.25

    /// Starts listening. `speaks`: this process prints the message (rank 0).
    public func install(unit: String, speaks: Bool) {
        lock.lock()
        defer { lock.unlock() }
        self.unit = unit
        self.speaks = speaks
        guard sources.isEmpty else { return }
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.receive(number) }
            source.resume()
            sources.append(source)
        }
    }

    private func receive(_ number: Int32) {
        lock.lock()
        let first = received == nil
        if first { received = number }
        let (armed, speaks, lastCheckpoint, unit) = (self.armed, self.speaks, self.lastCheckpoint, self.unit)
        lock.unlock()
        guard armed else {
            if speaks {
                FileHandle.standardError.write(Data("fedbaechi: interrupted by \(Self.name(number)) before the first \(unit); last checkpoint: \(lastCheckpoint ?? "none")\n".utf8))
            }
            _exit(Self.exitStatus(number))
        }
        guard first else {
            FileHandle.standardError.write(Data("fedbaechi: \(Self.name(number)) again: stopping now\n".utf8))
            _exit(Self.exitStatus(number))
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.fallbackDelay) { [weak self] in self?.report(final: false) }
    }

    /// The signal this process received, if any.
    public var receivedSignal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Collective: the signal any rank received (the same answer on every rank), so that all stop together.
    public func agreed(world: Communicator?) throws(MPIError) -> Int32? {
        guard let world else { return receivedSignal }
        let number = try world.allreduce(Int(receivedSignal ?? 0), .max)
        return number == 0 ? nil : Int32(number)
    }

    /// Where the run is: `position` steps (or rounds) done; from the first call on, a signal stops the
    /// run at a step boundary.
    public func progress(_ position: Int) {
        lock.lock()
        armed = true
        self.position = position
        lock.unlock()
    }

    /// A checkpoint of `position` is complete on every rank: `files` names them.
    public func checkpointWritten(_ files: String, position: Int) {
        lock.lock()
        lastCheckpoint = "\(files) (\(unit) \(position))"
        lock.unlock()
    }

    /// Prints "interrupted at step N by SIGTERM; last checkpoint: …" (rank 0). `final`: the orderly stop is
    /// done; otherwise the stop is still under way (this is the early word in case it is cut short).
    public func report(final: Bool) {
        lock.lock()
        guard let number = received, speaks, final || !reported else { lock.unlock(); return }
        reported = true
        var line = "interrupted at \(unit) \(position) by \(Self.name(number)); last checkpoint: \(lastCheckpoint ?? "none")"
        if !final { line += "; stopping at the end of this \(unit)" }
        lock.unlock()
        FileHandle.standardError.write(Data("fedbaechi: \(line)\n".utf8))
    }

    /// The exit status of a run ended by `signal`: 128 + its number, as shells report it.
    public static func exitStatus(_ signal: Int32) -> Int32 { 128 + signal }

    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
