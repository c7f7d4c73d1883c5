import Basics
import Foundation

/// A link fitted to measured transfer times: `time = latency + bytes / bandwidth` by least squares,
/// as Baechi fits its GPU link (a linear regression of transfer time on bytes).
///
/// The residuals are weighted by 1 / time², so the fit minimises relative errors: the sizes of a
/// calibration span six orders of magnitude (8 B to 16 MiB), and an unweighted fit would be set by the
/// largest messages alone and leave the latency, which decides small transfers, to chance (even
/// negative). A fit whose latency would be negative is refitted through zero latency.
public struct LinkFit: Sendable, Equatable {
    public var link: LinkModel
    /// 1 - (residual sum of squares / total sum of squares) of the times, unweighted: how much of the
    /// times' spread the line explains (1 is a perfect fit).
    public var rSquared: Double
    /// The largest |measured - fitted| / measured over the points.
    public var maxRelativeResidual: Double

    /// Why no line fits the points.
    public struct Failure: Error, CustomStringConvertible, Sendable, Equatable {
        public var description: String
    }

    /// The fit of one-way times `micros` measured for messages of `bytes`: at least two different sizes,
    /// every time positive and finite, and times that grow with size (else no bandwidth fits).
    public static func fit(bytes: [Int], micros: [Double]) throws(Failure) -> LinkFit {
        precondition(bytes.count == micros.count, "one time per size")
        guard Set(bytes).count >= 2 else { throw Failure(description: "a link needs times of at least two message sizes") }
        guard micros.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw Failure(description: "a measured time is not a positive number of microseconds")
        }
        let x = bytes.map(Double.init), y = micros
        let w = y.map { 1 / ($0 * $0) }
        let s = w.reduce(0, +)
        // Weighted means, then centred sums (better conditioned than raw sums over sizes up to 2^24).
        var xMean = 0.0, yMean = 0.0
        for i in x.indices {
            xMean += w[i] * x[i] / s
            yMean += w[i] * y[i] / s
        }
        var sxx = 0.0, sxy = 0.0
        for i in x.indices {
            sxx += w[i] * (x[i] - xMean) * (x[i] - xMean)
            sxy += w[i] * (x[i] - xMean) * (y[i] - yMean)
        }
        var slope = sxy / sxx
        var latency = yMean - slope * xMean
        if latency < 0 {
            // Through zero latency: the weighted least-squares slope of y = slope * x.
            latency = 0
            var wxy = 0.0, wxx = 0.0
            for i in x.indices {
                wxy += w[i] * x[i] * y[i]
                wxx += w[i] * x[i] * x[i]
            }
            slope = wxy / wxx
        }
        guard slope > 0 && slope.isFinite else {
            throw Failure(description: "the times do not grow with the message size, so no bandwidth fits them")
        }
        let link = LinkModel(bytesPerMicrosecond: 1 / slope, latencyMicros: latency)
        let mean = y.reduce(0, +) / Double(y.count)
        var residual = 0.0, total = 0.0, worst = 0.0
        for i in x.indices {
            let fitted = latency + x[i] * slope
            residual += (y[i] - fitted) * (y[i] - fitted)
            total += (y[i] - mean) * (y[i] - mean)
            worst = max(worst, abs(y[i] - fitted) / y[i])
        }
        return LinkFit(link: link, rSquared: total > 0 ? 1 - residual / total : 1, maxRelativeResidual: worst)
    }
}

/// The links between the ranks of a job as `fedbaechi calibrate --link` measured them: one fitted link
/// per pair of ranks, with the hosts the ranks ran on. The `"links"` object of a device file
/// (docs/formats.md); `train model-parallel --links FILE` places with it.
public struct MeasuredLinks: Codable, Sendable, Equatable {
    /// One pair of ranks, its fitted link and the points it was fitted to.
    public struct Pair: Codable, Sendable, Equatable {
        /// The two ranks, lower first.
        public var ranks: [Int]
        /// The hosts of the two ranks, in the order of `ranks`.
        public var hosts: [String]
        public var latencyMicros: Double
        public var bandwidthBytesPerSecond: Double
        public var rSquared: Double
        public var maxRelativeResidual: Double
        /// [bytes, median one-way microseconds] of each message size measured.
        public var points: [[Double]]

        enum CodingKeys: String, CodingKey {
            case ranks, hosts, points
            case latencyMicros = "latency_us", bandwidthBytesPerSecond = "bandwidth_bytes_per_second"
            case rSquared = "r_squared", maxRelativeResidual = "max_relative_residual"
        }

