import ArgumentParser
import Basics
import Foundation
import TestSupport
import Testing
@testable import fedbaechi

/// The configuration fedbaechi reads besides graphs and datasets: the devices file of `place` and
/// the values of the size and count flags, parsed and validated in this process exactly as the
/// command line does (without running the command).
@Suite struct ConfigurationFuzzTests {
    static let devicesSeeds = [
        #"{"devices": [{"name": "gpu0", "memory": "16GiB"}, {"name": "gpu1", "memory": 8589934592}], "bandwidth": "12GB/s", "latency": "20us"}"#,
        #"{"devices": [{"memory": "1MiB"}]}"#,
        #"{"devices": [{"name": "a", "memory": 1e9}, {"name": "b", "memory": "500 MB"}, {"name": "c", "memory": "2 TiB"}], "latency": "0.2ms"}"#,
    ]

    /// Every mutant devices file gives devices with memory, or one line and exit status 2.
    @Test(.timeLimit(.minutes(FuzzBudget.timeLimitMinutes)))
    func mutatedDevicesFilesAreReadOrRejected() throws {
        let folder = try makeTemporaryFolder("fuzz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("devices.json").path
        var mutator = Mutator(seed: FuzzBudget.seed ^ stableHash("devices"), seeds: Self.devicesSeeds.map { Data($0.utf8) },
                              tokens: [#""devices""#, #""memory""#, #""name""#, #""bandwidth""#, #""latency""#, "GiB", "TB", "GB/s",
                                       "us", "ms", "[]", "{}", "null", #"{"memory": "0"}"#])
        let report = try fuzz("devices-file", mutator: &mutator, seed: FuzzBudget.seed) { input in
            try Data(input).write(to: URL(fileURLWithPath: path))
            do {
                let (devices, _, _) = try PlaceSetup.readDevicesFile(path)
                #expect(!devices.isEmpty && devices.count <= PlaceSetup.maximumDevices && devices.allSatisfy { $0.memoryBytes > 0 })
                return .accepted
            } catch let failure as Refusal {
                #expect(failure.exitStatus == .badInput)
                return .rejected(failure.description)
            }
        }
        #expect(report.accepted > 0 && report.rejected > report.inputs / 10, "\(report)")
    }

    /// Valid values of each size and count flag, to damage.
    static let flagValues: [String: [String]] = [
        "place": ["--devices=2", "--memory=1GiB", "--bandwidth=5.7GB/s", "--latency=134us", "--sct-threshold=0.1", "--repeat=1",
                  "--algorithm=m-etf", "--search=12", "--budget=0.5s", "--seed=3"],
        "train": ["--epochs=1", "--batch-size=64", "--limit-train=100", "--limit-test=10", "--learning-rate=0.01", "--seed=1",
                  "--device-memory=512MiB", "--steps=10", "--rounds=5", "--local-epochs=1", "--iterations=4",
                  "--partition=dirichlet:0.5", "--partition=shards:2", "--rho=3", "--rho-after=0.001", "--dual-range=2", "--collusion=1"],
        "profile": ["--batch=64", "--repeats=7", "--vocabulary=10000", "--time-steps=0", "--seed=1"],
    ]

    /// Flags with mutated values: each is parsed and validated as the command line does it, and
    /// accepted values are within their documented ranges; nothing traps, nothing hangs.
    @Test(.timeLimit(.minutes(FuzzBudget.timeLimitMinutes)), arguments: ["place", "train", "profile"])
    func mutatedFlagValuesAreCheckedOrRejected(_ command: String) throws {
        let valid = try #require(Self.flagValues[command])
        let fig1 = GraphSeeds.fixtures.appendingPathComponent("fig1.json").path
        var values = Mutator(seed: FuzzBudget.seed ^ stableHash("flags-" + command), seeds: valid.map { Data($0.utf8) },
                             tokens: Mutator.hostileNumbers + ["KiB", "TiB", "GB/s", "Gb/s", "us", "s", ":", "=", " "])
        var picker = FuzzRandom(seed: FuzzBudget.seed ^ stableHash("pick-" + command))
        let report = fuzz("flags-\(command)", mutator: &values, count: max(100, FuzzBudget.inputs / 10), seed: FuzzBudget.seed) { first in
            // One to three flags, each a valid one or a mutant, after the command's required arguments.
            var arguments = [String(decoding: first.prefix(200), as: UTF8.self)]
            for _ in 0..<picker.below(3) { arguments.append(picker.pick(valid)) }
            do {
                switch command {
                case "place":
                    let parsed = try Place.parse([fig1] + (arguments.contains { $0.hasPrefix("--devices=") } ? [] : ["--devices=2"])
                                                 + (arguments.contains { $0.hasPrefix("--memory=") } ? [] : ["--memory=1GiB"]) + arguments)
                    let setup = try PlaceSetup(parsed)
                    #expect((1...PlaceSetup.maximumDevices).contains(setup.devices.count))
                    #expect(setup.devices.allSatisfy { $0.memoryBytes > 0 && $0.memoryBytes <= 1 << 60 })
                    #expect(setup.link.bytesPerMicrosecond.isFinite && setup.link.bytesPerMicrosecond > 0)
                    #expect(setup.link.latencyMicros.isFinite && setup.link.latencyMicros >= 0)
                case "train":
                    let federatedOnly = ["--rounds", "--local-epochs", "--iterations", "--partition", "--rho", "--dual-range", "--collusion"]
                    if arguments.contains(where: { argument in federatedOnly.contains { argument.hasPrefix($0) } }) {
                        let parsed = try Train.TrainFederated.parse(["--model", "mlp"] + arguments)
                        #expect((1...100_000).contains(parsed.rounds) && (parsed.localEpochs ?? 1) >= 1 && (parsed.steps ?? 1) >= 1)
                        #expect((parsed.iterations ?? 1) >= 1 && (parsed.collusion ?? 1) >= 1 && (parsed.dualRange ?? 1) > 0)
                        return .accepted
                    }
                    let parsed = try Train.TrainModelParallel.parse(["--model", "mlp"] + arguments)
                    switch parsed.length.length {
                    case .epochs(let epochs): #expect(epochs >= 1 && epochs <= 1_000_000)
                    case .steps(let steps): #expect(steps >= 1)
                    }
                    let training = parsed.training
                    #expect((training.batchSize ?? 1) >= 1 && (training.limitTrain ?? 1) >= 1 && (training.limitTest ?? 1) >= 1)
                    #expect(parsed.deviceMemory > 0)
                default:
                    let parsed = try Profile.parse(["--model", "mlp", "--batch", "8"] + arguments)
                    #expect((1...100_000).contains(parsed.batch) && parsed.repeats >= 1 && parsed.timeSteps >= 0)
                }
                return .accepted
            } catch let failure as Refusal {
                #expect(failure.exitStatus == .badInput)
                return .rejected(failure.description)
            } catch {
                // Argument-parser's own errors: a usage error (64), printed in its own format (the
                // message, which quotes the argument as typed, then the usage), or a request for help.
                let status = Fedbaechi.exitCode(for: error).rawValue
                #expect(status == 64 || status == 0, "\(error)")
                return status == 0 ? .accepted : .rejected("usage error")
            }
        }
        #expect(report.rejected > 0, "\(report)")
    }
}
