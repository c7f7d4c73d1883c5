import Foundation
import TestSupport
import Testing

/// `fedbaechi train model-parallel` end to end (not under mpirun itself: it starts mpirun).
@Suite(.enabled(if: fedbaechiBinary != nil && mpirunPath != nil && fashionInstalled && !underMPILauncher,
                "needs the built binary, mpirun and dataset-fashion-mnist"))
struct ModelParallelCommandTests {
    @Test func twoRanksReportPlacementTimesAndMemory() throws {
        let (status, out, err) = try run(mpirunPath!, ["-np", "2", fedbaechiBinary!.path, "train", "--model", "mlp", "--steps", "2",
                                                   "--limit-train", "64", "--limit-test", "32", "--batch-size", "16"])
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("placement: m-sct on 2 ranks of 512 MiB"))
        #expect(out.contains("epoch 1/1: train loss"))
        #expect(out.contains("test accuracy"))
        #expect(out.contains("step time: measured"))
        #expect(out.contains("limit 512 MiB per rank: within"))
    }

    @Test func noPlanFitsIsOneLineAndStatusThree() throws {
        let (status, _, err) = try run(fedbaechiBinary!.path, ["train", "--model", "mlp", "--steps", "1", "--limit-train", "32",
                                                               "--limit-test", "16", "--device-memory", "1MiB"])
        #expect(status == 3)
        #expect(err.contains("no plan fits 1 rank of 1 MiB with m-sct"))
        #expect(err.split(separator: "\n").count == 1)
    }

    @Test func badAlgorithmIsRejected() throws {
        let (status, _, err) = try run(fedbaechiBinary!.path, ["train", "--algorithm", "fastest"])
        #expect(status != 0)
        #expect(err.contains("unknown algorithm \"fastest\""))
    }
}
