import Basics
import Foundation

/// How the training examples are split among the sites. Federated learning is hard exactly when the
/// sites' data differ, so the non-IID schemes are the ones that matter; every scheme is seeded, and
/// every rank computes the same split from the labels alone, without communication.
public enum PartitionScheme: Sendable, Equatable, CustomStringConvertible {
    /// A seeded shuffle dealt out evenly.
    case iid
    /// For each class, the sites' shares drawn from Dirichlet(alpha): small alpha, few classes per site.
    case dirichlet(alpha: Double)
    /// Examples sorted by label and cut into `perSite` contiguous shards per site (McMahan et al.).
    case shards(perSite: Int)
    /// The data's own grouping (fortunes: one category file belongs to one site).
    case natural

    /// Parses `iid`, `dirichlet:0.5`, `shards:2` or `natural`.
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("iid", 1): self = .iid
        case ("natural", 1): self = .natural
        case ("dirichlet", 2):
            // Below 0.001 every site's share of a class is 0 or 1 in practice, and gamma draws underflow.
            guard let alpha = Double(parts[1]), alpha >= 0.001, alpha.isFinite, alpha <= 1e6 else { return nil }
            self = .dirichlet(alpha: alpha)
        case ("shards", 2):
            guard let count = Int(parts[1]), count >= 1, count <= 10_000 else { return nil }
            self = .shards(perSite: count)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .iid: "iid"
        case .dirichlet(let alpha): "dirichlet:\(alpha)"
        case .shards(let count): "shards:\(count)"
        case .natural: "natural"
        }
    }
}

public enum DataPartition {
    public struct Failure: UserFacingError {
        public let description: String
        public var exitStatus: ExitStatus { .badInput }
    }

    /// Indices of the examples each site holds (sorted), for examples with these class labels.
    /// Every site gets at least one example, or this throws.
    public static func split(labels: [Int], sites: Int, scheme: PartitionScheme, seed: UInt64) throws(Failure) -> [[Int]] {
        guard sites >= 1 else { throw Failure(description: "a partition needs at least one site") }
        guard labels.count >= sites else {
            throw Failure(description: "\(labels.count) training examples cannot be split among \(sites) sites")
        }
        var random = SplitMix64(seed: seed ^ 0x7061_7274_6974_696F)  // "partitio"
        var parts: [[Int]]
        switch scheme {
        case .iid:
            let order = shuffled(Array(labels.indices), &random)
            parts = (0..<sites).map { site in stride(from: site, to: order.count, by: sites).map { order[$0] } }
        case .shards(let perSite):
            let shardCount = sites * perSite
            guard labels.count >= shardCount else {
                throw Failure(description: "\(labels.count) examples cannot be cut into \(shardCount) shards (\(perSite) per site)")
            }
            // Ties between equal labels are broken by a seeded shuffle, so shards differ between seeds.
            let order = shuffled(Array(labels.indices), &random).enumerated()
                .sorted { (labels[$0.element], $0.offset) < (labels[$1.element], $1.offset) }.map(\.element)
            let shardOrder = shuffled(Array(0..<shardCount), &random)
            parts = (0..<sites).map { site in
                (0..<perSite).flatMap { k -> ArraySlice<Int> in
                    let shard = shardOrder[site * perSite + k]
                    return order[(shard * order.count / shardCount)..<((shard + 1) * order.count / shardCount)]
                }
            }
        case .dirichlet(let alpha):
            parts = try dirichlet(labels: labels, sites: sites, alpha: alpha, random: &random)
        case .natural:
            throw Failure(description: "the natural partition needs data with its own grouping (fortunes categories); "
                          + "use iid, dirichlet:ALPHA or shards:N")
        }
        if let empty = parts.firstIndex(where: \.isEmpty) {
            throw Failure(description: "site \(empty) got no training examples (\(labels.count) examples, \(sites) sites, \(scheme))")
        }
        return parts.map { $0.sorted() }
    }

    /// Whole groups (fortunes categories) dealt to sites so that their sizes are as even as possible:
    /// largest group first, each to the site holding the least so far. Returns the group indices per site.
    public static func assignGroups(sizes: [Int], sites: Int) throws(Failure) -> [[Int]] {
        guard sizes.count >= sites else {
            throw Failure(description: "the natural partition has \(sizes.count) groups, fewer than the \(sites) sites")
        }
        var load = [Int](repeating: 0, count: sites)
        var parts = [[Int]](repeating: [], count: sites)
        for group in sizes.indices.sorted(by: { (sizes[$0], $1) > (sizes[$1], $0) }) {
            let site = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            parts[site].append(group)
            load[site] += sizes[group]
        }
        return parts.map { $0.sorted() }
    }

    /// Per class, shares ~ Dirichlet(alpha); the usual construction resamples a split that leaves a site
    /// with fewer than `minimum` examples (up to a bounded number of tries).
    private static func dirichlet(labels: [Int], sites: Int, alpha: Double,
                                  random: inout SplitMix64) throws(Failure) -> [[Int]] {
        let classes = (labels.max() ?? 0) + 1
        var byClass = [[Int]](repeating: [], count: classes)
        for (index, label) in labels.enumerated() { byClass[label].append(index) }
        let minimum = min(10, labels.count / sites)
        draws: for _ in 0..<100 {
            var parts = [[Int]](repeating: [], count: sites)
            for members in byClass where !members.isEmpty {
                let order = shuffled(members, &random)
                let weights = (0..<sites).map { _ in gamma(shape: alpha, &random) }
                let total = weights.reduce(0, +)
                // A tiny alpha can make every draw underflow to 0: draw again rather than divide by it.
                guard total > 0, total.isFinite else { continue draws }
                var start = 0
                var cumulative = 0.0
                for site in 0..<sites {
                    cumulative += weights[site]
                    let end = site == sites - 1 ? order.count : min(order.count, Int((cumulative / total * Double(order.count)).rounded()))
                    parts[site] += order[start..<max(start, end)]
                    start = max(start, end)
                }
            }
            if parts.allSatisfy({ $0.count >= minimum }) { return parts }
        }
        throw Failure(description: "dirichlet:\(alpha) left some site with fewer than \(minimum) examples in 100 draws; "
                      + "use a larger alpha or fewer sites")
    }

    private static func shuffled(_ values: [Int], _ random: inout SplitMix64) -> [Int] {
        var values = values
        var i = values.count - 1
        while i > 0 {
            values.swapAt(i, Int(random.next() % UInt64(i + 1)))
            i -= 1
        }
        return values
    }

    private static func uniform(_ random: inout SplitMix64) -> Double {
        (Double(random.next() >> 11) + 0.5) * 0x1p-53  // in (0, 1)
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through Gamma(shape + 1) U^(1/shape).
    public static func gamma(shape: Double, _ random: inout SplitMix64) -> Double {
        if shape < 1 { return gamma(shape: shape + 1, &random) * pow(uniform(&random), 1 / shape) }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            // A standard normal by Box-Muller.
            let normal = (-2 * log(uniform(&random))).squareRoot() * cos(2 * Double.pi * uniform(&random))
            let v = pow(1 + c * normal, 3)
            guard v > 0 else { continue }
            let u = uniform(&random)
            if log(u) < 0.5 * normal * normal + d - d * v + d * log(v) { return d * v }
        }
    }
}
