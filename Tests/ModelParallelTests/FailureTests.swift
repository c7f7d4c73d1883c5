import Foundation
import TestSupport
import Testing

/// Real processes killed with SIGKILL mid-run: the job ends promptly and completely, and a rerun with
/// `--resume` finishes with final checkpoints identical, byte for byte, to an uninterrupted run's.
@Suite(.serialized, .enabled(if: fedbaechiBinary != nil && mpirunPath != nil && fashionInstalled && !underMPILauncher,
                             "needs the built binary, mpirun and dataset-fashion-mnist"))
struct FailureTests {
    let small = ["--model", "mlp", "--limit-train", "64", "--limit-test", "16", "--batch-size", "8", "--checkpoint-every", "2"]

    @Test func singleProcessResumesBitForBitPastADamagedCheckpoint() throws {
        let (whole, interrupted) = (scratch(), scratch())
        defer { remove(whole, interrupted) }
        let arguments = ["train", "single", "--epochs", "1"] + small
        let (status, _, err) = try run(fedbaechiBinary!.path, arguments + ["--checkpoint-dir", whole])
        #expect(status == 0, "stderr: \(err)")

        let job = try Background(fedbaechiBinary!.path, arguments + ["--checkpoint-dir", interrupted])
        #expect(waitForFile(interrupted + "/ckpt-0000000006-rank00000.fbck", timeout: 300))
        job.kill(pid: job.pid)
        _ = job.wait(timeout: 30)
        // Damage the newest checkpoint: resuming must fall back to the one before and say so.
        let newest = try newestCheckpoint(in: interrupted, rank: 0)
        try Data("torn".utf8).write(to: URL(fileURLWithPath: newest))
        let (resumed, out, resumeErr) = try run(fedbaechiBinary!.path, arguments + ["--checkpoint-dir", interrupted, "--resume"])
        #expect(resumed == 0, "stderr: \(resumeErr)")
        #expect(resumeErr.contains("not a fedbaechi checkpoint: passed over"), "stderr: \(resumeErr)")
        #expect(out.contains("resuming from step"))
        try expectSameFinalCheckpoints(whole, interrupted, position: 8, ranks: 1)
    }

    /// Both runs place one saved profile: a plan made from timings measured anew could give another rank
    /// a parameter, and each rank's file holds what that rank owns (the resumed run keeps its own plan).
    @Test func aKilledModelParallelRankEndsTheJobAndTheRerunResumes() throws {
        let profile = temporaryPath("fail-profile", extension: "json").path
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let (profiled, _, profileErr) = try fedbaechi(["profile", "--model", "mlp", "--batch", "8", "--repeats", "1", "--output", profile])
        try #require(profiled == 0, "stderr: \(profileErr)")
        try killAndResume(ranks: 2, position: 8, arguments: ["train", "model-parallel", "--steps", "8", "--profile", profile] + small,
                          killAfter: "ckpt-0000000004")
    }

    @Test func aKilledFederatedSiteEndsTheJobAndTheRerunResumes() throws {
        try killAndResume(ranks: 3, position: 4, arguments: ["train", "federated", "--rounds", "4", "--aggregation", "fedavg",
                                                             "--partition", "iid", "--model", "mlp", "--limit-train", "48",
                                                             "--limit-test", "12", "--batch-size", "16"],
                          killAfter: "ckpt-0000000002")
    }

    /// Runs the job whole; runs it again and SIGKILLs rank 1 once a checkpoint is written; checks that
    /// every other rank is gone within 30 s with mpirun naming the lost rank; resumes; compares.
    func killAndResume(ranks: Int, position: Int, arguments: [String], killAfter: String) throws {
        let (whole, interrupted) = (scratch(), scratch())
        defer { remove(whole, interrupted) }
        let mpi = ["-np", "\(ranks)", fedbaechiBinary!.path] + arguments
        let (status, _, err) = try run(mpirunPath!, mpi + ["--checkpoint-dir", whole], timeout: 600)
        #expect(status == 0, "stderr: \(err)")

        let job = try Background(mpirunPath!, mpi + ["--checkpoint-dir", interrupted])
        #expect(waitForFile(interrupted + "/\(killAfter)-rank00001.fbck", timeout: 300))
        let victims = rankProcesses(marker: interrupted)
        let victim = try #require(victims[1], "rank 1's process was not found")
        job.kill(pid: victim)
        let killed = Date()
        let exit = job.wait(timeout: 60)
        let seconds = Date().timeIntervalSince(killed)
        #expect(exit != nil && exit != 0, "mpirun exited with \(String(describing: exit))")
        #expect(seconds < 30, "the job took \(seconds) s to end after rank 1 was killed")
        #expect(job.standardError.contains("rank 1") && job.standardError.contains("signal 9"), "stderr: \(job.standardError)")
        Thread.sleep(forTimeInterval: 1)
        #expect(rankProcesses(marker: interrupted).isEmpty, "processes left running after the job ended")

        let (resumed, out, resumeErr) = try run(mpirunPath!, mpi + ["--checkpoint-dir", interrupted, "--resume"], timeout: 600)
        #expect(resumed == 0, "stderr: \(resumeErr)")
        #expect(out.contains("resuming"))
        try expectSameFinalCheckpoints(whole, interrupted, position: position, ranks: ranks)
    }

