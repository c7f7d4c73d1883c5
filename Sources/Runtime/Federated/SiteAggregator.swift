import Basics
import Federated
import Foundation
import MPI

/// One value a site received from the network during aggregation, as the site sees it.
///
/// The aggregator reports every receive to an optional observer; the tests use it to check that each
/// site receives exactly what `docs/privacy.md` says and nothing else.
public struct ReceivedValue: Sendable {
    public enum Kind: String, Sendable {
        /// A site's X25519 public key (set-up, once per job; public by design).
        case publicKey
        /// A group-mate's weighted message w_j m_j, at the group's leader (plain mode).
        case groupMessage
        /// A group-mate's weighted message under pairwise masks, at the group's leader (masked mode):
        /// uniform in Z_(2^64).
        case maskedShare
        /// z of an iteration (public).
        case z
        /// The weighted mean of the models, formed by a sum masked over all sites (the opt-in exact-mean
        /// diagnostic; public: it is the round's output).
        case mean
    }

    public enum Content: Sendable {
        case plain([Double])
        case fixedPoint([UInt64])
        case bytes([UInt8])
    }

    public var round: Int
    /// 0-based ADMM iteration; -1 outside the iterations.
    public var iteration: Int
    public var kind: Kind
    /// The world rank the value came from, when it came from one site.
    public var fromSite: Int?
    public var content: Content
}

/// What one ADMM round left on this site.
public struct AdmmRoundResult: Sendable {
    /// The final z: the same on every site, bit for bit.
    public var z: [Double]
    /// ||z_K - mean|| / ||mean||, from the public z history alone: by the closed form
    /// z_k - mean = rho_k / (2 + rho_k) (z_(k-1) - mean) for k >= 2, z_K - mean = (z_(K-1) - z_K) rho_K / 2.
    /// Nil with one iteration, where nothing public tells the error.
    public var errorEstimate: Double?
    /// z after each iteration, and the group sum of each iteration in which this site led its group
    /// (only with `trace`).
    public var zHistory: [[Double]] = []
    public var groupSums: [[Double]] = []
}

/// A site's side of private ADMM aggregation over MPI (digest: "Privacy-preserving decentralized
/// aggregation"), with group communicators built once from the block design.
///
/// Iteration k, class (k-1) mod r, for site i in group G:
/// 1. x_i, m_i as in `AdmmAveraging`; the site contributes w_i m_i.
/// 2. Group phase, inside G's communicator: every member sends its contribution to G's leader (its
///    lowest rank), as it is in plain mode, or in fixed point under pairwise masks that cancel in G's
///    sum in masked mode, so that the leader learns only that sum. Each member sends one copy of its
///    model-sized message, not one per group-mate.
/// 3. Combine phase: G's leader adds leader-pairwise masks to G's sum, the leaders of
///    the class sum these over their own communicator, and each leader broadcasts z inside its group.
///    No group sum is ever seen outside its group: the audit's assumption (if group sums were public,
///    models would leak).
/// 4. lambda_i += rho (x_i - z).
/// Once per job every site publishes an X25519 public key; each pair's masks derive from the key the
/// two agree, and each site's duals from a key of its own (`SiteSecrets`): no secret is ever sent.
public final class SiteAggregator: @unchecked Sendable {
    // @unchecked: used by one thread; the communicators are immutable MPI handles.
    public let world: Communicator
    public let schedule: AggregationSchedule
    public var site: Int { world.rank }
    /// Per class used: this site's group (world ranks, ascending), its communicator, and the class's
    /// leaders with their communicator when this site is one of them.
    private let members: [[Int]]
    private let groups: [Communicator]
    private let leaderSites: [[Int]]
    private let leaderGroups: [Communicator?]
    private let masks: PairwiseMasks
    /// This site's keys: its duals derive from them.
    private let secrets: SiteSecrets
    /// Bytes of this site's own data handed to MPI since the start (see `docs/privacy.md`).
    public private(set) var bytesSent = 0
    public var observer: ((ReceivedValue) -> Void)?

    /// Collective over the world: builds the group communicators and agrees a key with every other
    /// site (X25519 over an allgather of public keys). A malformed key makes every site throw the same
    /// error at the same point, so no site is left waiting.
    public convenience init(world: Communicator, schedule: AggregationSchedule, secrets: SiteSecrets,
                            observer: ((ReceivedValue) -> Void)? = nil) throws {
        try self.init(world: world, schedule: schedule, secrets: secrets, publishing: secrets.publicKey, observer: observer)
    }

