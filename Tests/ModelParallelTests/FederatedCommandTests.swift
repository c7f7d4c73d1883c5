import Foundation
import Testing

/// `fedbaechi train --mode federated` end to end under mpirun (started by the test, not under it).
@Suite(.enabled(if: fedbaechiBinary != nil && mpirun != nil && fashionInstalled && !underMPILauncher,
                "needs the built binary, mpirun and dataset-fashion-mnist"))
struct FederatedCommandTests {
    func federated(_ ranks: Int, _ arguments: [String]) throws -> (Int32, String, String) {
        try run(mpirun!, ["-np", "\(ranks)", fedbaechiBinary!.path, "train", "--mode", "federated"] + arguments)
    }

    @Test func threeMaskedSitesTrainAndWriteARecordPerRound() throws {
        let metrics = FileManager.default.temporaryDirectory.appendingPathComponent("federated-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: metrics) }
        let (status, out, err) = try federated(3, ["--model", "mlp", "--rounds", "2", "--limit-train", "120", "--limit-test", "60",
                                                   "--batch-size", "40", "--masked", "--partition", "shards:2",
                                                   "--metrics", metrics.path])
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("aggregation: ADMM, masked group sums, 1 iteration per round"))
        #expect(out.contains("privacy audit: no site learns another's model"))
        #expect(out.contains("round 2/2: global test accuracy"))
        let lines = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        for (index, line) in lines.enumerated() {
            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(record["round"] as? Int == index + 1)
            #expect(record["aggregation"] as? String == "admm")
            #expect((record["per_site"] as? [Any])?.count == 3)
            let accuracy = try #require(record["global_accuracy"] as? Double)
            #expect(accuracy >= 0 && accuracy <= 1)
            // One iteration (3 sites have one class) leaves the random duals in z: a large error, reported.
            #expect((record["aggregation_error"] as? Double).map { $0 > 0 && $0.isFinite } == true)
            #expect((record["bytes_sent_max"] as? Int ?? 0) > 0)
        }
    }

    /// The reference code's K = 2r - 1 = 7 plain iterations on 9 sites: refused before any training.
    @Test func aScheduleTheAuditFlagsIsRefused() throws {
        let (status, _, err) = try federated(9, ["--iterations", "7"])
        #expect(status == 2)
        #expect(err.contains("the privacy audit flags this schedule"))
        #expect(err.contains("--allow-leaky-schedule"))
        // One line from fedbaechi (mpirun adds its own report of the exit status).
        #expect(err.split(separator: "\n").filter { $0.hasPrefix("fedbaechi:") }.count == 1, "stderr: \(err)")
    }

    @Test func badFederatedArgumentsAreRejected() throws {
        let (few, _, fewErr) = try federated(2, [])
        #expect(few == 2)
        #expect(fewErr.contains("needs at least 3 sites"))
        let (masked, _, maskedErr) = try federated(3, ["--aggregation", "fedavg", "--masked"])
        #expect(masked == 2)
        #expect(maskedErr.contains("apply to --aggregation admm only"))
        let (natural, _, naturalErr) = try federated(3, ["--aggregation", "fedavg", "--partition", "natural", "--limit-train", "60"])
        #expect(natural == 2)
        #expect(naturalErr.contains("natural partition needs data with its own grouping"))
        let (scheme, _, schemeErr) = try run(fedbaechiBinary!.path, ["train", "--mode", "federated", "--partition", "dirichlet:0"])
        #expect(scheme != 0)
        #expect(schemeErr.contains("is not iid, dirichlet:ALPHA"))
    }
}
