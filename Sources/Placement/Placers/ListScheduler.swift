import Basics

/// The event-driven, memory-constrained list scheduler behind m-ETF and m-SCT.
///
/// It repeatedly starts the (unit, device) pair with the earliest start time, ties going to the
/// unit first in the tie-break order (`TieBreak`; by default the topological order), then the
/// lower device. A unit's start on a device is
/// max(now, device free, arrival of every input), where an input from another device arrives at
/// the end of its transfer (sent as the simulator does: sender channel, then receiver channel,
/// cached once received). A pair is only started if the device has room at that moment for the
/// unit's scratch memory, outputs and received inputs, plus its group's persistent memory when
/// the group is not on the device yet. Scratch memory is released when the unit ends, outputs
/// and received copies once every consumer has run; a unit that does not fit waits on that device
/// until memory is released there.
///
/// With favourite children (m-SCT): a device that just ran a unit whose favourite child is ready
/// and would start there no later than anywhere else reserves itself for that child; until the
/// child starts it only runs urgent units (those that would start no earlier on any other
/// device), and no other device takes the child.
///
/// It returns, with the placement, the order it started units in and booked transfers in
/// (`UnitOrder`): the plan runs in that order (`Simulator.replay`), so the step the planner reports
/// is the schedule this placer built, not a different one the simulator would make.
///
/// Instead of rescanning every ready unit at every step, each device keeps its ready units in two
/// heaps: by arrival time (inputs not yet there by the time the device is free) and by
/// topological rank (inputs already there). Keys are lower bounds refreshed when a unit reaches
/// the top, and a unit is pushed again when one of its inputs gets cached on a device.
struct ListScheduler {
    private let pg: PlacementGraph
    private let deviceCount: Int
    private let limits: [Int]
    private let favorite: [Int32]?
    private let algorithm: Algorithm
    /// Rank of each unit in the tie-break order.
    private let priority: [Int32]
    /// The link of every ordered pair of devices (`Links.table`), or nil when every pair has the same
    /// link: then every transfer takes its item's precomputed time (`pg.itemComm`).
    private let linkTable: [LinkModel]?

    private var clock = 0.0
    private var deviceFree: [Double]
    private var channelFree: [Double]
    private var used: [Int]
    private var unitDevice: [Int32]
    private var end: [Double]
    private var remainingPreds: [Int32]
    private var remainingConsumers: [Int32]
    private var maxConsumerEnd: [Double]
    private var receivedBytes: [Int]
    private var cache: [Double]
    private var groupDevice: [Int32]
    private var scheduled = 0
    private var newlyCached: [Int32] = []

    private enum State: UInt8 { case none, ready, blocked, deferred }
    private var state: [State]
    private var stamp: [Int32]
    private var pending: [KeyedHeap]
    private var arrived: [KeyedHeap]
    private var blocked: [KeyedHeap]
    private var deferred: [KeyedHeap]
    private var frees = KeyedHeap()
    private var freeBytes: [Int] = []
    private var freeSequence: Int64 = 0
    private var reservedFor: [Int32]
    private var reserver: [Int32]
    /// What was decided, in order: the units as they started, the transfers as they were booked.
    private var started: [Int32] = []
    private var booked: [ScheduledTransfer] = []

    init(_ pg: PlacementGraph, limits: [Int], favorite: [Int32]?, algorithm: Algorithm, tieBreak: TieBreak) {
        self.pg = pg
        self.priority = tieBreak.priority(pg)
        self.deviceCount = limits.count
        self.limits = limits
        self.favorite = favorite
        self.algorithm = algorithm
        let n = pg.unitCount, d = limits.count
        linkTable = pg.links.isUniform ? nil : pg.links.table(deviceCount: d)
        deviceFree = [Double](repeating: 0, count: d)
        channelFree = [Double](repeating: 0, count: d)
        used = [Int](repeating: 0, count: d)
        unitDevice = [Int32](repeating: -1, count: n)
        end = [Double](repeating: 0, count: n)
        remainingPreds = (0..<n).map { Int32(pg.inEdges.count($0)) }
        remainingConsumers = (0..<n).map { Int32(pg.outEdges.count($0)) }
        maxConsumerEnd = [Double](repeating: 0, count: n)
        receivedBytes = [Int](repeating: 0, count: n * d)
        cache = [Double](repeating: -1, count: pg.graph.tensorCount * d)
        groupDevice = [Int32](repeating: -1, count: pg.groupCount)
        state = [State](repeating: .none, count: n * d)
        stamp = [Int32](repeating: 0, count: n * d)
        pending = [KeyedHeap](repeating: KeyedHeap(), count: d)
        arrived = [KeyedHeap](repeating: KeyedHeap(), count: d)
        blocked = [KeyedHeap](repeating: KeyedHeap(), count: d)
        deferred = [KeyedHeap](repeating: KeyedHeap(), count: d)
        reservedFor = [Int32](repeating: -1, count: d)
        reserver = [Int32](repeating: -1, count: n)
    }

