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

/// Text from a file (a name, a key) as a one-line message shows it. Files are untrusted: a damaged name can
/// hold newlines or be megabytes long, and a message must stay one readable line.
public enum MessageText {
    /// `text` in double quotes, escaped as `escaped` does.
    public static func quoted(_ text: String, limit: Int = 80) -> String { "\"" + escaped(text, limit: limit) + "\"" }

    /// Control characters and line separators escaped (`\n`, `\u{85}`), and at most `limit` characters,
    /// then the length in bytes.
    public static func escaped(_ text: String, limit: Int = 80) -> String {
        var shown = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit { return shown + "... (\(text.utf8.count) bytes)" }
            switch scalar {
            case "\n": shown += "\\n"
            case "\r": shown += "\\r"
            case "\t": shown += "\\t"
            default:
                if scalar.value < 0x20 || (0x7F..<0xA0).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    shown += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    shown.unicodeScalars.append(scalar)
                }
            }
            count += 1
        }
        return shown
    }
}
