import Foundation
import Runtime
import Tensors
import TestSupport
import Testing

/// The checkpoint format and directory: round trips, damage detection, fallback, pruning.
struct CheckpointFileTests {
    func sample(position: Int, rank: Int = 0) -> Checkpoint {
        var checkpoint = Checkpoint(position: position, rank: rank, ranks: 2, run: ["mode": "single", "seed": "1"])
        checkpoint.parameters.values = ["fc.weight": (0..<50).map { Float($0) * 0.25 - 3 }, "fc.bias": [.pi, -0, .leastNonzeroMagnitude]]
        checkpoint.parameters.slots = ["fc.weight": [(0..<50).map { Float($0) }, (0..<50).map { -Float($0) }]]
        checkpoint.parameters.optimizerSteps = ["fc.weight": 7]
        checkpoint.scalars = ["steps": 12, "loss": Double(1.5).bitPattern]
        return checkpoint
    }

    @Test func aCheckpointRoundTripsBitForBit() throws {
        let original = sample(position: 3)
        let decoded = try CheckpointFile.decode(try CheckpointFile.encode(original))
        #expect(decoded == original)
        #expect(decoded.parameters.values["fc.bias"]!.map(\.bitPattern) == original.parameters.values["fc.bias"]!.map(\.bitPattern))
    }

    @Test func damageIsDetectedNotMisread() throws {
        let data = try CheckpointFile.encode(sample(position: 3))
        for index in [0, 7, 10, 20, data.count / 2, data.count - 1] {
            var damaged = data
            damaged[index] ^= 0x40
            #expect(throws: CheckpointError.self) { try CheckpointFile.decode(damaged) }
        }
        #expect(throws: CheckpointError.self) { try CheckpointFile.decode(data.prefix(data.count - 3)) }
        #expect(throws: CheckpointError.self) { try CheckpointFile.decode(data + Data([0])) }
        #expect(throws: CheckpointError.self) { try CheckpointFile.decode(Data()) }
        var otherVersion = data
        otherVersion[6] = 9
        do {
            _ = try CheckpointFile.decode(otherVersion)
            Issue.record("a checkpoint of another format version was read")
        } catch {
            #expect(error.description.contains("format version 9"))
        }
    }

    @Test func theDirectoryKeepsTheNewestTwoAndFallsBackPastDamage() throws {
        let path = temporaryPath("ckpt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = try CheckpointDirectory(path: path, rank: 1)
        for position in [2, 4, 6] { try directory.save(sample(position: position, rank: 1)) }
        #expect(directory.positions() == [4, 6])
        #expect(directory.intact(run: sample(position: 0).run).positions == [6, 4])
        // The newest file torn in half: the older one is used, and a note says why.
        let newest = path + "/" + directory.fileName(position: 6)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: newest))
        let (positions, notes) = directory.intact(run: sample(position: 0).run)
        #expect(positions == [4])
        #expect(notes.count == 1 && notes[0].contains(directory.fileName(position: 6)) && notes[0].contains("truncated"), "\(notes)")
        // Another run's checkpoints are not resumed.
        let foreign = directory.intact(run: ["mode": "single", "seed": "2"])
        #expect(foreign.positions.isEmpty && foreign.notes.contains { $0.contains("another run") })
        // Resumed from 4 and saved 5: the file of 6 is of the course abandoned, and goes.
        try directory.save(sample(position: 5, rank: 1))
        #expect(directory.positions() == [4, 5])
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).allSatisfy { !$0.hasSuffix(".tmp") })
    }

    @Test func parameterStatesRestoreIntoAFreshModel() throws {
        var spec = ModelSpec(kind: .mlp)
        spec.hidden = [8]
        let trained = Trainer(model: spec.build(seed: 1), optimizer: Adam(learningRate: 0.01), seed: 1)
        let images = Tensor(shape: [4, 1, 28, 28]) { out in for i in 0..<out.count { out[i] = Float(i % 7) / 7 } }
        let examples = Examples.images(LabeledImages(images: images, labels: Tensor(shape: [4], data: [1, 2, 3, 4])))
        trained.trainEpoch(examples, batchSize: 2, epoch: 1)
        let fresh = Trainer(model: spec.build(seed: 2), optimizer: Adam(learningRate: 0.01), seed: 1)
        try fresh.model.parameters.restore(trained.model.parameters.state)
        #expect(fresh.model.parameters.state == trained.model.parameters.state)
        var wrong = trained.model.parameters.state
        wrong.values["extra"] = [1]
        #expect(throws: (any Error).self) { try fresh.model.parameters.restore(wrong) }
    }
}
