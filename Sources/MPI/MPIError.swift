import CMPI

/// A failed MPI call, with the text MPI itself gives for the code.
///
/// Every call in this module runs under `MPI_ERRORS_RETURN`, so a bad argument or a
/// communication failure reaches Swift as a thrown `MPIError` rather than as MPI's
/// default abort of the whole job.
public struct MPIError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The return code of the failed call.
    public let code: Int32
    /// The MPI error class of `code` (`MPI_ERR_RANK`, `MPI_ERR_COUNT`, ...).
    public let errorClass: Int32
    /// The MPI function that failed, such as `MPI_Recv`.
    public let function: String
    /// MPI's own description of the error, from `MPI_Error_string`.
    public let message: String

    public init(code: Int32, function: String) {
        self.code = code
        self.function = function
        var errorClass: Int32 = code
        if MPI_Error_class(code, &errorClass) != MPI_SUCCESS { errorClass = code }
        self.errorClass = errorClass
        self.message = MPIError.describe(code)
    }

    /// An error this layer detects before calling MPI (an argument MPI cannot express).
    public init(function: String, message: String, errorClass: Int32 = MPI_ERR_ARG) {
        self.code = errorClass
        self.errorClass = errorClass
        self.function = function
        self.message = message
    }

    public var description: String { "\(function) failed: \(message) (MPI error class \(errorClass))" }

    static func describe(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else { return "MPI error code \(code)" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
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
        throw MPIError(function: function, message: "count \(count) does not fit MPI's 32-bit count", errorClass: MPI_ERR_COUNT)
    }
    return Int32(count)
}
