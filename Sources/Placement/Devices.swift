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