    /// `publishing` is what this site sends as its public key: its own, except in the tests of what
    /// the others do with a malformed one; `chunkWords` (a multiple of 8) is the pipeline's chunk, which
    /// the tests make small to run many chunks on a small model.
    init(world: Communicator, schedule: AggregationSchedule, secrets: SiteSecrets, publishing: [UInt8],
         observer: ((ReceivedValue) -> Void)?, chunkWords: Int = SiteAggregator.defaultChunkWords) throws {
        precondition(chunkWords > 0 && chunkWords % 8 == 0, "a pipeline chunk is a whole number of ChaCha20 blocks")
        self.chunkWords = chunkWords
        guard schedule.design.sites == world.size else {
            throw FederatedError("the design has \(schedule.design.sites) sites but the job has \(world.size) ranks")
        }
        self.world = world
        self.schedule = schedule
        self.observer = observer
        self.secrets = secrets
        // Public keys: 32 bytes from every site (a longer or shorter one is cut or padded to 32 and
        // then fails agreement like any other bad key).
        var published = Array(publishing.prefix(32))
        published += [UInt8](repeating: 0, count: 32 - published.count)
        let all = try world.allgather(published)
        let keys = (0..<world.size).map { Array(all[($0 * 32)..<(($0 + 1) * 32)]) }
        for peer in 0..<world.size where peer != world.rank {
            observer?(ReceivedValue(round: 0, iteration: -1, kind: .publicKey, fromSite: peer, content: .bytes(keys[peer])))
        }
        do {
            self.masks = try secrets.pairwiseMasks(site: world.rank, publicKeys: keys)
        } catch {
            throw FederatedError(error.description)
        }
        var members: [[Int]] = []
        var groups: [Communicator] = []
        var leaderSites: [[Int]] = []
        // Every site builds the classes in the same order; a creation involves only its members.
        for c in 0..<schedule.classesUsed {
            let parallelClass = schedule.design.classes[c].map { $0.sorted() }
            guard let mine = parallelClass.first(where: { $0.contains(world.rank) }) else {
                throw FederatedError("site \(world.rank) is in no group of class \(c)")
            }
            members.append(mine)
            groups.append(try world.subcommunicator(ranks: mine, tag: MessageTags.World.GroupCreation.classGroup(c)))
            leaderSites.append(parallelClass.map { $0[0] }.sorted())
        }
        var leaderGroups: [Communicator?] = []
        for c in 0..<schedule.classesUsed {
            leaderGroups.append(members[c][0] == world.rank
                ? try world.subcommunicator(ranks: leaderSites[c], tag: MessageTags.World.GroupCreation.leaderGroup(c, classes: schedule.classesUsed)) : nil)
        }
        self.members = members
        self.groups = groups
        self.leaderSites = leaderSites
        self.leaderGroups = leaderGroups
    }

    /// Fresh secret duals lambda_i^0 for a round, uniform on the schedule's dual range (reusing them
    /// would link rounds).
    public func drawDuals(round: Int, count: Int) -> [Double] {
        secrets.duals(round: round, count: count, range: schedule.dualRange)
    }

    /// One aggregation round (collective over the world): returns z, the weighted average of the sites'
    /// `theta` to within the schedule's convergence. `weight` is this site's w_i (the w_i sum to 1).
    public func aggregate(theta: [Double], weight: Double, round: Int, trace: Bool = false) throws -> AdmmRoundResult {
        try aggregate(theta: theta, weight: weight, round: round, initialDuals: drawDuals(round: round, count: theta.count), trace: trace)
    }