    // MARK: - Running

    mutating func run() throws(PlacementFailure) -> UnitPlacement {
        for u in pg.topologicalOrder where remainingPreds[Int(u)] == 0 { makeReady(Int(u)) }
        while scheduled < pg.unitCount {
            var best: (time: Double, unit: Int, device: Int)?
            for d in 0..<deviceCount {
                guard let candidate = candidate(d) else { continue }
                if let current = best {
                    let rank = priority[candidate.unit], bestRank = priority[current.unit]
                    if candidate.time < current.time || candidate.time == current.time && rank < bestRank {
                        best = (candidate.time, candidate.unit, d)
                    }
                } else {
                    best = (candidate.time, candidate.unit, d)
                }
            }
            if let next = frees.top, best == nil || next.key <= best!.time {
                releaseMemory(upTo: next.key)
                continue
            }
            guard let (time, u, d) = best else { throw stuck() }
            if used[d] + lowerNeed(u) + arrival(u, d).bytes > limits[d] {
                park(u, d, in: .blocked, key: Double(lowerNeed(u)))
                continue
            }
            commit(u, d, at: time)
        }
        return UnitPlacement(deviceOfUnit: unitDevice, predictedMakespanMicros: end.max() ?? 0,
                             order: UnitOrder(units: started, transfers: booked))
    }

    // MARK: - Costs

    /// Time of tensor item `item` sent from device `source` to device `target`.
    @inline(__always) private func comm(_ item: Int, from source: Int, to target: Int) -> Double {
        guard let linkTable else { return pg.itemComm[item] }
        return pg.graph.commMicros(ofEdge: Int(pg.itemEdge[item]), link: linkTable[source * deviceCount + target])
    }

    @inline(__always) private func allowed(_ u: Int, _ d: Int) -> Bool {
        let g = groupDevice[Int(pg.units[u].group)]
        return g < 0 || g == Int32(d)
    }

    /// Memory the unit needs on a device besides the inputs it receives there.
    @inline(__always) private func lowerNeed(_ u: Int) -> Int {
        let group = Int(pg.units[u].group)
        return pg.units[u].temporaryBytes + pg.units[u].outputBytes + pg.units[u].retainedBytes
            + (groupDevice[group] < 0 ? pg.groupPersistentBytes[group] : 0)
    }

