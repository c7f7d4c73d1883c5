/// The documented exit statuses of `fedbaechi`: what a script or a batch system reads to know what went wrong.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// The run failed while running (a rank died, a file could not be written, training diverged).
    case runtime = 1
    /// Input was rejected: a file, a flag's value, a configuration that cannot run as asked.
    case badInput = 2
    /// No placement plan fits the devices.
    case noPlanFits = 3
    /// `fedbaechi audit`: the schedule leaks, so training would refuse it.
    case auditRefused = 4
    /// Command-line usage errors (swift-argument-parser's own status).
    case usage = 64
}

/// A failure the user can act on: one line of explanation and the exit status it ends the program with.
///
/// Every module's errors that reach a person conform, so that the command line maps any of them to a
/// message and a status in one place, whoever raised it.
public protocol UserFacingError: Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
}

/// A failure with a message and a status and nothing else: for checks whose only outcome is to stop.
public struct Refusal: UserFacingError, Sendable, Equatable {
    public let description: String
    public let exitStatus: ExitStatus

    public init(_ description: String, status: ExitStatus = .badInput) {
        self.description = description
        self.exitStatus = status
    }
}

/// A broken invariant of fedbaechi itself, not of its input: a bug to report, never a user's mistake.
public struct LogicError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String, file: StaticString = #fileID, line: UInt = #line) {
        self.description = "internal error at \(file):\(line): \(description) (please report it)"
    }
}