    /// The same with given duals: tests compare against a serial run of `AdmmAveraging` with them.
    ///
    /// Each iteration runs over the model in chunks (`defaultChunkWords` values) as a pipeline: a member
    /// computes a chunk's x, message and share in one pass and starts sending it before computing the
    /// next; a leader adds each chunk's shares as they arrive and starts the leaders' sum of that chunk
    /// while it works on the next, then the chunk's broadcast of z. Every value is computed by the same
    /// expressions in the same order as in one piece (masks are the keystream words at the chunk's own
    /// positions), so z does not depend on the chunking, and each site receives the same values from the
    /// same sites as before, whole messages reported to the observer once complete.
    public func aggregate(theta: [Double], weight: Double, round: Int, initialDuals: [Double],
                          trace: Bool = false) throws -> AdmmRoundResult {
        precondition(initialDuals.count == theta.count, "one dual per parameter")
        let count = theta.count
        let space = workspace(count: count)
        _ = space.dual.update(fromContentsOf: initialDuals)
        space.z.update(repeating: 0)
        var result = AdmmRoundResult(z: [])
        var previous: [Double] = []
        try theta.withUnsafeBufferPointer { (theta) throws in
            for (k, rho) in schedule.rhoValues.enumerated() {
                if k == schedule.rhoValues.count - 1 { previous = Array(space.z) }
                try iterate(space, theta: theta, weight: weight, rho: rho, classIndex: k % schedule.classesUsed,
                            round: round, iteration: k, trace: trace)
                if trace {
                    result.zHistory.append(Array(space.z))
                    if members[k % schedule.classesUsed][0] == site { result.groupSums.append(FixedPoint.decode(Array(space.groupSum))) }
                }
            }
        }
        let z = Array(space.z)
        result.z = z
        if schedule.iterations >= 2 {
            let rho = schedule.rhoValues.last!
            var error = 0.0
            var mean = 0.0
            for i in z.indices {
                let e = (previous[i] - z[i]) * rho / 2
                error += e * e
                mean += (z[i] - e) * (z[i] - e)
            }
            result.errorEstimate = mean > 0 ? (error / mean).squareRoot() : error.squareRoot()
        }
        return result
    }

    /// Values per chunk of the pipeline: a multiple of 8, so that every chunk starts at a whole
    /// ChaCha20 block of the masks' keystreams. Measured on 2 cores with 9 and 15 ranks, chunks of
    /// 65,536 values made a round 5x slower than one chunk (Open MPI's nonblocking collectives progress
    /// only inside MPI calls, and oversubscribed ranks wait their turn for each), so today's models go
    /// in one chunk; the pipeline stays for machines with a core per rank, where it is to be measured.
    static let defaultChunkWords = 1 << 24
    let chunkWords: Int

    /// The vectors of one round, kept between rounds (a model's size does not change), so that no
    /// iteration allocates a model-sized array. Nonblocking operations read and write them in flight:
    /// they live as long as the aggregator.
    private final class Workspace {
        let count: Int
        private var owned: [UnsafeMutableRawBufferPointer] = []
        lazy var dual = doubles()
        lazy var z = doubles()
        lazy var x = doubles()
        lazy var contribution = doubles()
        /// A member's share in flight (masked mode).
        lazy var share = words()
        /// A leader's group sum, then z in fixed point; z in fixed point as a member receives it.
        lazy var zFixed = words()
        /// The leader's copy of its group sum before the leaders' masks (with `trace` only).
        lazy var groupSum = words()
        /// A leader's receive buffers, one per group-mate: shares (masked mode) or messages (plain).
        var shares: [UnsafeMutableBufferPointer<UInt64>] = []
        var messages: [UnsafeMutableBufferPointer<Double>] = []

        init(count: Int) { self.count = count }

