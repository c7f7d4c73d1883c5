import Basics
import MPI
import TestSupport
import Testing

/// MPI's error classes by name, and what an `MPIError` says, without MPI running (Open MPI allows no
/// `MPI_Error_class` then: a code stands for itself). The rank suite checks the classes against MPI's own.
@Suite(.disabled(if: underMPILauncher, "runs without MPI: the rank suite checks the classes under mpirun"))
struct MPIErrorClassTests {
    @Test func everyNamedClassIsItsOwnClass() {
        let named = MPIErrorClass.named
        #expect(Set(named.map(\.errorClass)).count == named.count, "two names for one class")
        #expect(Set(named.map(\.name)).count == named.count)
        for entry in named {
            #expect(entry.errorClass.name == entry.name)
            #expect(entry.errorClass.description.hasPrefix(entry.name + ": "))
        }
        #expect(MPIErrorClass.truncate.name == "MPI_ERR_TRUNCATE")
        #expect(MPIErrorClass.communicator.name == "MPI_ERR_COMM")
        #expect(MPIErrorClass.other.name == "MPI_ERR_OTHER")
    }

    @Test func aClassWithoutANameSaysItsNumber() {
        let unnamed = MPIErrorClass(rawValue: 9_999)
        #expect(unnamed.name == nil)
        #expect(unnamed.description == "MPI error class 9999")
    }

    @Test func anErrorNamesItsFunctionAndClassAndEndsTheRun() {
        let error = MPIError(code: MPIErrorClass.truncate.rawValue, function: "MPI_Recv")
        #expect(error.errorClass == .truncate)
        #expect(error.message == "MPI error code \(MPIErrorClass.truncate.rawValue)")
        #expect(error.description.hasPrefix("MPI_Recv failed: "))
        #expect(error.description.hasSuffix("(MPI_ERR_TRUNCATE)"))
        #expect(error.exitStatus == .runtime)
        let refused = MPIError(function: "MPI_Scatterv", message: "root has 2 chunks for 3 ranks", errorClass: .count)
        #expect(refused.description == "MPI_Scatterv failed: root has 2 chunks for 3 ranks (MPI_ERR_COUNT)")
        // The command line maps every user-facing error to a message and a status in one place.
        let asUserFacing: any Error = refused
        #expect((asUserFacing as? any UserFacingError)?.exitStatus == .runtime)
    }
}
