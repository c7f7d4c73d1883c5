import Foundation
import Testing

@Suite struct DoctorCLITests {
    @Test func reportsOneProcessWithoutLauncher() throws {
        let result = try fedbaechi(["doctor", "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let ranks = report?["ranks"] as? [[String: Any]]
        #expect(ranks?.count == 1)
        #expect((report?["mpiLibrary"] as? String)?.contains("Open MPI") == true)
        #expect((report?["blasConfiguration"] as? String)?.contains("OpenBLAS") == true)
        let datasets = report?["datasets"] as? [[String: Any]]
        #expect(datasets?.map { $0["name"] as? String } == ["fashion-mnist", "fortunes"])
    }

    @Test func tableNamesMissingPackages() throws {
        // A PATH without mpirun must produce install advice naming the Debian package.
        let result = try fedbaechi(["doctor"], environment: ["PATH": "/nonexistent"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("apt-get install openmpi-bin"))
    }
}
