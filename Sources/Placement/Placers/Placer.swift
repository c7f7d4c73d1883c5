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
