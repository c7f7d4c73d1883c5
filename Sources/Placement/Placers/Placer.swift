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

    public init(deviceOfUnit: [Int32], predictedMakespanMicros: Double? = nil) {
        self.deviceOfUnit = deviceOfUnit
        self.predictedMakespanMicros = predictedMakespanMicros
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
/// of a colocation group on one device.
public protocol Placer: Sendable {
    var algorithm: Algorithm { get }
    func place(_ graph: PlacementGraph, limits: [Int]) throws(PlacementFailure) -> UnitPlacement
}

/// An upper bound on a device's memory at every instant of any schedule, as units are added:
/// the persistent memory and every output of its nodes, every distinct tensor it receives, and
/// the largest scratch memory of its nodes, all as if alive at once.
///
/// Because it does not depend on the schedule, a plan that respects it respects the simulator's
/// memory model too; and it only grows as units are added, which keeps first-fit placers monotone
/// in memory.
struct StaticFootprint {
    let pg: PlacementGraph
    private(set) var deviceOfNode: [Int32]
    private var base: [Int]
    private var maxTemporary: [Int]
    private var received: [[Int32: Int]]
    private var receivedBytes: [Int]
    private var nodeMark: [Int32]
    private var tensorMark: [Int32]
    private var generation: Int32 = 0

    init(_ pg: PlacementGraph, deviceCount: Int) {
        self.pg = pg
        deviceOfNode = [Int32](repeating: -1, count: pg.graph.nodes.count)
        base = [Int](repeating: 0, count: deviceCount)
        maxTemporary = [Int](repeating: 0, count: deviceCount)
        received = [[Int32: Int]](repeating: [:], count: deviceCount)
        receivedBytes = [Int](repeating: 0, count: deviceCount)
        nodeMark = [Int32](repeating: 0, count: pg.graph.nodes.count)
        tensorMark = [Int32](repeating: 0, count: pg.graph.tensorCount)
    }

    func total(_ d: Int) -> Int { base[d] + maxTemporary[d] + receivedBytes[d] }
    func isEmpty(_ d: Int) -> Bool { base[d] == 0 && maxTemporary[d] == 0 && receivedBytes[d] == 0 }

    /// The bound on device `d` if `units` joined it.
    mutating func totalIfAdded(_ units: some Collection<Int32>, to d: Int) -> Int {
        let delta = change(units, d, apply: false)
        return base[d] + delta.base + max(maxTemporary[d], delta.temporary) + receivedBytes[d] + delta.received
    }

    mutating func add(_ units: some Collection<Int32>, to d: Int) {
        let delta = change(units, d, apply: true)
        base[d] += delta.base
        maxTemporary[d] = max(maxTemporary[d], delta.temporary)
        receivedBytes[d] += delta.received
    }

    private mutating func change(_ units: some Collection<Int32>, _ d: Int, apply: Bool) -> (base: Int, temporary: Int, received: Int) {
        let graph = pg.graph
        generation &+= 1
        let g = generation
        var addBase = 0, temporary = 0, receive = 0
        for u in units {
            for m in pg.units[Int(u)].members {
                nodeMark[Int(m)] = g
                addBase += graph.nodes[Int(m)].persistentBytes + graph.nodes[Int(m)].outputBytes.reduce(0, +)
                temporary = max(temporary, graph.nodes[Int(m)].temporaryBytes)
            }
        }
        for u in units {
            for m in pg.units[Int(u)].members {
                // Tensors this node produces that the device was receiving: now local.
                for t in graph.tensorBase[Int(m)]..<graph.tensorBase[Int(m) + 1] {
                    if let bytes = received[d][t] {
                        receive -= bytes
                        if apply { received[d][t] = nil }
                    }
                }
                for e in graph.inEdges[Int(m)] {
                    let source = graph.edges[Int(e)].source
                    if nodeMark[source] == g || deviceOfNode[source] == Int32(d) { continue }
                    let t = graph.tensorOfEdge[Int(e)]
                    if tensorMark[Int(t)] == g || received[d][t] != nil { continue }
                    tensorMark[Int(t)] = g
                    let bytes = graph.transferBytes(ofEdge: Int(e))
                    receive += bytes
                    if apply { received[d][t] = bytes }
                }
            }
        }
        if apply {
            for u in units { for m in pg.units[Int(u)].members { deviceOfNode[Int(m)] = Int32(d) } }
        }
        return (addBase, temporary, receive)
    }
}