    /// A rank that hangs (SIGSTOP: alive, but silent, as behind a dead link) is no failure the launcher
    /// sees: the peer watch of the rank waiting for it ends the job after `--peer-timeout`, naming it.
    @Test func aHungModelParallelRankIsNamedAfterThePeerTimeout() throws {
        let directory = scratch()
        defer { remove(directory) }
        let job = try Background(mpirunPath!, ["-np", "2", fedbaechiBinary!.path, "train", "model-parallel", "--model", "mlp",
                                               "--hidden", "32,32", "--limit-train", "800", "--limit-test", "8", "--batch-size", "8",
                                               "--steps", "1000", "--checkpoint-every", "100", "--peer-timeout", "5",
                                               "--checkpoint-dir", directory])
        #expect(waitForFile(directory + "/ckpt-0000000100-rank00001.fbck", timeout: 300))
        let victim = try #require(rankProcesses(marker: directory)[1], "rank 1's process was not found")
        job.kill(pid: victim, signal: SIGSTOP)
        defer { job.kill(pid: victim, signal: SIGKILL) }
        let status = job.wait(timeout: 120)
        #expect(status != nil && status != 0, "mpirun exited with \(String(describing: status))")
        #expect(job.standardError.firstMatch(of: /rank 0: error: lost rank 1 \(host [^)]+\): nothing from it for 5 s/) != nil,
                "stderr: \(job.standardError)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/ckpt-0000001000-rank00000.fbck"), "the job ran to its end")
    }

    /// The same for a federated site: a site that hangs in a round is named by the sites waiting for it
    /// (at the end of local training, where the sites wait for each other, or inside the aggregation).
    @Test func aHungFederatedSiteIsNamedAfterThePeerTimeout() throws {
        let directory = scratch()
        defer { remove(directory) }
        let job = try Background(mpirunPath!, ["-np", "3", fedbaechiBinary!.path] + federatedSmall
                                               + ["--rounds", "200", "--peer-timeout", "5", "--checkpoint-dir", directory])
        #expect(waitForFile(directory + "/ckpt-0000000002-rank00001.fbck", timeout: 300))
        let victim = try #require(rankProcesses(marker: directory)[1], "site 1's process was not found")
        job.kill(pid: victim, signal: SIGSTOP)
        defer { job.kill(pid: victim, signal: SIGKILL) }
        let status = job.wait(timeout: 120)
        #expect(status != nil && status != 0, "mpirun exited with \(String(describing: status))")
        #expect(job.standardError.firstMatch(of: /site [02]: error: lost (site 1|one of [^:]*site 1) \(host [^)]+\)[^:]*: nothing from it for 5 s/) != nil,
                "stderr: \(job.standardError)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/ckpt-0000000200-rank00000.fbck"), "the job ran to its end")
    }

    /// Federated sites, a few local steps per round and FedAvg: rounds short enough that a test stops one
    /// in the middle of a run.
    let federatedSmall = ["train", "federated", "--aggregation", "fedavg", "--partition", "iid", "--model", "mlp",
                          "--hidden", "32,32", "--limit-train", "240", "--limit-test", "12", "--batch-size", "8", "--steps", "10"]

    /// Host 2's network link taken down mid-run (ranks on two test hosts, FEDBAECHI_TEST_HOSTS=1). Open
    /// MPI's TCP connections see no error then (the kernel retransmits for minutes), so the ranks' own
    /// peer watch must end them: every rank is gone within 60 s (10 s of `--peer-timeout`, then the
    /// launcher), and rank 0 names the lost peer and its host. With the link back up, `--resume` continues.
    @Test(.enabled(if: acrossTestHosts, "needs ranks on the test hosts (scripts/test-hosts.sh, root)"))
    func aHostLosingItsLinkEndsTheJobNamingThePeerAndTheRerunResumes() throws {
        let directory = scratch()
        let link = { (state: String) throws in
            let (status, _, err) = try run("/bin/bash", [testHostsScript, "link", "host2", state])
            try #require(status == 0, "taking host2's link \(state): \(err)")
        }
        defer { try? link("up"); remove(directory) }
        let job = ["-np", "2", fedbaechiBinary!.path, "train", "model-parallel", "--model", "mlp", "--hidden", "32,32",
                   "--limit-train", "800", "--limit-test", "8", "--batch-size", "8", "--steps", "1000",
                   "--checkpoint-every", "100", "--peer-timeout", "10", "--checkpoint-dir", directory]
        let running = try Background(mpirunPath!, job)
        #expect(waitForFile(directory + "/ckpt-0000000100-rank00001.fbck", timeout: 300))
        try link("down")
        let cut = Date()
        while !rankProcesses(marker: directory).isEmpty && Date().timeIntervalSince(cut) < 120 {
            Thread.sleep(forTimeInterval: 0.2)
        }
        let seconds = Date().timeIntervalSince(cut)
        #expect(rankProcesses(marker: directory).isEmpty, "ranks still running \(seconds) s after host2's link went down")
        #expect(seconds < 60, "the ranks took \(seconds) s to end after host2's link went down")
        // mpirun itself waits for host2's daemon (over TCP, which holds on while the link is down): with
        // the link back, it hears that every rank ended and exits.
        try link("up")
        let status = running.wait(timeout: 120)
        #expect(status != nil && status != 0, "mpirun exited with \(String(describing: status))")
        #expect(running.standardError.contains("rank 0: error: lost rank 1 (host fbh-host2)"), "stderr: \(running.standardError)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/ckpt-0000001000-rank00001.fbck"), "the job ran to its end")

        let (resumed, out, err) = try run(mpirunPath!, job + ["--resume"], timeout: 600)
        #expect(resumed == 0, "stderr: \(err)")
        #expect(out.contains("resuming from step"), "stdout: \(out)")
        #expect(FileManager.default.fileExists(atPath: directory + "/ckpt-0000001000-rank00001.fbck"))
    }

    /// The same across hosts for a federated job: 4 sites, two on each host; host 2's link goes down
    /// between rounds or inside one. Every site is gone within 60 s, a site on host 1 names a site on
    /// host 2, and `--resume` continues.
    @Test(.enabled(if: acrossTestHosts, "needs ranks on the test hosts (scripts/test-hosts.sh, root)"))
    func aHostLosingItsLinkEndsTheFederatedJobNamingASiteAndTheRerunResumes() throws {
        let directory = scratch()
        let link = { (state: String) throws in
            let (status, _, err) = try run("/bin/bash", [testHostsScript, "link", "host2", state])
            try #require(status == 0, "taking host2's link \(state): \(err)")
        }
        defer { try? link("up"); remove(directory) }
        let job = ["-np", "4", fedbaechiBinary!.path] + federatedSmall
            + ["--rounds", "200", "--peer-timeout", "10", "--checkpoint-every", "10", "--checkpoint-dir", directory]
        let running = try Background(mpirunPath!, job)
        #expect(waitForFile(directory + "/ckpt-0000000010-rank00003.fbck", timeout: 300))
        try link("down")
        let cut = Date()
        while !rankProcesses(marker: directory).isEmpty && Date().timeIntervalSince(cut) < 120 {
            Thread.sleep(forTimeInterval: 0.2)
        }
        let seconds = Date().timeIntervalSince(cut)
        #expect(rankProcesses(marker: directory).isEmpty, "sites still running \(seconds) s after host2's link went down")
        #expect(seconds < 60, "the sites took \(seconds) s to end after host2's link went down")
        try link("up")
        let status = running.wait(timeout: 120)
        #expect(status != nil && status != 0, "mpirun exited with \(String(describing: status))")
        // Sites 1 and 3 run on host 2.
        #expect(running.standardError.firstMatch(of: /site [02]: error: lost [^:]*site [13] \(host fbh-host2\)/) != nil,
                "stderr: \(running.standardError)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/ckpt-0000000200-rank00001.fbck"), "the job ran to its end")

        let (resumed, out, err) = try run(mpirunPath!, job + ["--resume"], timeout: 900)
        #expect(resumed == 0, "stderr: \(err)")
        #expect(out.contains("resuming after round"), "stdout: \(out)")
        #expect(FileManager.default.fileExists(atPath: directory + "/ckpt-0000000200-rank00001.fbck"))
    }

    func expectSameFinalCheckpoints(_ a: String, _ b: String, position: Int, ranks: Int) throws {
        for rank in 0..<ranks {
            let name = String(format: "/ckpt-%010d-rank%05d.fbck", position, rank)
            let first = try Data(contentsOf: URL(fileURLWithPath: a + name))
            let second = try Data(contentsOf: URL(fileURLWithPath: b + name))
            #expect(first == second, "rank \(rank)'s final checkpoint differs after resuming")
        }
    }

    func newestCheckpoint(in directory: String, rank: Int) throws -> String {
        let suffix = String(format: "-rank%05d.fbck", rank)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(suffix) }.sorted()
        return directory + "/" + (try #require(names.last))
    }

    func scratch() -> String { temporaryPath("fail").path }

    func remove(_ paths: String...) { for path in paths { try? FileManager.default.removeItem(atPath: path) } }

    func waitForFile(_ path: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: path) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// fedbaechi processes whose command line holds `marker`, by MPI rank (from Open MPI's environment).
    func rankProcesses(marker: String) -> [Int: Int32] {
        var found: [Int: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(),
                  let command = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  String(decoding: command, as: UTF8.self).contains(marker),
                  String(decoding: command, as: UTF8.self).split(separator: "\0").first?.hasSuffix("fedbaechi") == true,
                  let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            for variable in String(decoding: environment, as: UTF8.self).split(separator: "\0")
            where variable.hasPrefix("OMPI_COMM_WORLD_RANK=") {
                if let rank = Int(variable.dropFirst("OMPI_COMM_WORLD_RANK=".count)) { found[rank] = pid }
            }
        }
        return found
    }
}
