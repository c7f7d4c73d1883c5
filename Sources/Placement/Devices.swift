// Devices, the link between them, and the units people write them in.

/// Communication cost of `b` bytes between two different devices: `latency + b / bandwidth`.
public struct LinkModel: Sendable, Hashable {
    /// Bytes per microsecond.
    public var bytesPerMicrosecond: Double
    public var latencyMicros: Double

    /// Baechi's fit on GPUs: `0.0001754 us/B * b + 134 us` (about 5.7 GB/s).
    public static let baechi = LinkModel(bytesPerMicrosecond: 1 / 0.0001754, latencyMicros: 134)

    public init(bytesPerMicrosecond: Double, latencyMicros: Double) {
        self.bytesPerMicrosecond = bytesPerMicrosecond
        self.latencyMicros = latencyMicros
    }

    public init(bytesPerSecond: Double, latencyMicros: Double) {
        self.init(bytesPerMicrosecond: bytesPerSecond / 1e6, latencyMicros: latencyMicros)
    }

    public var bytesPerSecond: Double { bytesPerMicrosecond * 1e6 }

    @inline(__always) public func micros(forBytes bytes: Int) -> Double {
        latencyMicros + Double(bytes) / bytesPerMicrosecond
    }
}

/// One device a graph is placed on.
public struct DeviceSpec: Sendable, Hashable {
    public var name: String
    public var memoryBytes: Int

    public init(name: String, memoryBytes: Int) {
        self.name = name
        self.memoryBytes = memoryBytes
    }

    /// `count` identical devices named `device0`, `device1`, ...
    public static func uniform(count: Int, memoryBytes: Int) -> [DeviceSpec] {
        (0..<count).map { DeviceSpec(name: "device\($0)", memoryBytes: memoryBytes) }
    }
}

/// Two devices a link joins, in either order: a link's cost is the same both ways (a ping-pong
/// measures the round trip, so it cannot tell the directions apart).
public struct DevicePair: Sendable, Hashable, Codable {
    public let low: Int
    public let high: Int

    public init(_ a: Int, _ b: Int) {
        precondition(a != b && a >= 0 && b >= 0, "a link joins two different devices")
        low = min(a, b)
        high = max(a, b)
    }
}

/// The links between devices: one `LinkModel` for every pair of devices, unless a pair has its own
/// (ranks on one host talk through shared memory, ranks on two hosts through a network).
///
/// Placement costs a transfer between two known devices with their pair's link (`between`); where an
/// algorithm needs one figure for every pair, it takes `slowest` (see there).
public struct Links: Sendable, Hashable {
    /// The link of every pair that has none of its own.
    public var standard: LinkModel
    /// Pairs with a link of their own.
    public private(set) var pairs: [DevicePair: LinkModel]

    /// The same link between every pair of devices.
    public init(_ link: LinkModel) {
        standard = link
        pairs = [:]
    }

    public init(standard: LinkModel, pairs: [DevicePair: LinkModel]) {
        self.standard = standard
        self.pairs = pairs.filter { $0.value != standard }
    }

    /// Whether every pair has the standard link.
    public var isUniform: Bool { pairs.isEmpty }

    /// The link between devices `a` and `b` (`a != b`).
    @inline(__always) public func between(_ a: Int, _ b: Int) -> LinkModel {
        isUniform ? standard : pairs[DevicePair(a, b)] ?? standard
    }

    /// `between` for every ordered pair of `deviceCount` devices, row by row (`[a * deviceCount + b]`;
    /// the diagonal holds the standard link, never used: a device does not send to itself).
    public func table(deviceCount: Int) -> [LinkModel] {
        var table = [LinkModel](repeating: standard, count: deviceCount * deviceCount)
        for (pair, link) in pairs where pair.high < deviceCount {
            table[pair.low * deviceCount + pair.high] = link
            table[pair.high * deviceCount + pair.low] = link
        }
        return table
    }

    /// One link no pair is slower than, for the figures that must not depend on devices: the highest
    /// latency and the lowest bandwidth of the standard link and every pair's. It costs any transfer at
    /// least what its slowest pair would, so a choice made on it (keeping two units together because
    /// their transfer is expensive, the favourite children of m-SCT's linear program) holds wherever
    /// the units land; with uniform links it is the link itself.
    public var slowest: LinkModel {
        var slowest = standard
        for link in pairs.values {
            slowest.latencyMicros = max(slowest.latencyMicros, link.latencyMicros)
            slowest.bytesPerMicrosecond = min(slowest.bytesPerMicrosecond, link.bytesPerMicrosecond)
        }
        return slowest
    }
}
