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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OPENBLAS_NUM_THREADS"] = "1"
    environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    if getuid() == 0 { environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
    process.environment = environment
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("mp-\(UUID().uuidString).out")
    let err = FileManager.default.temporaryDirectory.appendingPathComponent("mp-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
}

/// `fedbaechi train --mode model-parallel` end to end (not under mpirun itself: it starts mpirun).
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
