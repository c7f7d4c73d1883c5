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
    /// the others do with a malformed one.
    init(world: Communicator, schedule: AggregationSchedule, secrets: SiteSecrets, publishing: [UInt8],
         observer: ((ReceivedValue) -> Void)?) throws {
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
    public func aggregate(theta: [Double], weight: Double, round: Int, initialDuals: [Double],
                          trace: Bool = false) throws -> AdmmRoundResult {
        precondition(initialDuals.count == theta.count, "one dual per parameter")
        var dual = initialDuals
        var z = [Double](repeating: 0, count: theta.count)
        var x = z
        var contribution = z
        var result = AdmmRoundResult(z: [])
        var previous: [Double] = []
        for (k, rho) in schedule.rhoValues.enumerated() {
            let c = k % schedule.classesUsed
            AdmmAveraging.localStep(theta: theta, dual: dual, z: z, rho: rho, weight: weight, x: &x, contribution: &contribution)
            let groupSum = try groupPhase(contribution, classIndex: c, round: round, iteration: k)
            previous = z
            z = try combinePhase(groupSum, classIndex: c, round: round, iteration: k)
            AdmmAveraging.dualStep(dual: &dual, x: x, z: z, rho: rho)
            if trace {
                result.zHistory.append(z)
                if let groupSum { result.groupSums.append(FixedPoint.decode(groupSum)) }
            }
        }
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

    /// The group's sum of contributions, in fixed point, on the group's leader (nil elsewhere): every
    /// member sends its contribution (plain) or its masked share (masked) to the leader alone.
    private func groupPhase(_ contribution: [Double], classIndex c: Int, round: Int, iteration k: Int) throws -> [UInt64]? {
        let group = groups[c]
        let count = contribution.count
        let tag = MessageTags.ClassGroup.contribution(iteration: k)
        if group.rank != 0 {
            bytesSent += count * 8
            if schedule.masked {
                var share = try FixedPoint.encode(contribution)
                masks.mask(&share, members: members[c], purpose: MaskPurpose(round: round, iteration: k, phase: .group))
                try watched([members[c][0]], "its group's leader to take its share", round, k) { () throws(MPIError) in
                    try group.send(share, to: 0, tag: tag)
                }
            } else {
                try watched([members[c][0]], "its group's leader to take its message", round, k) { () throws(MPIError) in
                    try group.send(contribution, to: 0, tag: tag)
                }
            }
            return nil
        }
        if schedule.masked {
            var sum = try FixedPoint.encode(contribution)
            masks.mask(&sum, members: members[c], purpose: MaskPurpose(round: round, iteration: k, phase: .group))
            for g in 1..<group.size {
                let share = try watched([members[c][g]], "a group-mate's share", round, k) { () throws(MPIError) in
                    try group.receive(UInt64.self, count: count, from: g, tag: tag)
                }
                observer?(ReceivedValue(round: round, iteration: k, kind: .maskedShare, fromSite: members[c][g], content: .fixedPoint(share)))
                FixedPoint.add(&sum, share)
            }
            return sum
        }
        var sum = contribution
        for g in 1..<group.size {
            let message = try watched([members[c][g]], "a group-mate's message", round, k) { () throws(MPIError) in
                try group.receive(Double.self, count: count, from: g, tag: tag)
            }
            observer?(ReceivedValue(round: round, iteration: k, kind: .groupMessage, fromSite: members[c][g], content: .plain(message)))
            sum.withUnsafeMutableBufferPointer { s in message.withUnsafeBufferPointer { m in for i in 0..<s.count { s[i] += m[i] } } }
        }
        return try FixedPoint.encode(sum)
    }

    /// z from the group sums, formed by the class's leaders under masks and broadcast in each group.
    private func combinePhase(_ groupSum: [UInt64]?, classIndex c: Int, round: Int, iteration k: Int) throws -> [Double] {
        var zFixed = groupSum ?? []
        if let leaders = leaderGroups[c], groupSum != nil {
            masks.mask(&zFixed, members: leaderSites[c], purpose: MaskPurpose(round: round, iteration: k, phase: .leaders))
            try watched(leaderSites[c].filter { $0 != site }, "the leaders' sum", round, k) { () throws(MPIError) in
                try leaders.allreduce(&zFixed, .sum)
            }
            bytesSent += (leaders.size > 1 ? zFixed.count * 8 : 0) + (groups[c].size - 1) * zFixed.count * 8
        }
        let awaited = members[c][0] == site ? members[c].filter { $0 != site } : [members[c][0]]
        try watched(awaited, "z from its group's leader", round, k) { () throws(MPIError) in
            try groups[c].broadcast(&zFixed, root: 0)
        }
        observer?(ReceivedValue(round: round, iteration: k, kind: .z, fromSite: leaderGroups[c] == nil ? members[c][0] : nil,
                                content: .fixedPoint(zFixed)))
        return FixedPoint.decode(zFixed)
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
