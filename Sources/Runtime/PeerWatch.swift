import Basics
import Foundation
import MPI

/// Ends a rank that has waited too long for a peer, naming the peer and its host.
///
/// A rank that dies is reported by the launcher (mpirun names it and ends the others). A peer whose host
/// drops off the network is not: Open MPI's TCP connections see no error while the kernel keeps
/// retransmitting (about 15 minutes with Linux's defaults), and the ranks waiting for the lost one
/// would hang that long. So every wait for another rank during training (a model-parallel rank's
/// tensors, a federated site's aggregation) runs under this watch: when one lasts longer than the
/// timeout, a watcher thread says which rank (and host) this rank was waiting for and ends the
/// process, and the launcher ends the job. The watcher makes no MPI call (MPI runs at the serialized
/// thread level; the main thread is inside MPI then), only a write and `_exit`.
public final class PeerWatch: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var timeout: Double?
    private var rank = 0
    private var hosts: [String] = []
    /// What the job calls its ranks in messages: "rank" (model-parallel) or "site" (federated).
    private var noun = "rank"
    /// The wait under way: whom it is for, what it waits for, since when (monotonic seconds), and how
    /// much longer than the timeout it may take.
    private var waiting: (peers: [Int], what: String, since: Double, allowance: Double)?
    private var watcher: Thread?

    public static let shared = PeerWatch()

    /// The wait for a peer unless told otherwise: far beyond a step's or an aggregation's wait on a
    /// loaded machine, well within the minutes TCP takes to give a lost host up.
    public static let defaultTimeout = 60.0

    /// Starts watching this rank's waits: longer than `timeout` seconds ends the process (nil: never).
    /// `hosts`: each rank's host, by rank; `noun`: what the job calls a rank ("rank", "site").
    public func start(timeout: Double?, rank: Int, hosts: [String], noun: String = "rank") {
        lock.lock()
        defer { lock.unlock() }
        self.timeout = timeout
        self.rank = rank
        self.hosts = hosts
        self.noun = noun
        guard timeout != nil, watcher == nil else { return }
        let thread = Thread { [weak self] in
            while let self, self.check() {
                Thread.sleep(forTimeInterval: 0.25)
            }
        }
        thread.name = "peer watch"
        watcher = thread
        thread.start()
    }

    /// Runs `body`, a wait for `peers` (ranks) for `what`, under the watch. `allowance`: seconds the
    /// wait may take beyond the timeout, when the peers have known work to finish first (a federated
    /// site waiting for the sites with more data to finish their local training).
    public func waiting<Result, Failure: Error>(for peers: [Int], _ what: @autoclosure () -> String, allowance: Double = 0,
                                                _ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        let watched = timeout != nil && waiting == nil
        if watched { waiting = (peers, what(), Self.now(), max(0, allowance)) }
        lock.unlock()
        defer {
            if watched {
                lock.lock()
                waiting = nil
                lock.unlock()
            }
        }
        return try body()
    }

    /// Narrows the wait under way to the peers still to be heard from, so that a timeout names them.
    public func stillWaiting(for peers: [Int]) {
        lock.lock()
        waiting?.peers = peers
        lock.unlock()
    }

    /// Ends the process when the wait under way has lasted too long; false once nothing is watched.
    private func check() -> Bool {
        lock.lock()
        guard let timeout else { lock.unlock(); return false }
        guard let waiting, Self.now() - waiting.since > timeout + waiting.allowance else { lock.unlock(); return true }
        let message = Self.lostPeerMessage(rank: rank, hosts: hosts, peers: waiting.peers, what: waiting.what,
                                           seconds: timeout + waiting.allowance, noun: noun)
        lock.unlock()
        FileHandle.standardError.write(Data(("fedbaechi: \(noun) \(rank): error: " + message + "\n").utf8))
        _exit(ExitStatus.runtime.rawValue)
    }

    /// "lost rank 1 (host node2): nothing from it for 30 s while rank 0 on node1 waited for a tensor of step 41; ..."
    public static func lostPeerMessage(rank: Int, hosts: [String], peers: [Int], what: String, seconds: Double,
                                       noun: String = "rank") -> String {
        func named(_ peer: Int) -> String { "\(noun) \(peer)" + (peer < hosts.count ? " (host \(hosts[peer]))" : "") }
        let who = peers.count == 1 ? named(peers[0]) : "one of " + peers.map(named).joined(separator: ", ")
        let own = rank < hosts.count ? " on \(hosts[rank])" : ""
        return "lost \(who): nothing from it for \(describeDuration(seconds)) while \(noun) \(rank)\(own) waited for \(what) "
            + "(its process hangs or the network to its host is down; --peer-timeout sets the wait). "
            + "The job ends; rerun with --resume to continue from the last checkpoint"
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
