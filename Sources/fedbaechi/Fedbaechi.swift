import ArgumentParser
import Foundation
import Basics
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
        ProgramExit.prepareOutput()
        do {
            var command = try parseAsRoot(Train.rewritingModeAlias(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let error as any UserFacingError {
            ProgramExit.fail(error)
        } catch let error as LogicError {
            ProgramExit.fail(error)
        } catch {
            // A rank of a multi-rank job takes the job down with its message; otherwise argument-parser's
            // own errors (usage, help, version) exit as it decides.
            ProgramExit.endJobIfRunning(error)
            exit(withError: error)
        }
    }
}