    /// When every input of `u` would be on `d`, and how many bytes `d` would receive for it
    /// (transfers simulated on a scratch copy of the channels).
    private func arrival(_ u: Int, _ d: Int) -> (time: Double, bytes: Int) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: deviceCount) { channels in
            var time = 0.0, bytes = 0
            var copied = false
            for e in pg.inEdges[u] {
                let p = Int(pg.edgeSource[Int(e)])
                let source = Int(unitDevice[p])
                if source == d {
                    time = max(time, end[p])
                    continue
                }
                if !copied {
                    for c in 0..<deviceCount { channels[c] = channelFree[c] }
                    copied = true
                }
                for item in pg.items(ofEdge: Int(e)) {
                    let cached = cache[Int(pg.itemTensor[item]) * deviceCount + d]
                    if cached >= 0 {
                        time = max(time, cached)
                        continue
                    }
                    let finish = max(end[p], channels[source], channels[d]) + comm(item, from: source, to: d)
                    channels[source] = finish
                    channels[d] = finish
                    bytes += pg.itemBytes[item]
                    time = max(time, finish)
                }
            }
            return (time, bytes)
        }
    }

    /// Sends the inputs of `u` to `d` (as `arrival` predicts): channels, the cache and held bytes
    /// are updated. Returns the bytes `d` receives.
    private mutating func transferInputs(_ u: Int, _ d: Int) -> Int {
        var bytes = 0
        for e in pg.inEdges[u] {
            let p = Int(pg.edgeSource[Int(e)])
            let source = Int(unitDevice[p])
            if source == d { continue }
            for item in pg.items(ofEdge: Int(e)) {
                let slot = Int(pg.itemTensor[item]) * deviceCount + d
                if cache[slot] >= 0 { continue }
                let finish = max(end[p], channelFree[source], channelFree[d]) + comm(item, from: source, to: d)
                channelFree[source] = finish
                channelFree[d] = finish
                cache[slot] = finish
                booked.append(ScheduledTransfer(edge: pg.itemEdge[item], toDevice: Int32(d)))
                receivedBytes[p * deviceCount + d] += pg.itemBytes[item]
                newlyCached.append(pg.itemTensor[item])
                bytes += pg.itemBytes[item]
            }
        }
        return bytes
    }

    @inline(__always) private func earliestStart(_ u: Int, _ d: Int) -> Double {
        max(clock, deviceFree[d], arrival(u, d).time)
    }

    /// Whether `u` fits on `d` right now.
    @inline(__always) private func fits(_ u: Int, _ d: Int) -> Bool {
        used[d] + lowerNeed(u) + arrival(u, d).bytes <= limits[d]
    }

    // MARK: - Ready structures

    private mutating func makeReady(_ u: Int) {
        for d in 0..<deviceCount where allowed(u, d) { insert(u, d) }
    }

    /// (Re)enters `u` among `d`'s ready units, replacing any earlier entry.
    private mutating func insert(_ u: Int, _ d: Int) {
        let slot = u * deviceCount + d
        stamp[slot] &+= 1
        state[slot] = .ready
        pending[d].push(key: arrival(u, d).time, tie: Int64(priority[u]), value: Int32(u), stamp: stamp[slot])
    }

    /// Moves `u` off `d`'s ready heaps into the blocked or deferred heap.
    private mutating func park(_ u: Int, _ d: Int, in newState: State, key: Double) {
        let slot = u * deviceCount + d
        stamp[slot] &+= 1
        state[slot] = newState
        let heapEntryTie = Int64(priority[u])
        if newState == .blocked {
            blocked[d].push(key: key, tie: heapEntryTie, value: Int32(u), stamp: stamp[slot])
        } else {
            deferred[d].push(key: key, tie: heapEntryTie, value: Int32(u), stamp: stamp[slot])
        }
    }

    @inline(__always) private func valid(_ entry: KeyedEntry, _ d: Int) -> Bool {
        let u = Int(entry.value)
        return stamp[u * deviceCount + d] == entry.stamp && unitDevice[u] < 0 && allowed(u, d)
    }

    /// The next unit device `d` would start without reservations, and when.
    private mutating func plainCandidate(_ d: Int) -> (time: Double, unit: Int)? {
        let ready = max(clock, deviceFree[d])
        var skippedArrived: [KeyedEntry] = []
        var skippedPending: [KeyedEntry] = []
        defer {
            for entry in skippedArrived { arrived[d].push(key: entry.key, tie: entry.tie, value: entry.value, stamp: entry.stamp) }
            for entry in skippedPending { pending[d].push(key: entry.key, tie: entry.tie, value: entry.value, stamp: entry.stamp) }
        }
        while true {
            // Units whose inputs are there by the time the device is free start then, by rank.
            while let top = pending[d].top, top.key <= ready {
                pending[d].pop()
                guard valid(top, d) else { continue }
                let time = arrival(Int(top.value), d).time
                if time <= ready { arrived[d].push(key: 0, tie: top.tie, value: top.value, stamp: top.stamp) } else {
                    pending[d].push(key: time, tie: top.tie, value: top.value, stamp: top.stamp)
                }
            }
            while let top = arrived[d].top {
                guard valid(top, d) else { arrived[d].pop(); continue }
                let u = Int(top.value)
                let time = arrival(u, d).time
                if time > ready {
                    arrived[d].pop()
                    pending[d].push(key: time, tie: top.tie, value: top.value, stamp: top.stamp)
                    continue
                }
                if reservedElsewhere(u, d) {
                    skippedArrived.append(arrived[d].pop()!)
                    continue
                }
                return (ready, u)
            }
            // Otherwise the earliest arrival.
            var movedToArrived = false
            while let top = pending[d].top {
                guard valid(top, d) else { pending[d].pop(); continue }
                let u = Int(top.value)
                let time = arrival(u, d).time
                if time != top.key {
                    pending[d].pop()
                    if time <= ready {
                        arrived[d].push(key: 0, tie: top.tie, value: top.value, stamp: top.stamp)
                        movedToArrived = true
                        break
                    }
                    pending[d].push(key: time, tie: top.tie, value: top.value, stamp: top.stamp)
                    continue
                }
                if reservedElsewhere(u, d) {
                    skippedPending.append(pending[d].pop()!)
                    continue
                }
                return (time, u)
            }
            if !movedToArrived { return nil }
        }
    }

    /// The next unit device `d` would start, and when.
    private mutating func candidate(_ d: Int) -> (time: Double, unit: Int)? {
        guard favorite != nil else { return plainCandidate(d) }
        guard let (child, childTime) = activeReservation(d) else {
            // Not waiting for a favourite child: everything deferred here competes again.
            if !deferred[d].isEmpty {
                for entry in deferred[d].elements where valid(entry, d) && state[Int(entry.value) * deviceCount + d] == .deferred {
                    insert(Int(entry.value), d)
                }
                deferred[d].removeAll()
            }
            return plainCandidate(d)
        }
        let childRank = priority[child]
        func before(_ time: Double, _ unit: Int) -> Bool {
            time < childTime || time == childTime && priority[unit] < childRank
        }
        var best: (time: Double, unit: Int) = (childTime, child)
        // Units that would start here before the child may only do so when urgent.
        while let plain = plainCandidate(d), plain.unit != child, before(plain.time, plain.unit) {
            let urgent = urgentTime(plain.unit)
            if urgent <= plain.time {
                best = plain
                break
            }
            park(plain.unit, d, in: .deferred, key: urgent)
        }
        // Deferred units whose urgent time comes before the child's start.
        while let top = deferred[d].top {
            guard valid(top, d), state[Int(top.value) * deviceCount + d] == .deferred else { deferred[d].pop(); continue }
            let u = Int(top.value)
            let urgent = max(urgentTime(u), earliestStart(u, d))
            if urgent != top.key {
                deferred[d].pop()
                deferred[d].push(key: urgent, tie: top.tie, value: top.value, stamp: top.stamp)
                continue
            }
            if urgent < best.time || urgent == best.time && priority[u] < priority[best.unit] {
                best = (urgent, u)
            }
            break
        }
        return best
    }

    /// The favourite child device `d` is waiting for, and when it would start there, if `d` is waiting.
    private func activeReservation(_ d: Int) -> (Int, Double)? {
        let child = Int(reservedFor[d])
        guard child >= 0, unitDevice[child] < 0, remainingPreds[child] == 0, allowed(child, d),
              state[child * deviceCount + d] == .ready, fits(child, d) else { return nil }
        let here = earliestStart(child, d)
        for e in 0..<deviceCount where e != d && allowed(child, e) && earliestStart(child, e) < here { return nil }
        return (child, here)
    }

    /// Whether another device is waiting for `u` as its favourite child.
    @inline(__always) private func reservedElsewhere(_ u: Int, _ d: Int) -> Bool {
        let r = Int(reserver[u])
        guard r >= 0, r != d else { return false }
        return activeReservation(r)?.0 == u
    }

    /// The time from which `u` cannot start earlier anywhere: its latest start over the devices it fits on.
    private func urgentTime(_ u: Int) -> Double {
        var latest = -Double.infinity
        for e in 0..<deviceCount where allowed(u, e) && fits(u, e) { latest = max(latest, earliestStart(u, e)) }
        return latest == -.infinity ? .infinity : latest
    }

    // MARK: - Committing

    private mutating func commit(_ u: Int, _ d: Int, at time: Double) {
        clock = time
        let unit = pg.units[u]
        let group = Int(unit.group)
        if groupDevice[group] < 0 {
            groupDevice[group] = Int32(d)
            used[d] += pg.groupPersistentBytes[group]
        }
        newlyCached.removeAll(keepingCapacity: true)
        let received = transferInputs(u, d)
        unitDevice[u] = Int32(d)
        started.append(Int32(u))
        end[u] = time + unit.computeMicros
        deviceFree[d] = end[u]
        used[d] += unit.temporaryBytes + unit.outputBytes + unit.retainedBytes + received
        scheduled += 1
        if unit.temporaryBytes > 0 { scheduleRelease(at: end[u], device: d, bytes: unit.temporaryBytes) }
        for e in pg.inEdges[u] {
            let p = Int(pg.edgeSource[Int(e)])
            remainingConsumers[p] -= 1
            maxConsumerEnd[p] = max(maxConsumerEnd[p], end[u])
            if remainingConsumers[p] == 0 {
                scheduleRelease(at: maxConsumerEnd[p], device: Int(unitDevice[p]), bytes: pg.units[p].outputBytes)
                for c in 0..<deviceCount where receivedBytes[p * deviceCount + c] > 0 {
                    scheduleRelease(at: maxConsumerEnd[p], device: c, bytes: receivedBytes[p * deviceCount + c])
                }
            }
        }
        for e in pg.outEdges[u] {
            let v = Int(pg.edgeDestination[Int(e)])
            remainingPreds[v] -= 1
            if remainingPreds[v] == 0 { makeReady(v) }
        }
        // Inputs now cached here may let other ready units start earlier here (and elsewhere under m-SCT).
        for t in newlyCached {
            for v in pg.tensorConsumers[Int(t)] {
                let c = Int(v)
                guard c != u, remainingPreds[c] == 0, unitDevice[c] < 0 else { continue }
                if allowed(c, d) { insert(c, d) }
                if favorite != nil {
                    for e in 0..<deviceCount where e != d && state[c * deviceCount + e] == .deferred { insert(c, e) }
                }
            }
        }
        if let favorite {
            let old = Int(reservedFor[d])
            if old >= 0 && reserver[old] == Int32(d) { reserver[old] = -1 }
            let child = Int(favorite[u])
            if child >= 0 && unitDevice[child] < 0 && allowed(child, d) {
                reservedFor[d] = Int32(child)
                reserver[child] = Int32(d)
            } else {
                reservedFor[d] = -1
            }
        }
    }

    private mutating func scheduleRelease(at time: Double, device: Int, bytes: Int) {
        guard bytes > 0 else { return }
        freeBytes.append(bytes)
        freeSequence += 1
        frees.push(key: time, tie: freeSequence, value: Int32(device), stamp: Int32(freeBytes.count - 1))
    }

    /// Releases what is due at `time` and lets units blocked on those devices try again.
    private mutating func releaseMemory(upTo time: Double) {
        clock = max(clock, time)
        var touched = [Bool](repeating: false, count: deviceCount)
        while let top = frees.top, top.key <= time {
            frees.pop()
            used[Int(top.value)] -= freeBytes[Int(top.stamp)]
            touched[Int(top.value)] = true
        }
        for d in 0..<deviceCount where touched[d] {
            let room = limits[d] - used[d]
            while let top = blocked[d].top, top.key <= Double(room) {
                blocked[d].pop()
                let u = Int(top.value)
                if stamp[u * deviceCount + d] == top.stamp && unitDevice[u] < 0 && allowed(u, d) { insert(u, d) }
            }
        }
    }

    /// The failure when no unit can start anywhere and nothing more will be released.
    private mutating func stuck() -> PlacementFailure {
        var culprit = -1
        for d in 0..<deviceCount {
            for entry in blocked[d].elements where valid(entry, d) {
                let u = Int(entry.value)
                if culprit < 0 || priority[u] < priority[culprit] { culprit = u }
            }
        }
        if culprit < 0 {
            culprit = (0..<pg.unitCount).first { unitDevice[$0] < 0 && remainingPreds[$0] == 0 } ?? 0
        }
        var needs = [Int]()
        var free = [Int]()
        for d in 0..<deviceCount where allowed(culprit, d) {
            needs.append(lowerNeed(culprit) + arrival(culprit, d).bytes)
            free.append(limits[d] - used[d])
        }
        let group = Int(pg.units[culprit].group)
        let name = pg.groupUnits.count(group) > 1 && groupDevice[group] < 0 ? pg.describe(group: group) : pg.describe(unit: culprit)
        let where_ = groupDevice[group] >= 0 ? "on device \(groupDevice[group]), where its group already is," : "on any device"
        let reason = "\(name) did not fit: it needs \(Quantity.formatBytes(needs.min() ?? 0)) but at most \(Quantity.formatBytes(free.max() ?? 0)) is free \(where_) once everything placed before it holds its memory (\(scheduled) of \(pg.unitCount) units placed)"
        return PlacementFailure(algorithm: algorithm, culprit: name, reason: reason)
    }
}
