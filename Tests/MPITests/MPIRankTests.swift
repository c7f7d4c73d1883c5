import Foundation
import MPI
import TestSupport
import Testing

/// The MPI layer under a real `mpirun`, at whatever rank count the launcher gave.
///
/// Every rank must call the same collectives in the same order, so the checks run as ONE test
/// whose scenarios follow each other in a fixed order, separated by barriers. A failed
/// expectation does not stop the sequence (no rank is left waiting); a thrown error aborts the job.
@Suite(.serialized, .onlyUnderMPILauncher,
       .disabled(if: abortScenario != nil, "this mpirun job is AbortTests' abort scenario"))
struct MPIRankTests {
    @Test func conformance() throws {
        try MPIEnvironment.initialize()
        let world = try MPIEnvironment.world()
        #expect(world.size >= 1)
        #expect(MPIEnvironment.threadLevel! >= .serialized)

        onEveryRank("point-to-point sizes") { world in try pointToPointSizes(world) }
        onEveryRank("typed elements") { world in try typedElements(world) }
        onEveryRank("nonblocking rings") { world in try nonblockingRings(world) }
        onEveryRank("tags") { world in try tagsKeepMessagesApart(world) }
        onEveryRank("probe") { world in try probeReportsSizes(world) }
        onEveryRank("collectives on world") { world in try collectives(on: world) }
        onEveryRank("sub-communicators") { world in try subCommunicators(world) }
        onEveryRank("disjoint traffic") { world in try disjointSubCommunicatorsAtOnce(world) }
        onEveryRank("bad calls") { world in try badCallsThrow(world) }
    }

    /// 0 B to 64 MiB around a ring, byte for byte.
    func pointToPointSizes(_ world: Communicator) throws {
        guard world.size > 1 else { return }
        let next = (world.rank + 1) % world.size
        let previous = (world.rank + world.size - 1) % world.size
        var sizes = [0, 1, 7, 1024, 65_536, 1 << 20]
        sizes.append(64 << 20)
        for (index, size) in sizes.enumerated() {
            let outgoing = pattern(count: size, source: world.rank, salt: index)
            // Even ranks send first; odd ranks receive first: no deadlock for any ring size.
            var incoming: [UInt8] = []
            if world.rank % 2 == 0 {
                try world.send(outgoing, to: next, tag: index)
                incoming = try world.receive(UInt8.self, count: size, from: previous, tag: index)
            } else {
                incoming = try world.receive(UInt8.self, count: size, from: previous, tag: index)
                try world.send(outgoing, to: next, tag: index)
            }
            #expect(incoming.count == size, "size \(size)")
            let matches = sameBytes(incoming, pattern(count: size, source: previous, salt: index))
            #expect(matches, "content of \(size) bytes from \(previous)")
        }
    }

    func typedElements(_ world: Communicator) throws {
        guard world.size > 1 else { return }
        if world.rank == 0 {
            try world.send([Float(1.5), -2.25, .greatestFiniteMagnitude], to: 1, tag: 1)
            try world.send([Double.pi, -0.0, 1e-300], to: 1, tag: 2)
            try world.send([Int32.min, 0, Int32.max], to: 1, tag: 3)
            try world.send([Int64.min, 42, Int64.max], to: 1, tag: 4)
        } else if world.rank == 1 {
            #expect(try world.receive(Float.self, from: 0, tag: 1) == [1.5, -2.25, .greatestFiniteMagnitude])
            let doubles = try world.receive(Double.self, from: 0, tag: 2)
            #expect(doubles.map(\.bitPattern) == [Double.pi, -0.0, 1e-300].map(\.bitPattern))
            #expect(try world.receive(Int32.self, from: 0, tag: 3) == [Int32.min, 0, Int32.max])
            #expect(try world.receive(Int64.self, from: 0, tag: 4) == [Int64.min, 42, Int64.max])
        }
    }