        private func buffer<T: Numeric>(_: T.Type) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: count)
            b.initialize(repeating: 0)
            owned.append(UnsafeMutableRawBufferPointer(b))
            return b
        }

        private func doubles() -> UnsafeMutableBufferPointer<Double> { buffer(Double.self) }
        private func words() -> UnsafeMutableBufferPointer<UInt64> { buffer(UInt64.self) }

        /// The first `n` buffers of `buffers`, allocating the missing ones.
        func first<T: Numeric>(_ n: Int, of buffers: inout [UnsafeMutableBufferPointer<T>]) -> [UnsafeMutableBufferPointer<T>] {
            while buffers.count < n { buffers.append(buffer(T.self)) }
            return Array(buffers.prefix(n))
        }

        deinit {
            for b in owned { b.deallocate() }
        }
    }

    private var cachedWorkspace: Workspace?

    private func workspace(count: Int) -> Workspace {
        if let cachedWorkspace, cachedWorkspace.count == count { return cachedWorkspace }
        let space = Workspace(count: count)
        cachedWorkspace = space
        return space
    }

    /// One ADMM iteration on this site: leaves z in `space.z` and the updated duals in `space.dual`.
    private func iterate(_ space: Workspace, theta: UnsafeBufferPointer<Double>, weight: Double, rho: Double,
                         classIndex c: Int, round: Int, iteration k: Int, trace: Bool) throws {
        let group = groups[c]
        let count = space.count
        let chunks = stride(from: 0, to: count, by: chunkWords).map { $0..<min($0 + chunkWords, count) }
        let tag = MessageTags.ClassGroup.contribution(iteration: k)
        let leader = members[c][0]
        let masked = schedule.masked
        let groupMasks = masked ? masks.streams(members: members[c], purpose: MaskPurpose(round: round, iteration: k, phase: .group)) : nil

        /// x and w_i m_i of one chunk, and in masked mode the chunk's share (into `into`), in one pass.
        func localPart(_ r: Range<Int>, into share: @autoclosure () -> UnsafeMutableBufferPointer<UInt64>) throws {
            AdmmAveraging.localStep(theta: UnsafeBufferPointer(rebasing: theta[r]), dual: UnsafeBufferPointer(rebasing: space.dual[r]),
                                    z: UnsafeBufferPointer(rebasing: space.z[r]), rho: rho, weight: weight,
                                    x: UnsafeMutableBufferPointer(rebasing: space.x[r]),
                                    contribution: UnsafeMutableBufferPointer(rebasing: space.contribution[r]))
            if let groupMasks {
                let out = UnsafeMutableBufferPointer(rebasing: share()[r])
                try FixedPoint.encode(UnsafeBufferPointer(rebasing: space.contribution[r]), into: out)
                groupMasks.mask(out, at: r.lowerBound)
            }
        }

        /// z of one chunk from its fixed-point form, and the chunk's dual step.
        func finish(_ r: Range<Int>) {
            FixedPoint.decode(UnsafeBufferPointer(rebasing: space.zFixed[r]), into: UnsafeMutableBufferPointer(rebasing: space.z[r]))
            AdmmAveraging.dualStep(dual: UnsafeMutableBufferPointer(rebasing: space.dual[r]), x: UnsafeBufferPointer(rebasing: space.x[r]),
                                   z: UnsafeBufferPointer(rebasing: space.z[r]), rho: rho)
        }

        if group.rank != 0 {
            // Member: every chunk's message to the leader as soon as it is computed; z comes back by chunks.
            bytesSent += count * 8
            var sends: [Request] = []
            sends.reserveCapacity(chunks.count)
            for r in chunks {
                try localPart(r, into: space.share)
                if masked {
                    sends.append(try group.sendAsync(UnsafeBufferPointer(rebasing: space.share[r]), to: 0, tag: tag))
                } else {
                    sends.append(try group.sendAsync(UnsafeBufferPointer(rebasing: space.contribution[r]), to: 0, tag: tag))
                }
            }
            let broadcasts = try chunks.map { (r) throws(MPIError) in try group.broadcastAsync(UnsafeMutableBufferPointer(rebasing: space.zFixed[r]), root: 0) }
            for (r, broadcast) in zip(chunks, broadcasts) {
                try watched([leader], "z from its group's leader", round, k) { () throws(MPIError) in _ = try broadcast.wait() }
                finish(r)
            }
            try watched([leader], masked ? "its group's leader to take its share" : "its group's leader to take its message", round, k) { () throws(MPIError) in
                try Request.waitAll(sends)
            }
            observer?(ReceivedValue(round: round, iteration: k, kind: .z, fromSite: leader, content: .fixedPoint(Array(space.zFixed))))
            return
        }

        // Leader: receives posted for every chunk of every group-mate before any arithmetic.
        let mates = group.size - 1
        let shares = masked ? space.first(mates, of: &space.shares) : []
        let messages = masked ? [] : space.first(mates, of: &space.messages)
        var receives: [[Request]] = []
        for g in 0..<mates {
            receives.append(try chunks.map { (r) throws(MPIError) in
                try masked ? group.receiveAsync(into: UnsafeMutableBufferPointer(rebasing: shares[g][r]), from: g + 1, tag: tag)
                    : group.receiveAsync(into: UnsafeMutableBufferPointer(rebasing: messages[g][r]), from: g + 1, tag: tag)
            })
        }
        let leaders = leaderGroups[c]!
        let leaderMasks = masks.streams(members: leaderSites[c], purpose: MaskPurpose(round: round, iteration: k, phase: .leaders))
        let otherLeaders = leaderSites[c].filter { $0 != site }
        var sums: [Request] = []
        var broadcasts: [Request] = []
        sums.reserveCapacity(chunks.count)
        broadcasts.reserveCapacity(chunks.count)
        /// Once chunk i's leaders' sum is done, z of chunk i goes to the group.
        func broadcastChunk(_ i: Int) throws {
            try watched(otherLeaders, "the leaders' sum", round, k) { () throws(MPIError) in _ = try sums[i].wait() }
            broadcasts.append(try group.broadcastAsync(UnsafeMutableBufferPointer(rebasing: space.zFixed[chunks[i]]), root: 0))
        }
        for (i, r) in chunks.enumerated() {
            let sum = UnsafeMutableBufferPointer(rebasing: space.zFixed[r])
            try localPart(r, into: space.zFixed)
            for g in 0..<mates {
                try watched([members[c][g + 1]], masked ? "a group-mate's share" : "a group-mate's message", round, k) { () throws(MPIError) in
                    _ = try receives[g][i].wait()
                }
                if masked {
                    FixedPoint.add(sum, UnsafeBufferPointer(rebasing: shares[g][r]))
                } else {
                    // The leader's own message first, then each group-mate's in rank order, as ever.
                    let message = UnsafeBufferPointer(rebasing: messages[g][r])
                    let own = UnsafeMutableBufferPointer(rebasing: space.contribution[r])
                    for j in 0..<own.count { own[j] += message[j] }
                }
            }
            if !masked { try FixedPoint.encode(UnsafeBufferPointer(rebasing: space.contribution[r]), into: sum) }
            if trace { _ = UnsafeMutableBufferPointer(rebasing: space.groupSum[r]).update(fromContentsOf: sum) }
            leaderMasks.mask(sum, at: r.lowerBound)
            sums.append(try leaders.allreduceAsync(sum, .sum))
            if i > 0 { try broadcastChunk(i - 1) }
        }
        if !chunks.isEmpty { try broadcastChunk(chunks.count - 1) }
        bytesSent += (leaders.size > 1 ? count * 8 : 0) + mates * count * 8
        for g in 0..<mates {
            if masked {
                observer?(ReceivedValue(round: round, iteration: k, kind: .maskedShare, fromSite: members[c][g + 1],
                                        content: .fixedPoint(Array(shares[g]))))
            } else {
                observer?(ReceivedValue(round: round, iteration: k, kind: .groupMessage, fromSite: members[c][g + 1],
                                        content: .plain(Array(messages[g]))))
            }
        }
        for (r, broadcast) in zip(chunks, broadcasts) {
            try watched(members[c].filter { $0 != site }, "z from its group's leader", round, k) { () throws(MPIError) in _ = try broadcast.wait() }
            finish(r)
        }
        observer?(ReceivedValue(round: round, iteration: k, kind: .z, fromSite: nil, content: .fixedPoint(Array(space.zFixed))))
    }

    /// sum_i w_i theta_i exactly (to fixed-point rounding), by a sum masked over all sites: the opt-in
    /// diagnostic that checks the aggregation error. Every share, and every partial sum that MPI's
    /// reduction forms from shares, is uniformly random (each misses the other end of some pair's
    /// mask); only the total, the round's public output, is not.
    public func maskedMean(theta: [Double], weight: Double, round: Int) throws -> [Double] {
        var share = try FixedPoint.encode(theta.map { weight * $0 })
        masks.mask(&share, members: Array(0..<world.size), purpose: MaskPurpose(round: round, iteration: 0, phase: .check))
        try watched((0..<world.size).filter { $0 != site }, "the masked sum of every site", round, -1) { () throws(MPIError) in
            try world.allreduce(&share, .sum)
        }
        bytesSent += share.count * 8
        observer?(ReceivedValue(round: round, iteration: -1, kind: .mean, fromSite: nil, content: .fixedPoint(share)))
        return FixedPoint.decode(share)
    }

    /// `body`, a wait for `sites` (world ranks), under the job's peer watch.
    private func watched<Result>(_ sites: [Int], _ what: @autoclosure () -> String, _ round: Int, _ iteration: Int,
                                 _ body: () throws(MPIError) -> Result) throws(MPIError) -> Result {
        try PeerWatch.shared.waiting(for: sites, "\(what()) (round \(round)\(iteration >= 0 ? ", ADMM iteration \(iteration + 1)" : ""))", body)
    }

    /// Frees the group communicators (collective within each group).
    public func free() throws {
        for group in groups { try group.free() }
        for leaders in leaderGroups { try leaders?.free() }
    }
}

/// A federated run that cannot go on, with a message for the user.
public struct FederatedError: UserFacingError {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var exitStatus: ExitStatus { .runtime }
}
