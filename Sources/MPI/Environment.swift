import CMPI
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The MPI thread support levels, weakest first.
public enum ThreadLevel: Int32, Sendable, Comparable, CustomStringConvertible {
    case single, funneled, serialized, multiple

    init(mpiValue: Int32) {
        switch mpiValue {
        case Int32(MPI_THREAD_SINGLE): self = .single
        case Int32(MPI_THREAD_FUNNELED): self = .funneled
        case Int32(MPI_THREAD_SERIALIZED): self = .serialized
        default: self = .multiple
        }
    }

    var mpiValue: Int32 {
        switch self {
        case .single: Int32(MPI_THREAD_SINGLE)
        case .funneled: Int32(MPI_THREAD_FUNNELED)
        case .serialized: Int32(MPI_THREAD_SERIALIZED)
        case .multiple: Int32(MPI_THREAD_MULTIPLE)
        }
    }

    public static func < (a: ThreadLevel, b: ThreadLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .single: "MPI_THREAD_SINGLE"
        case .funneled: "MPI_THREAD_FUNNELED"
        case .serialized: "MPI_THREAD_SERIALIZED"
        case .multiple: "MPI_THREAD_MULTIPLE"
        }
    }
}

/// Process-wide MPI state: initialisation, finalisation, the world, abort and the clock.
///
/// MPI can be initialised once per process and finalised once. `initialize` is idempotent
/// and registers `MPI_Finalize` with `atexit`, so a program that exits early, or throws out
/// of `main`, still finalises; otherwise `mpirun` reports the job as failed.
public enum MPIEnvironment {
    private struct State: Sendable {
        var threadLevel: ThreadLevel?
        var atexitRegistered = false
    }

    private static let state = Mutex(State())

    /// Initialises MPI (once) with at least `required` thread support and returns the level provided.
    ///
    /// Swift tasks hop between threads, so fedbaechi asks for `serialized` at least: one thread
    /// at a time calls MPI, not always the same one.
    @discardableResult
    public static func initialize(required: ThreadLevel = .serialized) throws(MPIError) -> ThreadLevel {
        let result: Result<ThreadLevel, MPIError> = state.withLock { state in
            if let level = state.threadLevel { return .success(level) }
            var provided: Int32 = 0
            let code = MPI_Init_thread(nil, nil, required.mpiValue, &provided)
            if code != MPI_SUCCESS { return .failure(MPIError(code: code, function: "MPI_Init_thread")) }
            let level = ThreadLevel(mpiValue: provided)
            if level < required {
                return .failure(MPIError(
                    function: "MPI_Init_thread",
                    message: "the MPI library provides \(level), fedbaechi needs \(required)",
                    errorClass: .other))
            }
            MPI_Comm_set_errhandler(cmpi_comm_world(), cmpi_errors_return())
            MPI_Comm_set_errhandler(cmpi_comm_self(), cmpi_errors_return())
            if !state.atexitRegistered {
                atexit { MPIEnvironment.finalize() }
                state.atexitRegistered = true
            }
            state.threadLevel = level
            return .success(level)
        }
        return try result.get()
    }

    /// Whether `MPI_Init_thread` has run and `MPI_Finalize` has not.
    public static var isInitialized: Bool { mpiIsRunning() }

    /// The thread level MPI provided, once initialised.
    public static var threadLevel: ThreadLevel? { state.withLock { $0.threadLevel } }

    /// Finalises MPI if it is running; safe to call more than once.
    public static func finalize() {
        guard isInitialized else { return }
        MPI_Finalize()
    }

    /// All ranks of the job. Initialises MPI if needed.
    public static func world() throws(MPIError) -> Communicator {
        try initialize()
        return try Communicator(borrowing: cmpi_comm_world())
    }

    /// Whether this process was started by an MPI launcher (mpirun, srun) rather than alone.
    ///
    /// Read from the launcher's environment before MPI is initialised, so that commands which
    /// never need MPI (such as `fedbaechi place` on a login node) can stay MPI-free.
    public static var isUnderLauncher: Bool {
        let names = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"]
        return names.contains { getenv($0) != nil }
    }

    /// Ends every rank of the job with `code`, after writing `message` to standard error.
    ///
    /// One failing rank must not leave the others blocked in a receive or a collective;
    /// `MPI_Abort` on the world communicator makes the launcher kill them all.
    public static func abort(code: Int32 = 1, message: String) -> Never {
        let rank = isInitialized ? (try? world().rank) : nil
        let prefix = rank.map { "fedbaechi: rank \($0): " } ?? "fedbaechi: "
        writeErrorLine(prefix + message)
        if isInitialized {
            MPI_Abort(cmpi_comm_world(), code)
        }
        exit(code)
    }

    /// Seconds since an arbitrary point in the past, from `MPI_Wtime`.
    public static func wallTime() -> Double { MPI_Wtime() }

    /// The MPI library's own version string (for example "Open MPI v4.1.4, ...").
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&buffer, &length) == MPI_SUCCESS else { return "unknown" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
    }

    /// The MPI standard version the library implements, such as (3, 1).
    public static var standardVersion: (major: Int, minor: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        MPI_Get_version(&major, &minor)
        return (Int(major), Int(minor))
    }

    /// This node's name as MPI reports it.
    public static var processorName: String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var length: Int32 = 0
        guard MPI_Get_processor_name(&buffer, &length) == MPI_SUCCESS else { return "unknown" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Makes stdout line-buffered so progress reaches a batch job's .out file as it happens.
    public static func lineBufferStandardOutput() { makeStandardOutputLineBuffered() }
}
