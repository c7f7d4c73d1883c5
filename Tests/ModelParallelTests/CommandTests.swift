import Foundation
import Testing

/// The `fedbaechi` binary beside this test bundle, when it is built.
let fedbaechiBinary: URL? = {
    var url = Bundle.main.bundleURL
    while url.path != "/" {
        let candidate = url.appendingPathComponent("fedbaechi")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        url = url.deletingLastPathComponent()
    }
    return nil
}()
let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
let fashionInstalled = FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")

/// Runs a command to completion (killed after `timeout` seconds, so a hang fails) and returns
/// its status, standard output and standard error.
func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 300) throws -> (Int32, String, String) {
    let job = try Background(executable, arguments)
    let status = job.wait(timeout: timeout) ?? -1
    return (status, job.standardOutput, job.standardError)
}

/// `fedbaechi train model-parallel` end to end (not under mpirun itself: it starts mpirun).
@Suite(.enabled(if: fedbaechiBinary != nil && mpirun != nil && fashionInstalled && !underMPILauncher,
                "needs the built binary, mpirun and dataset-fashion-mnist"))
struct ModelParallelCommandTests {
    @Test func twoRanksReportPlacementTimesAndMemory() throws {
        let (status, out, err) = try run(mpirun!, ["-np", "2", fedbaechiBinary!.path, "train", "--model", "mlp", "--steps", "2",
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
