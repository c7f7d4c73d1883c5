import Foundation
import TestSupport
import Testing

/// `fedbaechi train federated` end to end under mpirun (started by the test, not under it).
@Suite(.enabled(if: fedbaechiBinary != nil && mpirunPath != nil && fashionInstalled && !underMPILauncher,
                "needs the built binary, mpirun and dataset-fashion-mnist"))
struct FederatedCommandTests {
    func federated(_ ranks: Int, _ arguments: [String]) throws -> CommandResult {
        try run(mpirunPath!, ["-np", "\(ranks)", fedbaechiBinary!.path, "train", "federated"] + arguments)
    }

    /// JSON records of a metrics file.
    func records(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func temporaryFile(_ name: String) -> URL { temporaryPath(name, extension: "jsonl") }

    @Test func threeMaskedSitesTrainAndWriteARecordPerRound() throws {
        let metrics = temporaryFile("federated")
        defer { try? FileManager.default.removeItem(at: metrics) }
        let (status, out, err) = try federated(3, ["--model", "mlp", "--rounds", "2", "--limit-train", "120", "--limit-test", "60",
                                                   "--batch-size", "40", "--masked", "--partition", "shards:2",
                                                   "--metrics", metrics.path])
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("aggregation: ADMM, masked group sums, 3 iterations per round"))
        #expect(out.contains("privacy audit: no site learns another's model"))
        #expect(out.contains("secrets: X25519 key agreement"))
        #expect(out.contains("round 2/2: global test accuracy"))
        let lines = try records(metrics)
        #expect(lines.count == 2)
        for (index, record) in lines.enumerated() {
            #expect(record["round"] as? Int == index + 1)
            #expect(record["aggregation"] as? String == "admm")
            #expect(record["secrets"] as? String == "random")
            #expect((record["per_site"] as? [Any])?.count == 3)
            let accuracy = try #require(record["global_accuracy"] as? Double)
            #expect(accuracy >= 0 && accuracy <= 1)
            #expect((record["aggregation_error"] as? Double).map { $0 >= 0 && $0 <= 1e-6 } == true)
            #expect((record["predicted_aggregation_error"] as? Double).map { $0 <= 1e-6 } == true)
            #expect((record["bytes_sent_max"] as? Int ?? 0) > 0)
        }
    }

    /// 4 and 10 sites have designs of one class: the default run switches masking on, repeats the
    /// class, and reaches the mean within 1e-6, measured against the exact mean as well.
    @Test func defaultRunsOfFourAndTenSitesAggregateWithinTheTarget() throws {
        for sites in [4, 10] {
            let metrics = temporaryFile("federated-\(sites)")
            defer { try? FileManager.default.removeItem(at: metrics) }
            let (status, out, err) = try federated(sites, ["--model", "mlp", "--rounds", "1", "--limit-train", "\(40 * sites)",
                                                           "--limit-test", "40", "--batch-size", "20", "--partition", "iid",
                                                           "--check-exact-mean", "--metrics", metrics.path])
            #expect(status == 0, "\(sites) sites: stderr: \(err)")
            #expect(out.contains("masking is on: plain group messages leak"), "\(out)")
            let record = try #require(try records(metrics).first)
            #expect(record["masked"] as? Bool == true)
            let estimate = try #require(record["aggregation_error"] as? Double)
            let exact = try #require(record["exact_aggregation_error"] as? Double)
            #expect(estimate <= 1e-6 && exact <= 1e-6, "\(sites) sites: estimate \(estimate), exact \(exact)")
        }
    }

    /// With reproducible secrets every site says they are insecure, and two runs agree to the bit.
    @Test func reproducibleSecretsAreAnnouncedOnEverySiteAndRepeat() throws {
        var finals: [[String: Any]] = []
        for _ in 0..<2 {
            let metrics = temporaryFile("federated-insecure")
            defer { try? FileManager.default.removeItem(at: metrics) }
            let (status, out, err) = try federated(3, ["--model", "mlp", "--rounds", "1", "--limit-train", "90", "--limit-test", "30",
                                                       "--batch-size", "30", "--insecure-reproducible-secrets", "--metrics", metrics.path])
            #expect(status == 0, "stderr: \(err)")
            let banners = out.split(separator: "\n").filter { $0.contains(": INSECURE secrets (--insecure-reproducible-secrets)") }
            #expect(Set(banners.map { $0.prefix(7) }) == ["site 0:", "site 1:", "site 2:"], "\(out)")
            finals.append(try #require(try records(metrics).last))
        }
        for key in ["global_loss", "global_accuracy", "aggregation_error"] {
            #expect((finals[0][key] as? Double)?.bitPattern == (finals[1][key] as? Double)?.bitPattern, "\(key) differs")
        }
        #expect(finals[0]["secrets"] as? String == "insecure-reproducible")
    }

    /// Masked K = 7 on 9 sites clears single sites but not pairs, and plain K = 7 repeats classes:
    /// with --collusion 2 every schedule is flagged, and the run is refused before any training.
    @Test func aScheduleTheAuditFlagsIsRefused() throws {
        let (status, _, err) = try federated(9, ["--iterations", "7", "--collusion", "2", "--limit-train", "900"])
        #expect(status == 2)
        #expect(err.contains("the privacy audit flags every schedule of 7 iterations"))
        #expect(err.contains("--allow-leaky-schedule"))
        // One line from fedbaechi (mpirun adds its own report of the exit status).
        #expect(err.split(separator: "\n").filter { $0.hasPrefix("fedbaechi:") }.count == 1, "stderr: \(err)")
        let (inexact, _, inexactErr) = try federated(4, ["--iterations", "1", "--limit-train", "400"])
        #expect(inexact == 2)
        #expect(inexactErr.contains("--iterations 1 leaves a predicted aggregation error"), "\(inexactErr)")
    }

    @Test func badFederatedArgumentsAreRejected() throws {
        let (few, _, fewErr) = try federated(2, [])
        #expect(few == 2)
        #expect(fewErr.contains("needs at least 3 sites"))
        let (masked, _, maskedErr) = try federated(3, ["--aggregation", "fedavg", "--masked"])
        #expect(masked == 2)
        #expect(maskedErr.contains("apply to --aggregation admm only"))
        // Refused on every rank, said once.
        #expect(maskedErr.split(separator: "\n").filter { $0.hasPrefix("fedbaechi:") }.count == 1, "stderr: \(maskedErr)")
        let (secrets, _, secretsErr) = try federated(3, ["--aggregation", "local", "--insecure-reproducible-secrets"])
        #expect(secrets == 2)
        #expect(secretsErr.contains("apply to --aggregation admm only"))
        let (natural, _, naturalErr) = try federated(3, ["--aggregation", "fedavg", "--partition", "natural", "--limit-train", "60"])
        #expect(natural == 2)
        #expect(naturalErr.contains("natural partition needs data with its own grouping"))
        let (scheme, _, schemeErr) = try run(fedbaechiBinary!.path, ["train", "federated", "--partition", "dirichlet:0"])
        #expect(scheme != 0)
        #expect(schemeErr.contains("is not iid, dirichlet:ALPHA"))
    }
}
