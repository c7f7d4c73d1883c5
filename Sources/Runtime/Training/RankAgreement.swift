import Basics
import MPI

/// Set-up that every rank does on its own before the first collective, with the ranks agreeing on its
/// outcome: a failure met by every rank (arguments, the audit, a missing dataset) is said once by rank
/// 0; one met by some ranks only (a file one node cannot read, an empty share of the data) ends the job
/// with each failing rank's own message, while the others wait to be ended, never in a collective the
/// failing ranks will not reach.
func agreeOnSetup<Result>(_ world: Communicator, _ body: () throws -> Result) throws -> Result {
    var outcome: Result?
    var failure: (any UserFacingError)?
    do {
        outcome = try body()
    } catch let error as any UserFacingError where !(error is MPIError) {
        // An MPI failure is not an outcome to agree on: the agreement is itself an MPI call.
        failure = error
    }
    let failedRanks = try world.allreduce(failure == nil ? 0 : 1, .sum)
    if let failure { throw JobFailure(failure, everyRank: failedRanks == world.size) }
    guard failedRanks == 0, let outcome else {
        try world.barrier()  // never completes: the failing ranks' MPI_Abort ends this one
        throw LogicError("a rank continued after another rank's set-up failed")
    }
    return outcome
}