    /// Every rank posts receives from both neighbours and sends to both, all nonblocking.
    func nonblockingRings(_ world: Communicator) throws {
        let next = (world.rank + 1) % world.size
        let previous = (world.rank + world.size - 1) % world.size
        for size in [0, 3, 100_000] {
            let fromPrevious = try world.receiveAsync(Double.self, count: size, from: previous, tag: 10)
            let fromNext = try world.receiveAsync(Double.self, count: size, from: next, tag: 11)
            let mine = (0..<size).map { Double(world.rank * 1_000_000 + $0) }
            let sends = [try world.sendAsync(mine, to: next, tag: 10), try world.sendAsync(mine, to: previous, tag: 11)]
            try Request.waitAll(sends + [fromPrevious.request])
            #expect(try fromPrevious.wait() == (0..<size).map { Double(previous * 1_000_000 + $0) })
            // test() eventually reports completion of the other direction.
            var status = try fromNext.request.test()
            while status == nil { status = try fromNext.request.test() }
            #expect(status?.source == next)
            #expect(status?.count(of: Double.self) == size)
            #expect(try fromNext.wait() == (0..<size).map { Double(next * 1_000_000 + $0) })
        }
    }

    /// Messages with different tags arrive where asked, whatever the order they were sent in.
    func tagsKeepMessagesApart(_ world: Communicator) throws {
        guard world.size > 1 else { return }
        if world.rank == 0 {
            for tag in [5, 6, 7] { try world.send([Int32(tag * 100)], to: 1, tag: tag) }
        } else if world.rank == 1 {
            #expect(try world.receive(Int32.self, count: 1, from: 0, tag: 7) == [700])
            #expect(try world.receive(Int32.self, count: 1, from: 0, tag: 5) == [500])
            #expect(try world.receive(Int32.self, count: 1, from: 0, tag: 6) == [600])
        }
    }

    func probeReportsSizes(_ world: Communicator) throws {
        guard world.size > 1 else { return }
        if world.rank != 0 {
            try world.send([Float](repeating: 1, count: 17 * world.rank), to: 0, tag: 20)
        } else {
            var seen: [Int: Int] = [:]
            for _ in 1..<world.size {
                let status = try world.probe(tag: 20)
                seen[status.source] = status.count(of: Float.self)
                #expect(status.byteCount == 17 * status.source * 4)
                _ = try world.receive(Float.self, count: status.count(of: Float.self), from: status.source, tag: 20)
            }
            #expect(seen == Dictionary(uniqueKeysWithValues: (1..<world.size).map { ($0, 17 * $0) }))
            #expect(try world.probeIfAvailable(tag: 20) == nil)
        }
    }

