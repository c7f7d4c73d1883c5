import ArgumentParser
import Foundation
import MPI
import Runtime

@main
struct Fedbaechi: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedbaechi",
        abstract: "Train neural networks on MPI ranks: Baechi model-parallel placement and private federated ADMM.",
        version: Fedbaechi.version,
        subcommands: [Doctor.self, Place.self, Calibrate.self, Train.self, ReportCommand.self, Profile.self, DesignCommand.self, AuditCommand.self]
    )

    /// The release, with the checkpoint format it writes (a checkpoint names the format it was written in).
    static let version = "fedbaechi 0.1.0 (checkpoint format \(CheckpointFile.formatVersion))"

    /// Runs the command line; failures become one line on stderr and a documented exit status.
    static func main() {
        MPIEnvironment.lineBufferStandardOutput()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            failure.exitProcess()
        } catch {
            // Under MPI with several ranks, a rank that fails must take the whole job down with
            // its message; otherwise the other ranks would wait for it forever.
            if MPIEnvironment.isInitialized, (try? MPIEnvironment.world().size) ?? 1 > 1 {
                MPIEnvironment.abort(code: 1, message: "error: \(error)")
            }
            exit(withError: error)
        }
    }
}

/// A failure the user can act on: one line of explanation and a documented exit status.
///
/// Exit statuses: 1 for a failure while running, 2 for input that is rejected (a file, a flag's
/// value), 3 when no placement plan fits the devices. Argument-parser's own usage errors keep 64.
struct CommandFailure: Error, CustomStringConvertible {
    enum Status: Int32 {
        case runtime = 1
        case badInput = 2
        case noPlanFits = 3
    }

    let message: String
    let status: Status

    init(_ message: String, status: Status = .badInput) {
        self.message = message
        self.status = status
    }

    var description: String { message }

    /// Ends a job in which every rank met this same failure: rank 0 says why once, then every rank
    /// exits with the failure's status. The barrier keeps mpirun from killing rank 0 (because another
    /// rank already exited non-zero) before its message is out.
    func exitEveryRank(_ world: Communicator) -> Never {
        if world.rank == 0 { FileHandle.standardError.write(Data(("fedbaechi: error: " + message + "\n").utf8)) }
        try? world.barrier()
        MPIEnvironment.finalize()
        exit(status.rawValue)
    }

    func exitProcess() -> Never {
        if MPIEnvironment.isInitialized, (try? MPIEnvironment.world().size) ?? 1 > 1 {
            MPIEnvironment.abort(code: status.rawValue, message: "error: " + message)
        }
        FileHandle.standardError.write(Data(("fedbaechi: error: " + message + "\n").utf8))
        exit(status.rawValue)
    }
}
