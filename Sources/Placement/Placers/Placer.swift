import Basics

/// The placement algorithms fedbaechi offers.
public enum Algorithm: String, CaseIterable, Sendable, Codable {
    case mSCT = "m-sct"
    case mETF = "m-etf"
    case mTOPO = "m-topo"
    case single
    case expert
    /// Runs all of the above and keeps the fastest simulated plan that fits.
    case auto

    /// The algorithms `auto` chooses among, in order of preference on equal makespans.
    public static let concrete: [Algorithm] = [.mSCT, .mETF, .mTOPO, .expert, .single]
}

/// Where each placement unit goes, and the schedule the placer itself predicted (if it builds one).
public struct UnitPlacement: Sendable {
    public var deviceOfUnit: [Int32]
    public var predictedMakespanMicros: Double?
    /// The order the placer's own schedule runs in (list schedulers only); the plan's step is this
    /// order replayed, so the plan runs the way the placer decided.
    public var order: UnitOrder?

    public init(deviceOfUnit: [Int32], predictedMakespanMicros: Double? = nil, order: UnitOrder? = nil) {
        self.deviceOfUnit = deviceOfUnit
        self.predictedMakespanMicros = predictedMakespanMicros
        self.order = order
    }
}

/// A placer's schedule without its times: the units in the order they started, and the tensors
/// in the order their transfers were booked.
public struct UnitOrder: Sendable {
    public var units: [Int32]
    public var transfers: [ScheduledTransfer]

    /// The same order over the nodes of the input graph: each unit's members in a row.
    public func schedule(_ pg: PlacementGraph, deviceOfUnit: [Int32], deviceCount: Int) -> Schedule {
        var nodesOfDevice = [[Int32]](repeating: [], count: deviceCount)
        for u in units { nodesOfDevice[Int(deviceOfUnit[Int(u)])].append(contentsOf: pg.units[Int(u)].members) }
        return Schedule(nodesOfDevice: nodesOfDevice, transfers: transfers)
    }
}

/// How a greedy placer breaks ties between units that could start at the same moment: the unit
/// earlier in this order goes first.
///
/// m-ETF and m-SCT are very sensitive to it (on the GNMT profile one run can be 40% slower than
/// another that differs only here), which is why `PlacementSearch` tries many.
public enum TieBreak: Hashable, Sendable {
    /// The graph's topological order (Baechi's).
    case topological
    /// A uniformly random order drawn from the seed (SplitMix64, the same on every machine).
    case shuffled(seed: UInt64)
    /// An explicit order: the rank of every unit (a search's variation of a good order).
    case ranks([Int32])

    /// Rank of every unit of `pg` in this order.
    func priority(_ pg: PlacementGraph) -> [Int32] {
        switch self {
        case .topological:
            return pg.priority
        case .shuffled(let seed):
            var random = SplitMix64(seed: seed)
            var order = Array(0..<Int32(pg.unitCount))
            if order.count > 1 {
                for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.below(i + 1)) }
            }
            var rank = [Int32](repeating: 0, count: pg.unitCount)
            for (position, u) in order.enumerated() { rank[Int(u)] = Int32(position) }
            return rank
        case .ranks(let ranks):
            precondition(ranks.count == pg.unitCount)
            return ranks
        }
    }
}

/// A placer found no assignment within the memory limits.
public struct PlacementFailure: Error, CustomStringConvertible, Sendable {
    public var algorithm: Algorithm
    /// The op or group that did not fit, as it appears in messages (e.g. `op group "x" (12 ops)`).
    public var culprit: String?
    /// What happened, naming the culprit and the memory involved.
    public var reason: String

    public init(algorithm: Algorithm, culprit: String?, reason: String) {
        self.algorithm = algorithm
        self.culprit = culprit
        self.reason = reason
    }

    public var description: String { "\(algorithm.rawValue): \(reason)" }
}

/// A placement algorithm: assigns every unit of a placement graph to a device.
///
/// `limits[d]` is device `d`'s memory budget in bytes, as the placer models memory; the planner
/// checks every plan against the simulator's memory model afterwards. Placers must keep the units
/// of a colocation group on one device. Placers that never choose between equal candidates
/// (m-TOPO, expert, single) ignore `tieBreak`.
public protocol Placer: Sendable {
    var algorithm: Algorithm { get }
    func place(_ graph: PlacementGraph, limits: [Int], tieBreak: TieBreak) throws(PlacementFailure) -> UnitPlacement
}

extension Placer {
    /// The placement with Baechi's tie-break, the topological order.
    public func place(_ graph: PlacementGraph, limits: [Int]) throws(PlacementFailure) -> UnitPlacement {
        try place(graph, limits: limits, tieBreak: .topological)
    }
}
