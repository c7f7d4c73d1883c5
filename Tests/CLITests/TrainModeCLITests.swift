import Foundation
import TestSupport
import Testing
@testable import fedbaechi

/// `train`'s modes are subcommands with only their own flags; `--mode` stays as an alias.
@Suite struct TrainModeCLITests {
    @Test func modeFlagBecomesTheSubcommand() {
        #expect(Train.rewritingModeAlias(["train", "--model", "mlp", "--mode", "single"]) == ["train", "single", "--model", "mlp"])
        #expect(Train.rewritingModeAlias(["train", "--mode=federated", "--rounds", "2"]) == ["train", "federated", "--rounds", "2"])
        #expect(Train.rewritingModeAlias(["train", "--model", "mlp"]) == ["train", "--model", "mlp"])
        #expect(Train.rewritingModeAlias(["place", "g.json", "--mode", "x"]) == ["place", "g.json", "--mode", "x"])
    }

    /// Each mode takes only its own flags: a federated flag in single mode is a usage error naming it.
    @Test(arguments: [
        (["train", "single", "--rounds", "7"], "--rounds"),
        (["train", "--mode", "single", "--rounds", "7"], "--rounds"),
        (["train", "federated", "--epochs", "2"], "--epochs"),
        (["train", "model-parallel", "--partition", "iid"], "--partition"),
        (["train", "single", "--algorithm", "m-etf"], "--algorithm"),
        (["train", "federated", "--local-epochs", "2", "--steps", "4"], "choose one"),
        (["train", "single", "--epochs", "2", "--steps", "4"], "choose one"),
    ])
    func flagsOfAnotherModeAreRefused(arguments: [String], named: String) throws {
        let result = try fedbaechi(arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(named), "\(result.stderr)")
    }

    /// `--steps` in single mode runs that many steps of equal batches, across epochs, and the alias runs
    /// the same training to the bit.
    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func stepsRunAcrossEpochsAndTheAliasTrainsAlike() throws {
        let folder = try makeTemporaryFolder("mode")
        defer { try? FileManager.default.removeItem(at: folder) }
        let common = ["--model", "mlp", "--limit-train", "40", "--limit-test", "20", "--batch-size", "16", "--steps", "5", "--seed", "4"]
        let first = folder.appendingPathComponent("a.jsonl").path
        let second = folder.appendingPathComponent("b.jsonl").path
        let subcommand = try fedbaechi(["train", "single"] + common + ["--metrics", first], environment: ["OPENBLAS_NUM_THREADS": "1"])
        #expect(subcommand.status == 0, "\(subcommand.stderr)")
        let alias = try fedbaechi(["train"] + common + ["--mode", "single", "--metrics", second], environment: ["OPENBLAS_NUM_THREADS": "1"])
        #expect(alias.status == 0, "\(alias.stderr)")
        // 40 examples in batches of 16: 2 steps an epoch (8 examples left out), so 5 steps are 3 epochs.
        let records = try String(contentsOfFile: first, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(records.map { $0["steps"] as? Int } == [2, 4, 5])
        #expect(records.map { $0["train_examples"] as? Int } == [32, 32, 16])
        func losses(_ path: String) throws -> [Double] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
                try #require((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["train_loss"] as? Double)
            }
        }
        #expect(try losses(first) == losses(second))
    }
}
