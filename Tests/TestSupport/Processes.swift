import Foundation

/// What one run of a command gave: its exit status (-1 when it was ended for running too long) and
/// what it wrote.
public typealias CommandResult = (status: Int32, stdout: String, stderr: String)

/// Runs a command to completion and returns its status, standard output and standard error. A command
/// still running after `timeout` seconds is ended, so that a hang fails the test instead of stalling it.
public func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                timeout: TimeInterval = 300) throws -> CommandResult {
    let job = try Background(executable, arguments, environment: environment)
    let status = job.wait(timeout: timeout) ?? -1
    return (status, job.standardOutput, job.standardError)
}

/// Runs the built `fedbaechi` with `arguments` (`run`).
public func fedbaechi(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 300) throws -> CommandResult {
    guard let binary = fedbaechiBinary else { throw MissingBinary() }
    return try run(binary.path, arguments, environment: environment, timeout: timeout)
}

/// The `fedbaechi` binary was not found beside the test bundle.
public struct MissingBinary: Error, CustomStringConvertible {
    public var description: String { "the fedbaechi binary is not built beside the tests (swift build --build-tests builds it)" }
}

/// A command running in the background, its output going to files (a chatty command never blocks on
/// a full pipe), with the environment of a one-machine MPI job: one BLAS thread, oversubscription, root.
public final class Background {
    public let process = Process()
    let outURL = temporaryPath("bg", extension: "out")
    let errURL = temporaryPath("bg", extension: "err")

    /// The test runner's threads block SIGINT and SIGTERM, and Foundation's `Process` passes that mask
    /// on: mpirun, which takes signals the classic way, would never see one. With `signals`, the
    /// command starts through perl (in every Debian system), which clears the mask and execs it.
    public init(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:], signals: Bool = false) throws {
        if signals {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
            process.arguments = ["-e", "use POSIX; sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die; exec { $ARGV[0] } @ARGV or die \"$ARGV[0]: $!\"",
                                 executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        if getuid() == 0 { environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
        environment.merge(extra) { $1 }
        process.environment = environment
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }

    public var pid: Int32 { process.processIdentifier }

    public func kill(pid: Int32, signal: Int32 = SIGKILL) { _ = Foundation.kill(pid, signal) }

    /// The exit status, or nil if it was still running after `timeout` seconds: then it is sent SIGTERM,
    /// and SIGKILL if it still runs five seconds later.
    public func wait(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        let grace = Date().addingTimeInterval(5)
        while process.isRunning && Date() < grace { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { _ = Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return nil
    }

    public var standardError: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
    public var standardOutput: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
}