        public init(ranks: [Int], hosts: [String], fit: LinkFit, points: [[Double]]) {
            self.ranks = ranks
            self.hosts = hosts
            latencyMicros = fit.link.latencyMicros
            bandwidthBytesPerSecond = fit.link.bytesPerSecond
            rSquared = fit.rSquared
            maxRelativeResidual = fit.maxRelativeResidual
            self.points = points
        }

        public var link: LinkModel { LinkModel(bytesPerSecond: bandwidthBytesPerSecond, latencyMicros: latencyMicros) }
    }

    /// Ranks of the job measured.
    public var rankCount: Int
    /// The host of every rank, by rank.
    public var hosts: [String]
    /// Every pair of ranks once, in order (0,1), (0,2), ..., (1,2), ...
    public var pairs: [Pair]

    enum CodingKeys: String, CodingKey {
        case rankCount = "ranks", hosts, pairs
    }

    public init(hosts: [String], pairs: [Pair]) {
        rankCount = hosts.count
        self.hosts = hosts
        self.pairs = pairs
    }

    /// The links between devices, device i being rank i. A pair the file does not list (none, once
    /// `validate` passed) would get the slowest measured link.
    public var links: Links {
        var byPair = [DevicePair: LinkModel]()
        for pair in pairs { byPair[DevicePair(pair.ranks[0], pair.ranks[1])] = pair.link }
        let measured = Links(standard: pairs.first?.link ?? LinkModel(bytesPerSecond: 1, latencyMicros: 0), pairs: byPair)
        return Links(standard: measured.slowest, pairs: byPair)
    }

    /// Why these links cannot be used, or nil: every pair of ranks once, hosts that agree, and links
    /// with a latency of at least 0 and a positive bandwidth.
    public func problem() -> String? {
        guard rankCount >= 2 && rankCount <= 1 << 16 else { return "\"ranks\" must be between 2 and 65536, it is \(rankCount)" }
        guard hosts.count == rankCount else { return "\"hosts\" names \(hosts.count) hosts for \(rankCount) ranks" }
        var seen = Set<DevicePair>()
        for (k, pair) in pairs.enumerated() {
            guard pair.ranks.count == 2, pair.hosts.count == 2 else { return "pair \(k) must name two ranks and their two hosts" }
            let (a, b) = (pair.ranks[0], pair.ranks[1])
            guard a >= 0 && b < rankCount && a < b else { return "pair \(k) names ranks \(a) and \(b): they must be two ranks below \(rankCount), lower first" }
            guard pair.hosts == [hosts[a], hosts[b]] else {
                return "pair \(k) (ranks \(a), \(b)) names hosts \(pair.hosts.map { MessageText.quoted($0) }.joined(separator: ", ")), \"hosts\" says \(MessageText.quoted(hosts[a])), \(MessageText.quoted(hosts[b]))"
            }
            guard pair.latencyMicros.isFinite && pair.latencyMicros >= 0 && pair.latencyMicros <= 1e7 else {
                return "pair \(k) (ranks \(a), \(b)) has a latency of \(pair.latencyMicros) us; it must be between 0 and 10 s"
            }
            guard pair.bandwidthBytesPerSecond.isFinite && pair.bandwidthBytesPerSecond >= 1 else {
                return "pair \(k) (ranks \(a), \(b)) has a bandwidth of \(pair.bandwidthBytesPerSecond) bytes/s; it must be at least 1"
            }
            guard seen.insert(DevicePair(a, b)).inserted else { return "ranks \(a) and \(b) are listed twice" }
        }
        let expected = rankCount * (rankCount - 1) / 2
        guard seen.count == expected else {
            let missing = (0..<rankCount).lazy.flatMap { a in (a + 1..<rankCount).lazy.map { (a, $0) } }.first { !seen.contains(DevicePair($0.0, $0.1)) }!
            return "the file measures \(seen.count) of the \(expected) pairs of \(rankCount) ranks (ranks \(missing.0) and \(missing.1) are missing)"
        }
        return nil
    }

    /// The file's `"links"` object: what `calibrate --link` wrote. Errors name the file and what is wrong.
    public static func read(path: String) throws(Refusal) -> MeasuredLinks {
        let expected = "a device file with a \"links\" object, as `fedbaechi calibrate --link` writes"
        if let problem = FileProblem.unreadable(path) { throw Refusal("cannot read \(path): \(problem) (expected \(expected))") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= 64 << 20 else { throw Refusal("\(path) is \(Quantity.formatBytes(size)); a device file is at most 64 MiB") }
        struct File: Decodable { var links: MeasuredLinks? }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw Refusal(FileProblem.describe(error, path: path, expected: expected))
        }
        guard let links = file.links else { throw Refusal("\(path) has no \"links\" object (expected \(expected))") }
        if let problem = links.problem() { throw Refusal("\(path): \(problem)") }
        return links
    }
}
