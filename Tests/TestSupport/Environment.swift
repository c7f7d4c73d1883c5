import Foundation
import MPI
import Tensors

/// Whether this test process was started by an MPI launcher (mpirun, srun): the rank suites run only then.
public let underMPILauncher = MPIEnvironment.isUnderLauncher

/// Whether the tests' MPI jobs run with their ranks on the test hosts of scripts/test-hosts.sh (which
/// its caller has brought up): set by FEDBAECHI_TEST_HOSTS=1, as scripts/test.sh does for the suites it
/// runs across hosts.
public let acrossTestHosts = ProcessInfo.processInfo.environment["FEDBAECHI_TEST_HOSTS"] == "1"

/// The script that builds the test hosts and takes their links up and down.
public let testHostsScript = packageRoot.appendingPathComponent("scripts/test-hosts.sh").path

/// What the tests start MPI jobs with: `mpirun` when installed, or across the test hosts
/// scripts/mpirun-on-test-hosts (mpirun on the first host, ranks round-robin over all, TCP between them).
public let mpirunPath: String? = acrossTestHosts
    ? packageRoot.appendingPathComponent("scripts/mpirun-on-test-hosts").path
    : ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Whether dataset-fashion-mnist is installed where fedbaechi reads it by default.
public let fashionInstalled = KnownDataset.fashionMNIST.missingFiles().isEmpty

/// Whether the fortunes package is installed where fedbaechi reads it by default.
public let fortunesInstalled = KnownDataset.fortunes.missingFiles().isEmpty

/// The package's root folder, found from this file's path (Tests/TestSupport/Environment.swift).
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The `fedbaechi` binary of the build the tests run from (beside the test bundle), when it is built.
public let fedbaechiBinary: URL? = {
    var url = Bundle.main.bundleURL
    while url.path != "/" {
        let candidate = url.appendingPathComponent("fedbaechi")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        url = url.deletingLastPathComponent()
    }
    return nil
}()

/// This test executable, so that a test can start copies of it under mpirun.
public let testExecutable: String = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
