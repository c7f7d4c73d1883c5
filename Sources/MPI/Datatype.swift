import CMPI

/// A Swift type that MPI can send as a contiguous buffer of a predefined MPI datatype.
public protocol MPIElement: BitwiseCopyable, Sendable {
    static var mpiDatatype: MPI_Datatype { get }
}

extension Float: MPIElement { public static var mpiDatatype: MPI_Datatype { cmpi_type_float() } }
extension Double: MPIElement { public static var mpiDatatype: MPI_Datatype { cmpi_type_double() } }
extension Int32: MPIElement { public static var mpiDatatype: MPI_Datatype { cmpi_type_int32() } }
extension Int64: MPIElement { public static var mpiDatatype: MPI_Datatype { cmpi_type_int64() } }
extension UInt64: MPIElement { public static var mpiDatatype: MPI_Datatype { cmpi_type_uint64() } }
/// Raw bytes.
extension UInt8: MPIElement { public static var mpiDatatype: MPI_Datatype { cmpi_type_byte() } }
/// `Int` is 64-bit on every platform fedbaechi runs on.
extension Int: MPIElement { public static var mpiDatatype: MPI_Datatype { cmpi_type_int64() } }

/// The reductions fedbaechi needs; each works element by element.
public enum ReductionOperation: Sendable {
    case sum, max, min

    var handle: MPI_Op {
        switch self {
        case .sum: cmpi_op_sum()
        case .max: cmpi_op_max()
        case .min: cmpi_op_min()
        }
    }
}
