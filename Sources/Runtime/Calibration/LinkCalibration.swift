import Basics
import Foundation
import MPI
import Placement

/// Measures the link between every pair of ranks of a job: `fedbaechi calibrate --link`.
///
/// Pairs go one at a time (lower rank first, in the order (0,1), (0,2), ..., (1,2), ...), the other
/// ranks waiting at a barrier so that no other traffic shares the machine. For every message size the
/// lower rank sends the message and the higher rank sends it back, `roundTrips(forBytes:)` times per
/// sample after one unmeasured round trip; a sample is the elapsed time over twice the round trips (one
/// way), and a size's time is the median of `repeats` samples. Rank 0 gathers every pair's times and
/// fits each pair's link (`LinkFit`).
public enum LinkCalibration {
    /// 8 B to 16 MiB, each size eight times the one before.
    public static let defaultSizes = [8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 2 << 20, 16 << 20]

    /// Round trips per sample: enough that a sample of small messages lasts well beyond the clock's
    /// resolution, one for the largest.
    public static func roundTrips(forBytes bytes: Int) -> Int { min(1000, max(1, (4 << 20) / max(1, bytes))) }

    /// Every pair's fitted link on rank 0, nil on the other ranks. Every rank of `world` must call it
    /// with the same sizes and repeats.
    public static func measure(world: Communicator, sizes: [Int] = defaultSizes, repeats: Int = 9) throws -> MeasuredLinks? {
        precondition(world.size >= 2 && !sizes.isEmpty && repeats >= 1)
        let rank = world.rank, ranks = world.size
        let tag = MessageTags.World.linkCalibration
        let hosts = try world.processorNames()

        let largest = sizes.max()!
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: largest)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1)
        // This rank's measurements as the lower rank of a pair: the other rank, then a time per size.
        var mine = [Double]()
        for a in 0..<ranks {
            for b in (a + 1)..<ranks {
                try world.barrier()
                guard rank == a || rank == b else { continue }
                let peer = rank == a ? b : a
                if rank == a { mine.append(Double(b)) }
                for size in sizes {
                    let message = UnsafeMutableBufferPointer(rebasing: buffer[0..<size])
                    let trips = roundTrips(forBytes: size)
                    func roundTrip() throws {
                        if rank == a {
                            try world.send(UnsafeBufferPointer(message), to: peer, tag: tag)
                            _ = try world.receive(into: message, from: peer, tag: tag)
                        } else {
                            _ = try world.receive(into: message, from: peer, tag: tag)
                            try world.send(UnsafeBufferPointer(message), to: peer, tag: tag)
                        }
                    }
                    try roundTrip()
                    var samples = [Double]()
                    for _ in 0..<repeats {
                        let start = MPIEnvironment.wallTime()
                        for _ in 0..<trips { try roundTrip() }
                        samples.append((MPIEnvironment.wallTime() - start) / Double(2 * trips) * 1e6)
                    }
                    if rank == a { mine.append(median(samples)) }
                }
            }
        }
        guard let gathered = try world.gatherv(mine, root: 0) else { return nil }
        var pairs = [MeasuredLinks.Pair]()
        for (a, values) in gathered.enumerated() {
            let stride = 1 + sizes.count
            for start in Swift.stride(from: 0, to: values.count, by: stride) {
                let b = Int(values[start])
                let micros = Array(values[(start + 1)..<(start + stride)])
                let fit: LinkFit
                do { fit = try LinkFit.fit(bytes: sizes, micros: micros) } catch {
                    throw Refusal("ranks \(a) and \(b): \(error.description)", status: .runtime)
                }
                pairs.append(MeasuredLinks.Pair(ranks: [a, b], hosts: [hosts[a], hosts[b]], fit: fit,
                                                points: zip(sizes, micros).map { [Double($0), $1] }))
            }
        }
        return MeasuredLinks(hosts: hosts, pairs: pairs)
    }
}

extension LinkCalibration {
    /// What `calibrate --link` says when it is not run as an MPI job of at least two ranks.
    public static let needsRanks = "calibrate --link measures the links between the ranks of an MPI job: run it under a launcher with at least 2 ranks, e.g. `mpirun -np 2 fedbaechi calibrate --link --output links.json`"

    /// The whole job of `calibrate --link` on this rank: refuses to start outside an MPI job of at least
    /// two ranks, asks rank 0 `rootCheck` (say, whether it can write its output) and stops every rank
    /// alike when it answers, then measures. Rank 0 returns the links, the other ranks nil.
    public static func runJob(sizes: [Int], repeats: Int, rootCheck: () -> String?) throws -> MeasuredLinks? {
        guard MPIEnvironment.isUnderLauncher else { throw Refusal(needsRanks) }
        _ = try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        guard world.size >= 2 else { throw JobFailure(needsRanks, status: .badInput, everyRank: true) }
        let problem = world.rank == 0 ? rootCheck() : nil
        let verdict = try world.broadcastBytes(Array((problem ?? "").utf8), root: 0)
        if !verdict.isEmpty { throw JobFailure(String(decoding: verdict, as: UTF8.self), status: .badInput, everyRank: true) }
        return try measure(world: world, sizes: sizes, repeats: repeats)
    }
}
