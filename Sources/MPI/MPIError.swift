import Basics
import CMPI

/// An MPI error class: what kind of failure an MPI return code stands for, whatever the library's own
/// codes (`MPI_Error_class` maps a code to its class).
///
/// Like swift-system's `Errno`: a raw value with a name for each class fedbaechi can meet, so that a
/// caller matches `error.errorClass == .truncate` instead of comparing integers.
public struct MPIErrorClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The class of `code`, from `MPI_Error_class`. A code MPI does not know stands for itself, and so
    /// does every code while MPI is not running: Open MPI ends the process when `MPI_Error_class` is
    /// called before `MPI_Init` (which is how `MPI_Init_thread`'s own failure comes).
    public init(code: Int32) {
        var errorClass: Int32 = code
        if mpiIsRunning(), MPI_Error_class(code, &errorClass) != MPI_SUCCESS { errorClass = code }
        self.rawValue = errorClass
    }

    /// An invalid buffer pointer.
    public static let buffer = MPIErrorClass(rawValue: MPI_ERR_BUFFER)
    /// An invalid count (negative, or more than MPI's 32-bit counts hold).
    public static let count = MPIErrorClass(rawValue: MPI_ERR_COUNT)
    /// An invalid datatype.
    public static let type = MPIErrorClass(rawValue: MPI_ERR_TYPE)
    /// An invalid tag (negative, or above `MPI_TAG_UB`).
    public static let tag = MPIErrorClass(rawValue: MPI_ERR_TAG)
    /// An invalid communicator, or none was created.
    public static let communicator = MPIErrorClass(rawValue: MPI_ERR_COMM)
    /// A rank that is not in the communicator.
    public static let rank = MPIErrorClass(rawValue: MPI_ERR_RANK)
    /// An invalid request handle.
    public static let request = MPIErrorClass(rawValue: MPI_ERR_REQUEST)
    /// An invalid root of a collective.
    public static let root = MPIErrorClass(rawValue: MPI_ERR_ROOT)
    /// An invalid group (ranks repeated, or a rank outside it).
    public static let group = MPIErrorClass(rawValue: MPI_ERR_GROUP)
    /// An invalid reduction operation.
    public static let operation = MPIErrorClass(rawValue: MPI_ERR_OP)
    /// An invalid argument of another kind.
    public static let argument = MPIErrorClass(rawValue: MPI_ERR_ARG)
    /// A message longer than the buffer that received it.
    public static let truncate = MPIErrorClass(rawValue: MPI_ERR_TRUNCATE)
    /// A known error of no other class (such as too little thread support).
    public static let other = MPIErrorClass(rawValue: MPI_ERR_OTHER)
    /// An error inside the MPI library itself.
    public static let intern = MPIErrorClass(rawValue: MPI_ERR_INTERN)
    /// An error in a status of a multiple-request call.
    public static let inStatus = MPIErrorClass(rawValue: MPI_ERR_IN_STATUS)
    /// A request of a multiple-request call that has not completed.
    public static let pending = MPIErrorClass(rawValue: MPI_ERR_PENDING)
    /// The library ran out of memory.
    public static let noMemory = MPIErrorClass(rawValue: MPI_ERR_NO_MEM)
    /// An error MPI could not classify.
    public static let unknown = MPIErrorClass(rawValue: MPI_ERR_UNKNOWN)
    /// A peer process failed (MPI 5, ULFM; `MPIX_ERR_PROC_FAILED` in MPICH); nil where the library has no
    /// such class (Open MPI 4.1 without ULFM), whose failures then come as other classes.
    public static let processFailed: MPIErrorClass? = cmpi_err_proc_failed() < 0 ? nil : MPIErrorClass(rawValue: cmpi_err_proc_failed())

    /// Every named class, for look-ups by value.
    public static let named: [(errorClass: MPIErrorClass, name: String, meaning: String)] = {
        var all: [(MPIErrorClass, String, String)] = [
            (.buffer, "MPI_ERR_BUFFER", "invalid buffer"),
            (.count, "MPI_ERR_COUNT", "invalid count"),
            (.type, "MPI_ERR_TYPE", "invalid datatype"),
            (.tag, "MPI_ERR_TAG", "invalid tag"),
            (.communicator, "MPI_ERR_COMM", "invalid communicator"),
            (.rank, "MPI_ERR_RANK", "invalid rank"),
            (.request, "MPI_ERR_REQUEST", "invalid request"),
            (.root, "MPI_ERR_ROOT", "invalid root"),
            (.group, "MPI_ERR_GROUP", "invalid group"),
            (.operation, "MPI_ERR_OP", "invalid reduction operation"),
            (.argument, "MPI_ERR_ARG", "invalid argument"),
            (.truncate, "MPI_ERR_TRUNCATE", "message longer than the receive buffer"),
            (.other, "MPI_ERR_OTHER", "other known error"),
            (.intern, "MPI_ERR_INTERN", "internal error of the MPI library"),
            (.inStatus, "MPI_ERR_IN_STATUS", "error in a request's status"),
            (.pending, "MPI_ERR_PENDING", "request still pending"),
            (.noMemory, "MPI_ERR_NO_MEM", "MPI ran out of memory"),
            (.unknown, "MPI_ERR_UNKNOWN", "unknown error"),
        ]
        if let processFailed { all.append((processFailed, "MPI_ERR_PROC_FAILED", "a peer process failed")) }
        return all.map { (errorClass: $0.0, name: $0.1, meaning: $0.2) }
    }()

    /// The name MPI gives the class (`MPI_ERR_TRUNCATE`), or nil for a class not named here.
    public var name: String? { Self.named.first { $0.errorClass == self }?.name }

    public var description: String {
        guard let entry = Self.named.first(where: { $0.errorClass == self }) else { return "MPI error class \(rawValue)" }
        return "\(entry.name): \(entry.meaning)"
    }
}