    /// Broadcast, allreduce, allgather(v), gatherv and scatterv against values computed serially.
    func collectives(on comm: Communicator) throws {
        let n = comm.size
        let r = comm.rank
        for root in (n > 1 ? [0, n - 1] : [0]) {
            var data = r == root ? (0..<1000).map { Double($0) * 0.5 + Double(root) } : []
            try comm.broadcast(&data, root: root)
            let matches = data == (0..<1000).map { Double($0) * 0.5 + Double(root) }
            #expect(matches, "broadcast from root \(root)")
        }
        var sums = (0..<5).map { Int64(r * 10 + $0) }
        try comm.allreduce(&sums, .sum)
        let rankSum = Int64(n * (n - 1) / 2)
        let expectedSums: [Int64] = (0..<5).map { (k: Int) -> Int64 in rankSum * 10 + Int64(n * k) }
        #expect(sums == expectedSums)
        #expect(try comm.allreduce(Float(r), .max) == Float(n - 1))
        #expect(try comm.allreduce(Int32(r + 3), .min) == 3)
        #expect(try comm.allgather([Int32(r), Int32(-r)]) == (0..<n).flatMap { [Int32($0), Int32(-$0)] })
        let ragged = try comm.allgatherv([Double](repeating: Double(r), count: r))
        #expect(ragged == (0..<n).map { [Double](repeating: Double($0), count: $0) })
        let gathered = try comm.gatherv(Array(0...r), root: n - 1)
        if r == n - 1 { #expect(gathered == (0..<n).map { Array(0...$0) }) } else { #expect(gathered == nil) }
        let chunks = r == 0 ? (0..<n).map { rank in (0..<(rank + 2)).map { Float(rank * 100 + $0) } } : []
        #expect(try comm.scatterv(chunks, root: 0) == (0..<(r + 2)).map { Float(r * 100 + $0) })
    }

    /// Groups built from lists of world ranks, the way the federated mode builds its design groups.
    func subCommunicators(_ world: Communicator) throws {
        // Consecutive pairs (and one triple or single when the size is odd).
        let groupSize = 2
        let groupIndex = world.rank / groupSize
        let members = Array((groupIndex * groupSize)..<min(world.size, (groupIndex + 1) * groupSize))
        let group = try world.subcommunicator(ranks: members, tag: groupIndex)
        #expect(group.size == members.count)
        #expect(group.worldRanks == members)
        #expect(group.worldRanks[group.rank] == world.rank)
        try collectives(on: group)
        #expect(try group.allreduce(world.rank, .sum) == members.reduce(0, +))
        try group.free()

        // A reversed order of ranks: rank numbers inside follow the list, not the world.
        let reversed = Array((0..<world.size).reversed())
        let all = try world.subcommunicator(ranks: reversed)
        #expect(all.rank == world.size - 1 - world.rank)
        #expect(all.worldRanks == reversed)
        try all.free()

        // split with nil leaves a rank out.
        let evens = try world.split(color: world.rank % 2 == 0 ? 0 : nil, key: world.rank)
        #expect((evens != nil) == (world.rank % 2 == 0))
        if let evens {
            #expect(evens.size == (world.size + 1) / 2)
            try evens.free()
        }
    }

    /// Evens and odds each run rings and reductions on their own communicator at the same time.
    func disjointSubCommunicatorsAtOnce(_ world: Communicator) throws {
        let color = world.rank % 2
        guard let half = try world.split(color: color, key: world.rank) else { return }
        let next = (half.rank + 1) % half.size
        let previous = (half.rank + half.size - 1) % half.size
        for round in 0..<20 {
            let incoming = try half.receiveAsync(Int64.self, count: 1000, from: previous, tag: round)
            let send = try half.sendAsync([Int64](repeating: Int64(half.worldRanks[half.rank] * 1000 + round), count: 1000), to: next, tag: round)
            try send.wait()
            #expect(try incoming.wait() == [Int64](repeating: Int64(half.worldRanks[previous] * 1000 + round), count: 1000))
            let total = try half.allreduce(Int64(world.rank), .sum)
            #expect(total == Int64(stride(from: color, to: world.size, by: 2).reduce(0, +)))
        }
        try half.free()
    }

    /// Bad arguments come back as Swift errors carrying MPI's own message; the job goes on.
    func badCallsThrow(_ world: Communicator) throws {
        do {
            _ = try world.receive(Int32.self, count: 1, from: world.size + 3, tag: 0)
            Issue.record("receiving from a rank that does not exist did not throw")
        } catch {
            #expect(error.function == "MPI_Recv")
            #expect(error.errorClass == .rank, "\(error)")
            #expect(!error.message.isEmpty)
            #expect(error.message.lowercased().contains("rank"), "message: \(error.message)")
        }
        do {
            _ = try world.subcommunicator(ranks: [0, world.size])
            Issue.record("a group with a rank outside the communicator did not throw")
        } catch {
            #expect(error.errorClass == .rank, "\(error)")
            #expect(error.message.contains("\(world.size)"))
        }
        // Each named class is one MPI knows, and its own class (the standard makes every class a code of it).
        for entry in MPIErrorClass.named {
            #expect(MPIErrorClass(code: entry.errorClass.rawValue) == entry.errorClass, "\(entry.name)")
            #expect(!MPIError(code: entry.errorClass.rawValue, function: "test").message.hasPrefix("MPI error code"), "\(entry.name)")
        }
        // A message longer than the receive buffer: MPI's own class for it.
        if world.size > 1 {
            if world.rank == 0 {
                try world.send([Int32](repeating: 7, count: 3), to: 1, tag: 55)
            } else if world.rank == 1 {
                do {
                    _ = try world.receive(Int32.self, count: 1, from: 0, tag: 55)
                    Issue.record("receiving 3 values into room for 1 did not throw")
                } catch {
                    #expect(error.errorClass == .truncate, "\(error)")
                }
            }
        }
        // The world still works after the errors.
        #expect(try world.allreduce(1, .sum) == world.size)
    }
}
