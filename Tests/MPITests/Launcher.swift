import Foundation
import MPI

/// The token of an abort scenario run (`AbortTests` starts one under mpirun), nil in every other run.
let abortScenario = ProcessInfo.processInfo.environment["FEDBAECHI_ABORT_SCENARIO"]

/// Runs `body` on every rank; an error on any rank ends the whole job with its message instead of
/// leaving the other ranks blocked in a collective (which would hang the suite).
func onEveryRank(_ scenario: String, _ body: (Communicator) throws -> Void) {
    do {
        let world = try MPIEnvironment.world()
        try body(world)
        try world.barrier()
    } catch {
        MPIEnvironment.abort(code: 70, message: "scenario '\(scenario)' threw: \(error)")
    }
}

/// Deterministic content for a message, so the receiver can check every byte.
func pattern(count: Int, source: Int, salt: Int) -> [UInt8] {
    var state = UInt64(truncatingIfNeeded: source &* 1_000_003 &+ salt &* 7919 &+ count)
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var index = 0
        while index < count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var word = state
            for _ in 0..<8 where index < count {
                buffer[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        initialized = count
    }
}

/// Byte-for-byte equality without printing megabytes when it fails.
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
}
