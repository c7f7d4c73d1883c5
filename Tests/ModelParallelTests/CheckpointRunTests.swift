import Foundation
import TestSupport
import Testing

/// A checkpoint directory belongs to one run: real `fedbaechi` processes (and mpirun jobs) reusing,
/// sharing, damaging and interrupting one. In the serialized suite of FailureTests, so that these
/// jobs run one at a time, not beside its own.
extension FailureTests {
    /// Two steps per epoch: 16 examples in batches of 8.
    var tiny: [String] { ["train", "single", "--model", "mlp", "--limit-train", "16", "--limit-test", "8", "--batch-size", "8",
                "--checkpoint-every", "1"] }

    func files(_ directory: String) -> [String: Data] {
        var found: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix("ckpt-") || name.hasSuffix(".json") {
            found[name] = FileManager.default.contents(atPath: directory + "/" + name)
        }
        return found
    }

    func checkpointNames(_ directory: String) -> [String] { files(directory).keys.filter { $0.hasPrefix("ckpt-") }.sorted() }

    /// Waits until the job's standard output holds `text` (training under way: a signal then stops it at
    /// a step; before the first step it ends the process at once).
    func waitForOutput(_ job: Background, _ text: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if job.standardOutput.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Issue item 1: a shorter fresh run into the directory of a longer one used to be pruned away by the
    /// older, higher-step files. Now it is refused, the earlier run's files untouched; `--overwrite`
    /// replaces them; the new run's files all survive and resume.
    @Test func aFreshRunIntoAnotherRunsDirectoryIsRefusedUnlessOverwrite() throws {
        let directory = scratch()
        defer { remove(directory) }
        let binary = fedbaechiBinary!.path
        var (status, _, err) = try run(binary, tiny + ["--epochs", "3", "--checkpoint-dir", directory])
        #expect(status == 0, "stderr: \(err)")
        let earlier = files(directory)
        #expect(checkpointNames(directory) == ["ckpt-0000000005-rank00000.fbck", "ckpt-0000000006-rank00000.fbck"])

        (status, _, err) = try run(binary, tiny + ["--epochs", "1", "--checkpoint-dir", directory])
        #expect(status == 2)
        #expect(err.contains("already holds checkpoints of this configuration") && err.contains("the newest at step 6")
                && err.contains("--resume") && err.contains("--overwrite"), "stderr: \(err)")
        #expect(files(directory) == earlier, "a refused run changed the directory")

        // Another configuration: --resume names what differs, and changes nothing.
        (status, _, err) = try run(binary, tiny + ["--epochs", "3", "--seed", "2", "--checkpoint-dir", directory, "--resume"])
        #expect(status == 2)
        #expect(err.contains("are of another run") && err.contains("seed 2 (saved run: 1)"), "stderr: \(err)")
        #expect(files(directory) == earlier)

        var out: String
        (status, out, err) = try run(binary, tiny + ["--epochs", "1", "--checkpoint-dir", directory, "--overwrite"])
        #expect(status == 0, "stderr: \(err)")
        #expect(err.contains("--overwrite: removed 2 files of the earlier run"), "stderr: \(err)")
        #expect(out.contains("checkpoints: 2 written"))
        #expect(checkpointNames(directory) == ["ckpt-0000000001-rank00000.fbck", "ckpt-0000000002-rank00000.fbck"])

        // Issue item 4: at the target already, it says so and trains nothing.
        (status, out, err) = try run(binary, tiny + ["--epochs", "1", "--checkpoint-dir", directory, "--resume"])
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("nothing to do: the checkpoint in \(directory) is at step 2, the target of 2 steps"), "stdout: \(out)")
        #expect(!out.contains("epoch 1/1"), "it trained: \(out)")
        // The new run's checkpoints continue: one more epoch from step 2.
        (status, out, err) = try run(binary, tiny + ["--epochs", "2", "--checkpoint-dir", directory, "--resume"])
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("resuming from step 2 of 4"), "stdout: \(out)")
        #expect(checkpointNames(directory) == ["ckpt-0000000003-rank00000.fbck", "ckpt-0000000004-rank00000.fbck"])
    }

    /// Issue item 2: two processes started together on one directory. One takes the lock and runs; the
    /// other is refused at once with the holder's host and pid; only the winner's files are there.
    @Test func twoRunsRacingForOneDirectory() throws {
        let directory = scratch()
        defer { remove(directory) }
        let first = try Background(fedbaechiBinary!.path, tiny + ["--epochs", "2", "--checkpoint-dir", directory])
        let second = try Background(fedbaechiBinary!.path, tiny + ["--epochs", "2", "--seed", "7", "--checkpoint-dir", directory])
        let statuses = [first.wait(timeout: 300), second.wait(timeout: 300)]
        let (winner, loser) = statuses[0] == 0 ? (first, second) : (second, first)
        #expect(statuses.sorted { ($0 ?? -1) < ($1 ?? -1) } == [0, 2], "statuses \(statuses); stderr: \(first.standardError) | \(second.standardError)")
        #expect(loser.standardError.contains("is in use by another run (host \(ProcessInfo.processInfo.hostName), pid \(winner.pid)"),
                "stderr: \(loser.standardError)")
        #expect(!loser.standardOutput.contains("checkpoints:"), "the refused run reported checkpoints")
        let record = try JSONSerialization.jsonObject(with: files(directory)["run.json"] ?? Data()) as? [String: Any]
        let seed = (record?["configuration"] as? [String: String])?["seed"]
        #expect(seed == (winner === first ? "1" : "7"), "run.json names seed \(seed ?? "none")")
        #expect(checkpointNames(directory) == ["ckpt-0000000003-rank00000.fbck", "ckpt-0000000004-rank00000.fbck"])
    }

    /// Issue item 3: rank 1's files damaged. With none intact the job refuses, naming the rank and its
    /// files, and writes nothing; with an older one intact every rank resumes from the step all have.
    @Test func aRankWithDamagedCheckpointsNeverRestartsTheJobSilently() throws {
        let directory = scratch()
        defer { remove(directory) }
        let job = ["-np", "2", fedbaechiBinary!.path, "train", "model-parallel", "--model", "mlp", "--limit-train", "16",
                   "--limit-test", "8", "--batch-size", "8", "--checkpoint-every", "1", "--checkpoint-dir", directory]
        var (status, out, err) = try run(mpirunPath!, job + ["--steps", "4"], timeout: 600)
        #expect(status == 0, "stderr: \(err)")
        let whole = files(directory)
        for position in [3, 4] {
            try Data("damaged".utf8).write(to: URL(fileURLWithPath: directory + String(format: "/ckpt-%010d-rank00001.fbck", position)))
        }
        let damaged = files(directory)
        (status, out, err) = try run(mpirunPath!, job + ["--steps", "6", "--resume"], timeout: 600)
        #expect(status == 2)
        #expect(err.contains("cannot resume from \(directory): rank 1 has no intact checkpoint")
                && err.contains("ckpt-0000000004-rank00001.fbck") && err.contains("ckpt-0000000003-rank00001.fbck")
                && err.contains("rank 0 has steps 3, 4"), "stderr: \(err)")
        #expect(!out.contains("starting at step 0") && !out.contains("epoch 1"), "stdout: \(out)")
        #expect(files(directory) == damaged, "the refused job changed the directory")

        // Rank 1's step 3 restored: the job resumes from 3 on every rank, and redoes step 4 exactly.
        let three = String(format: "ckpt-%010d-rank00001.fbck", 3)
        try whole[three]!.write(to: URL(fileURLWithPath: directory + "/" + three))
        (status, out, err) = try run(mpirunPath!, job + ["--steps", "4", "--resume"], timeout: 600)
        #expect(status == 0, "stderr: \(err)")
        #expect(err.contains("rank 0 has step 4, but not every rank has it intact: every rank resumes from step 3"), "stderr: \(err)")
        #expect(out.contains("resuming from step 3 of 4"), "stdout: \(out)")
        for rank in 0..<2 {
            let four = String(format: "ckpt-%010d-rank%05d.fbck", 4, rank)
            #expect(files(directory)[four] == whole[four], "rank \(rank)'s step 4 differs from the uninterrupted run's")
        }
    }

    /// Issue item 5 and Slurm pre-emption: SIGTERM to mpirun (with the grace Slurm would give) stops the
    /// job at a step every rank agrees on, writes a checkpoint there, and rank 0 says where.
    @Test func sigtermToMpirunWritesACheckpointAndSaysWhere() throws {
        let directory = scratch()
        defer { remove(directory) }
        let job = try Background(mpirunPath!, ["-np", "2", fedbaechiBinary!.path, "train", "model-parallel", "--model", "mlp",
                                           "--limit-train", "800", "--limit-test", "8", "--batch-size", "8", "--steps", "100",
                                           "--checkpoint-every", "50", "--checkpoint-dir", directory],
                                 environment: ["OMPI_MCA_odls_base_sigkill_timeout": "20"], signals: true)
        #expect(waitForOutput(job, "epoch 1 step 10/100", timeout: 300))
        job.kill(pid: job.pid, signal: SIGTERM)
        let status = job.wait(timeout: 120)
        #expect(status != nil && status != 0, "stdout: \(job.standardOutput)")
        let err = job.standardError
        let stopped = try #require(err.matches(of: /interrupted at step (\d+) by SIGTERM; last checkpoint: (\S+) \(step (\d+)\)\n/).last,
                                   "stderr: \(err)")
        let step = Int(stopped.1)!
        #expect(step > 0 && step < 100 && Int(stopped.3) == step)
        #expect(String(stopped.2) == directory + String(format: "/ckpt-%010d-rank*.fbck", step))
        #expect(checkpointNames(directory) == [0, 1].map { String(format: "ckpt-%010d-rank%05d.fbck", step, $0) })
    }

    /// A federated job stops at a round boundary: every site checkpoints the same round.
    @Test func sigtermToAFederatedJobStopsAtARound() throws {
        let directory = scratch()
        defer { remove(directory) }
        let job = try Background(mpirunPath!, ["-np", "3", fedbaechiBinary!.path, "train", "federated", "--rounds", "50",
                                           "--aggregation", "fedavg", "--partition", "iid", "--model", "mlp", "--limit-train", "48",
                                           "--limit-test", "12", "--batch-size", "16", "--checkpoint-every", "10", "--checkpoint-dir", directory],
                                 environment: ["OMPI_MCA_odls_base_sigkill_timeout": "30"], signals: true)
        #expect(waitForOutput(job, "round 1/50: global", timeout: 300))
        job.kill(pid: job.pid, signal: SIGTERM)
        let status = job.wait(timeout: 180)
        #expect(status != nil && status != 0, "stdout: \(job.standardOutput)")
        let err = job.standardError
        let stopped = try #require(err.matches(of: /interrupted at round (\d+) by SIGTERM; last checkpoint: (\S+) \(round (\d+)\)\n/).last,
                                   "stderr: \(err)")
        let round = Int(stopped.1)!
        #expect(round >= 1 && round < 50 && Int(stopped.3) == round)
        // Every site wrote the stopping round; a periodic checkpoint before it (round 10, on a slow
        // machine) may stay beside it, nothing after it.
        let names = checkpointNames(directory)
        let newest = (0..<3).map { String(format: "ckpt-%010d-rank%05d.fbck", round, $0) }
        #expect(Set(newest).isSubset(of: Set(names)), "\(names)")
        #expect(names.filter { !newest.contains($0) }.allSatisfy { name in
            Int(name.dropFirst(5).prefix(10)).map { $0 < round && $0 % 10 == 0 } ?? false
        }, "\(names)")
    }

    /// SIGINT to mpirun with a short grace (by default one second, here three for a loaded machine): rank
    /// 0 says where the run was and which checkpoint is the last, whether or not the step ends in time.
    @Test func sigintToMpirunSaysWhereTheRunWas() throws {
        let directory = scratch()
        defer { remove(directory) }
        let job = try Background(mpirunPath!, ["-np", "2", fedbaechiBinary!.path, "train", "model-parallel", "--model", "mlp",
                                           "--limit-train", "800", "--limit-test", "8", "--batch-size", "8", "--steps", "100",
                                           "--checkpoint-every", "1", "--checkpoint-dir", directory],
                                 environment: ["OMPI_MCA_odls_base_sigkill_timeout": "3"], signals: true)
        #expect(waitForFile(directory + "/ckpt-0000000001-rank00001.fbck", timeout: 300))
        job.kill(pid: job.pid, signal: SIGINT)
        let status = job.wait(timeout: 60)
        #expect(status != nil && status != 0, "stdout: \(job.standardOutput)")
        let err = job.standardError
        #expect(err.firstMatch(of: /interrupted at step \d+ by SIGTERM; last checkpoint: \S+ckpt-\d+-rank\*\.fbck \(step \d+\)/) != nil,
                "stderr: \(err)")
    }

    /// Before the first step (data loading, placement) there is no step boundary near: a signal ends the
    /// process at once, saying so.
    @Test func aSignalBeforeTrainingEndsTheProcessAtOnce() throws {
        let directory = scratch()
        defer { remove(directory) }
        let job = try Background(fedbaechiBinary!.path, tiny + ["--epochs", "1", "--checkpoint-dir", directory])
        #expect(waitForFile(directory + "/run.json", timeout: 120))
        job.kill(pid: job.pid, signal: SIGINT)
        #expect(job.wait(timeout: 30) == 130)
        #expect(job.standardError.contains("interrupted by SIGINT before the first step; last checkpoint: none"), "stderr: \(job.standardError)")
    }

    /// A single process: SIGTERM stops it at the next step with a checkpoint, status 143, and the run resumes.
    @Test func sigtermToASingleProcessRunStopsAtAStepAndResumes() throws {
        let directory = scratch()
        defer { remove(directory) }
        // 80 examples: 10 steps; checkpoints only at the end, so the one found is the signal's.
        let arguments = tiny.map { $0 == "16" ? "80" : $0 } + ["--epochs", "1", "--checkpoint-every", "100", "--checkpoint-dir", directory]
        let job = try Background(fedbaechiBinary!.path, arguments)
        #expect(waitForOutput(job, "epoch 1 step 1/10", timeout: 120))
        Thread.sleep(forTimeInterval: 0.5)
        job.kill(pid: job.pid, signal: SIGTERM)
        #expect(job.wait(timeout: 60) == 143)
        let err = job.standardError
        let stopped = try #require(err.matches(of: /interrupted at step (\d+) by SIGTERM; last checkpoint: \S+ \(step (\d+)\)\n/).last,
                                   "stderr: \(err)")
        #expect(stopped.1 == stopped.2)
        let step = Int(stopped.1)!
        #expect(step < 10)
        #expect(checkpointNames(directory) == [String(format: "ckpt-%010d-rank00000.fbck", step)])
        let (status, out, resumeErr) = try run(fedbaechiBinary!.path, arguments + ["--resume"])
        #expect(status == 0, "stderr: \(resumeErr)")
        #expect(out.contains("resuming from step \(step) of 10") && out.contains("epoch 1/1"), "stdout: \(out)")
    }
}
