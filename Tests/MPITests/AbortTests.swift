import Foundation
import MPI
import TestSupport
import Testing

/// The abort scenario itself: started by `AbortTests` under mpirun, never directly.
@Suite(.enabled(if: underMPILauncher && abortScenario != nil,
                "AbortTests starts this scenario under mpirun: it never runs on its own"))
struct AbortScenario {
    @Test func oneRankAborts() throws {
        let world = try MPIEnvironment.world()
        if world.rank == 1 {
            usleep(300_000)
            MPIEnvironment.abort(code: 7, message: "scenario abort from rank 1")
        }
        // Every other rank blocks on a message that will never come.
        _ = try world.receive(Int32.self, count: 1, from: 1, tag: 99)
        Issue.record("rank \(world.rank) received a message that was never sent")
    }
}

/// A rank that calls `abort` ends the whole job quickly, with its message and a failure status.
@Suite(.enabled(if: !underMPILauncher && mpirunPath != nil, "needs mpirun, and is not itself run under it"))
struct AbortTests {
    @Test func abortEndsEveryRank() throws {
        let token = "abort-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        let start = Date()
        let (status, _, stderr) = try run(mpirunPath!, ["--oversubscribe", "-np", "4", "-x", "FEDBAECHI_ABORT_SCENARIO", testExecutable,
                                                        "--testing-library", "swift-testing", "--filter", "AbortScenario"],
                                          environment: ["FEDBAECHI_ABORT_SCENARIO": token], timeout: 60)
        let elapsed = Date().timeIntervalSince(start)

        #expect(elapsed < 10, "the job took \(elapsed) s to end")
        #expect(status != 0)
        #expect(stderr.contains("rank 1: scenario abort from rank 1"), "stderr: \(stderr)")
        usleep(500_000)
        #expect(processesCarrying(token).isEmpty, "ranks left running: \(processesCarrying(token))")
    }

    /// Process ids whose environment holds `token`.
    func processesCarrying(_ token: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return String(decoding: environ, as: UTF8.self).contains(token)
        }
    }
}