/// A failed MPI call, with the text MPI itself gives for the code.
///
/// Every call in this module runs under `MPI_ERRORS_RETURN`, so a bad argument or a
/// communication failure reaches Swift as a thrown `MPIError` rather than as MPI's
/// default abort of the whole job. It ends a run (status 1): the failure is the job's, not its input's.
public struct MPIError: UserFacingError, Sendable, Equatable {
    /// The return code of the failed call.
    public let code: Int32
    /// The MPI error class of `code` (`.rank`, `.count`, ...).
    public let errorClass: MPIErrorClass
    /// The MPI function that failed, such as `MPI_Recv`.
    public let function: String
    /// MPI's own description of the error, from `MPI_Error_string`.
    public let message: String

    public init(code: Int32, function: String) {
        self.code = code
        self.function = function
        self.errorClass = MPIErrorClass(code: code)
        self.message = MPIError.describe(code)
    }

    /// An error this layer detects before calling MPI (an argument MPI cannot express).
    public init(function: String, message: String, errorClass: MPIErrorClass = .argument) {
        self.code = errorClass.rawValue
        self.errorClass = errorClass
        self.function = function
        self.message = message
    }

    public var exitStatus: ExitStatus { .runtime }

    public var description: String { "\(function) failed: \(message) (\(errorClass.name ?? "MPI error class \(errorClass.rawValue)"))" }

    /// MPI's text for `code` (`MPI_Error_string`, which Open MPI too allows only while MPI runs).
    static func describe(_ code: Int32) -> String {
        guard mpiIsRunning() else { return "MPI error code \(code)" }
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else { return "MPI error code \(code)" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Whether `MPI_Init` has run and `MPI_Finalize` has not: the two queries MPI answers at any time.
func mpiIsRunning() -> Bool {
    var initialized: Int32 = 0
    var finalized: Int32 = 0
    MPI_Initialized(&initialized)
    MPI_Finalized(&finalized)
    return initialized != 0 && finalized == 0
}

/// Turns an MPI return code into a thrown error: the one place where codes are checked.
@inline(__always)
func check(_ code: Int32, _ function: @autoclosure () -> String) throws(MPIError) {
    if code != MPI_SUCCESS { throw MPIError(code: code, function: function()) }
}

/// MPI counts are 32-bit; a larger buffer is refused with a clear error instead of wrapping.
@inline(__always)
func mpiCount(_ count: Int, _ function: String) throws(MPIError) -> Int32 {
    guard count >= 0, count <= Int(Int32.max) else {
        throw MPIError(function: function, message: "count \(count) does not fit MPI's 32-bit count", errorClass: .count)
    }
    return Int32(count)
}
