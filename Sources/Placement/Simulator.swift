/// One tensor sent between two devices.
public struct Transfer: Sendable, Hashable {
    /// The edge whose consumer triggered the send (the first consumer on the receiving device).
    public var edge: Int32
    public var tensor: Int32
    public var fromDevice: Int32
    public var toDevice: Int32
    /// When the receiving side's channel starts (the sender's may have started earlier).
    public var startMicros: Double
    public var endMicros: Double
    public var bytes: Int
}

/// A simulated step: when each node runs, what is sent, and how much memory each device holds.
public struct SimulationResult: Sendable {
    public let deviceCount: Int
    public let deviceOfNode: [Int32]
    public let startMicros: [Double]
    public let endMicros: [Double]
    public let makespanMicros: Double
    /// Every tensor sent, in the order the link channels carry them.
    public let transfers: [Transfer]
    /// Each device's nodes in the order it runs them.
    public let nodesOfDevice: [[Int32]]
    /// Highest memory use of each device at any instant of the step.
    public let peakMemoryBytes: [Int]
    /// When each device's peak happens, and the node whose allocation reached it (-1 if persistent memory alone).
    public let peakTimeMicros: [Double]
    public let peakNode: [Int32]
    /// Memory that stays on the device all step (parameters).
    public let persistentBytes: [Int]
    /// Time each device spends computing.
    public let busyMicros: [Double]

    /// The nodes of device `d` in the order they run (the order a rank executes them in).
    public func order(ofDevice d: Int) -> [Int32] { nodesOfDevice[d] }

    /// The order of this step, to replay it (`Simulator.replay`) or to write it down.
    public var schedule: Schedule {
        Schedule(nodesOfDevice: nodesOfDevice, transfers: transfers.map { ScheduledTransfer(edge: $0.edge, toDevice: $0.toDevice) })
    }

    init(graph: Graph, deviceOfNode: [Int32], deviceCount: Int, start: [Double], end: [Double],
         transfers: [Transfer], nodesOfDevice: [[Int32]]) {
        var busy = [Double](repeating: 0, count: deviceCount)
        for i in 0..<graph.nodes.count { busy[Int(deviceOfNode[i])] += graph.nodes[i].computeMicros }
        let memory = MemoryProfile(graph: graph, deviceOfNode: deviceOfNode, deviceCount: deviceCount, start: start, end: end,
                                   transfers: transfers)
        self.deviceCount = deviceCount
        self.deviceOfNode = deviceOfNode
        startMicros = start
        endMicros = end
        makespanMicros = end.max() ?? 0
        self.transfers = transfers
        self.nodesOfDevice = nodesOfDevice
        peakMemoryBytes = memory.peak
        peakTimeMicros = memory.peakTime
        peakNode = memory.peakNode
        persistentBytes = memory.persistent
        busyMicros = busy
    }
}

/// The order a step runs in, apart from its times: each device's nodes in the order it runs
/// them, and the tensors sent in the order the link channels carry them. Together with a
/// placement it fixes the step (`Simulator.replay`): every node and transfer starts as soon as
/// its device, its channels and its inputs allow.
public struct Schedule: Sendable, Equatable {
    public var nodesOfDevice: [[Int32]]
    public var transfers: [ScheduledTransfer]

    public init(nodesOfDevice: [[Int32]], transfers: [ScheduledTransfer]) {
        self.nodesOfDevice = nodesOfDevice
        self.transfers = transfers
    }
}

/// One tensor sent to one device; it leaves from its producer's device. The tensor is the one
/// `edge` carries, and the transfer takes that edge's communication time (edges of one tensor may
/// state different times: a transfer takes the time of the consumer it was first sent for).
public struct ScheduledTransfer: Sendable, Hashable {
    public var edge: Int32
    public var toDevice: Int32

    public init(edge: Int32, toDevice: Int32) {
        self.edge = edge
        self.toDevice = toDevice
    }
}

/// Why a schedule cannot be replayed on a placement, in one line.
public struct ScheduleError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Baechi's step-time simulator (the reference digest's semantics, exactly):
///
/// - A global queue ordered by (ready time, topological rank). Each popped node starts at
///   max(its device's free time, its ready time) and runs for its compute time.
/// - Every device has one communication channel for both its sends and its receives. When a node
///   ends, each of its tensors needed on another device (edges in order) is sent: the transfer
///   starts at max(producer end, sender channel free), then at max(that, receiver channel free),
///   and ends one communication time later; both channels are busy until it ends.
/// - A tensor already received on a device is cached there and not sent again.
/// - The makespan is the end of the last node.
///
/// A transfer between two devices takes the time of their pair's link (`Links.between`).
///
/// `replay` instead follows a given `Schedule` (the order a placer decided on), with the same
/// rules for durations, channels and the cache; replaying the order `simulate` found gives the
/// same step.
///
/// Memory: a device holds its nodes' persistent memory all step; a node's scratch memory while it
/// runs; each output tensor from its producer's start until its last consumer ends (an unused
/// output until the producer's last consumer ends; the outputs of a node nobody consumes until
/// the step ends); a received copy from the start of its transfer until its last consumer on
/// that device ends. Releases at an instant happen before allocations at that instant.
public enum Simulator {
    /// The step with one link between every pair of devices.
    public static func simulate(_ graph: Graph, link: LinkModel, deviceOfNode: [Int32], deviceCount: Int) -> SimulationResult {
        simulate(graph, links: Links(link), deviceOfNode: deviceOfNode, deviceCount: deviceCount)
    }

    public static func simulate(_ graph: Graph, links: Links, deviceOfNode: [Int32], deviceCount: Int) -> SimulationResult {
        let n = graph.nodes.count
        let d = deviceCount
        precondition(deviceOfNode.count == n && deviceOfNode.allSatisfy { $0 >= 0 && Int($0) < d })
        let linkTable = links.table(deviceCount: d)
        var remaining = (0..<n).map { Int32(graph.inEdges.count($0)) }
        var ready = [Double](repeating: 0, count: n)
        var start = [Double](repeating: 0, count: n)
        var end = [Double](repeating: 0, count: n)
        var deviceFree = [Double](repeating: 0, count: d)
        var channelFree = [Double](repeating: 0, count: d)
        var cache = [Double](repeating: -1, count: graph.tensorCount * d)
        var transfers = [Transfer]()
        var nodesOfDevice = [[Int32]](repeating: [], count: d)
        var queue = KeyedHeap(capacity: n)
        for i in 0..<n where remaining[i] == 0 {
            queue.push(key: 0, tie: Int64(graph.topologicalRank[i]), value: Int32(i))
        }
        while let entry = queue.pop() {
            let i = Int(entry.value)
            let device = Int(deviceOfNode[i])
            let s = max(deviceFree[device], ready[i])
            let e = s + graph.nodes[i].computeMicros
            start[i] = s
            end[i] = e
            deviceFree[device] = e
            nodesOfDevice[device].append(Int32(i))
            for edgeIndex in graph.outEdges[i] {
                let edge = Int(edgeIndex)
                let j = graph.edges[edge].destination
                let target = Int(deviceOfNode[j])
                var arrival = e
                if target != device {
                    let tensor = Int(graph.tensorOfEdge[edge])
                    let slot = tensor * d + target
                    if cache[slot] >= 0 {
                        arrival = cache[slot]
                    } else {
                        let sendStart = max(e, channelFree[device])
                        let receiveStart = max(sendStart, channelFree[target])
                        let finish = receiveStart + graph.commMicros(ofEdge: edge, link: linkTable[device * d + target])
                        channelFree[device] = finish
                        channelFree[target] = finish
                        cache[slot] = finish
                        arrival = finish
                        transfers.append(Transfer(edge: Int32(edge), tensor: Int32(tensor), fromDevice: Int32(device),
                                                  toDevice: Int32(target), startMicros: receiveStart, endMicros: finish,
                                                  bytes: graph.transferBytes(ofEdge: edge)))
                    }
                }
                ready[j] = max(ready[j], arrival)
                remaining[j] -= 1
                if remaining[j] == 0 {
                    queue.push(key: ready[j], tie: Int64(graph.topologicalRank[j]), value: Int32(j))
                }
            }
        }
        return SimulationResult(graph: graph, deviceOfNode: deviceOfNode, deviceCount: d, start: start, end: end,
                                transfers: transfers, nodesOfDevice: nodesOfDevice)
    }

    /// The step of `deviceOfNode` run in the order `schedule` gives: each device runs its nodes in
    /// its list's order, each channel carries the transfers in the list's order (a transfer uses
    /// its sender's and its receiver's channel), and everything starts as soon as that order, its
    /// inputs and its channels allow. The schedule must list every node once, on its device, and
    /// exactly the transfers the placement needs (each tensor once per device that consumes it
    /// away from its producer), in an order that does not contradict the graph.
    public static func replay(_ graph: Graph, link: LinkModel, deviceOfNode: [Int32], deviceCount: Int,
                              schedule: Schedule) throws(ScheduleError) -> SimulationResult {
        try replay(graph, links: Links(link), deviceOfNode: deviceOfNode, deviceCount: deviceCount, schedule: schedule)
    }

    public static func replay(_ graph: Graph, links: Links, deviceOfNode: [Int32], deviceCount: Int,
                              schedule: Schedule) throws(ScheduleError) -> SimulationResult {
        let n = graph.nodes.count
        let d = deviceCount
        precondition(deviceOfNode.count == n && deviceOfNode.allSatisfy { $0 >= 0 && Int($0) < d })
        func name(_ node: Int) -> String { GraphError.quoted(graph.nodes[node].name) }
        func tensorName(_ tensor: Int) -> String { GraphError.quoted(graph.tensorName(tensor)) }
        guard schedule.nodesOfDevice.count == d else {
            throw ScheduleError(description: "the schedule orders \(schedule.nodesOfDevice.count) devices, the placement uses \(d)")
        }
        // Position of every node in its device's order.
        var position = [Int32](repeating: -1, count: n)
        for (device, nodes) in schedule.nodesOfDevice.enumerated() {
            for (k, node) in nodes.enumerated() {
                guard node >= 0 && Int(node) < n else { throw ScheduleError(description: "the schedule names node \(node), which the graph does not have") }
                guard deviceOfNode[Int(node)] == Int32(device) else {
                    throw ScheduleError(description: "the schedule runs \(name(Int(node))) on device \(device), the placement puts it on device \(deviceOfNode[Int(node)])")
                }
                guard position[Int(node)] < 0 else { throw ScheduleError(description: "the schedule runs \(name(Int(node))) twice") }
                position[Int(node)] = Int32(k)
            }
        }
        if let missing = position.firstIndex(of: -1) { throw ScheduleError(description: "the schedule does not run \(name(missing))") }

        // The transfers: each needed (tensor, device) pair once, and no other.
        var transferOfSlot = [Int32](repeating: -1, count: graph.tensorCount * d)
        for (k, transfer) in schedule.transfers.enumerated() {
            let edge = Int(transfer.edge), to = Int(transfer.toDevice)
            guard edge >= 0 && edge < graph.edges.count && to >= 0 && to < d else {
                throw ScheduleError(description: "transfer \(k) names an edge or device that does not exist")
            }
            let tensor = Int(graph.tensorOfEdge[edge])
            guard deviceOfNode[graph.edges[edge].destination] == Int32(to) && deviceOfNode[graph.edges[edge].source] != Int32(to) else {
                throw ScheduleError(description: "the schedule sends \(tensorName(tensor)) to device \(to), which does not need it")
            }
            let slot = tensor * d + to
            guard transferOfSlot[slot] < 0 else { throw ScheduleError(description: "the schedule sends \(tensorName(tensor)) to device \(to) twice") }
            transferOfSlot[slot] = Int32(k)
        }
        for (e, edge) in graph.edges.enumerated() {
            let target = Int(deviceOfNode[edge.destination])
            guard target != Int(deviceOfNode[edge.source]) else { continue }
            guard transferOfSlot[Int(graph.tensorOfEdge[e]) * d + target] >= 0 else {
                throw ScheduleError(description: "the schedule does not send \(tensorName(Int(graph.tensorOfEdge[e]))) to device \(target), where \(name(edge.destination)) needs it")
            }
        }

        // Items are nodes 0..<n and transfers n..<n+T; each waits for the items before it.
        let count = n + schedule.transfers.count
        var pairs = [(Int, Int)]()   // (item, successor)
        pairs.reserveCapacity(3 * count)
        for nodes in schedule.nodesOfDevice {
            for (a, b) in zip(nodes, nodes.dropFirst()) { pairs.append((Int(a), Int(b))) }
        }
        for (e, edge) in graph.edges.enumerated() {
            let source = edge.source, destination = edge.destination
            if deviceOfNode[source] == deviceOfNode[destination] {
                pairs.append((source, destination))
            } else {
                let k = Int(transferOfSlot[Int(graph.tensorOfEdge[e]) * d + Int(deviceOfNode[destination])])
                pairs.append((n + k, destination))
            }
        }
        var lastOnChannel = [Int](repeating: -1, count: d)
        for (k, transfer) in schedule.transfers.enumerated() {
            let producer = graph.edges[Int(transfer.edge)].source
            pairs.append((producer, n + k))
            for channel in [Int(deviceOfNode[producer]), Int(transfer.toDevice)] {
                if lastOnChannel[channel] >= 0 { pairs.append((n + lastOnChannel[channel], n + k)) }
                lastOnChannel[channel] = k
            }
        }
        let successors = Adjacency(count: count, pairs: pairs)
        var waiting = [Int32](repeating: 0, count: count)
        for (_, successor) in pairs { waiting[successor] += 1 }
        var earliest = [Double](repeating: 0, count: count)
        var finish = [Double](repeating: 0, count: count)
        var start = [Double](repeating: 0, count: n)
        var transfers = [Transfer?](repeating: nil, count: schedule.transfers.count)
        var queue = (0..<count).filter { waiting[$0] == 0 }
        var head = 0
        while head < queue.count {
            let item = queue[head]
            head += 1
            if item < n {
                start[item] = earliest[item]
                finish[item] = earliest[item] + graph.nodes[item].computeMicros
            } else {
                let k = item - n
                let edge = Int(schedule.transfers[k].edge)
                let producer = graph.edges[edge].source
                let link = links.between(Int(deviceOfNode[producer]), Int(schedule.transfers[k].toDevice))
                finish[item] = earliest[item] + graph.commMicros(ofEdge: edge, link: link)
                transfers[k] = Transfer(edge: Int32(edge), tensor: graph.tensorOfEdge[edge], fromDevice: deviceOfNode[producer],
                                        toDevice: schedule.transfers[k].toDevice, startMicros: earliest[item], endMicros: finish[item],
                                        bytes: graph.transferBytes(ofEdge: edge))
            }
            for successor in successors[item] {
                let next = Int(successor)
                earliest[next] = max(earliest[next], finish[item])
                waiting[next] -= 1
                if waiting[next] == 0 { queue.append(next) }
            }
        }
        guard queue.count == count else {
            let stuck = (0..<n).first { waiting[$0] > 0 }
            throw ScheduleError(description: "the schedule's order contradicts the graph" + (stuck.map { ": \(name($0)) would wait for itself" } ?? ""))
        }
        return SimulationResult(graph: graph, deviceOfNode: deviceOfNode, deviceCount: d, start: start,
                                end: Array(finish[0..<n]), transfers: transfers.map { $0! }, nodesOfDevice: schedule.nodesOfDevice)
    }
}

/// Memory use over a simulated step, per device (see `Simulator` for the rules).
public struct MemoryProfile: Sendable {
    public var persistent: [Int]
    public var peak: [Int]
    public var peakTime: [Double]
    public var peakNode: [Int32]
    /// Memory use after each change, per device: (time, bytes), in time order.
    public var timeline: [[(time: Double, bytes: Int)]]

    struct Event {
        var time: Double
        var order: Int8  // 0 release, 1 allocation, 2 release of a zero-length interval
        var bytes: Int
        var node: Int32
    }

    init(graph: Graph, deviceOfNode: [Int32], deviceCount: Int, start: [Double], end: [Double],
         transfers: [Transfer], keepTimeline: Bool = false) {
        var events = [[Event]](repeating: [], count: deviceCount)
        var persistent = [Int](repeating: 0, count: deviceCount)
        func interval(_ device: Int, _ from: Double, _ to: Double?, _ bytes: Int, _ node: Int) {
            guard bytes > 0 else { return }
            events[device].append(Event(time: from, order: 1, bytes: bytes, node: Int32(node)))
            if let to { events[device].append(Event(time: to, order: to > from ? 0 : 2, bytes: -bytes, node: Int32(node))) }
        }
        var lastConsumerEnd = [Double](repeating: -1, count: graph.tensorCount)
        for i in 0..<graph.nodes.count {
            let device = Int(deviceOfNode[i])
            persistent[device] += graph.nodes[i].persistentBytes
            interval(device, start[i], end[i], graph.nodes[i].temporaryBytes, i)
            var nodeLast = -1.0
            for e in graph.outEdges[i] {
                let t = Int(graph.tensorOfEdge[Int(e)])
                let consumerEnd = end[graph.edges[Int(e)].destination]
                lastConsumerEnd[t] = max(lastConsumerEnd[t], consumerEnd)
                nodeLast = max(nodeLast, consumerEnd)
            }
            let base = Int(graph.tensorBase[i])
            for (port, bytes) in graph.nodes[i].outputBytes.enumerated() {
                let last = lastConsumerEnd[base + port]
                interval(device, start[i], last >= 0 ? last : (nodeLast >= 0 ? nodeLast : nil), bytes, i)
            }
        }
        // Received copies: until the last consumer of the tensor on the receiving device.
        if !transfers.isEmpty {
            var copyEnd = [Int: Double]()
            copyEnd.reserveCapacity(transfers.count)
            for transfer in transfers {
                copyEnd[Int(transfer.tensor) * deviceCount + Int(transfer.toDevice)] = transfer.endMicros
            }
            for e in graph.edges.indices {
                let j = graph.edges[e].destination
                let key = Int(graph.tensorOfEdge[e]) * deviceCount + Int(deviceOfNode[j])
                if let current = copyEnd[key] { copyEnd[key] = max(current, end[j]) }
            }
            for transfer in transfers {
                let to = Int(transfer.toDevice)
                interval(to, transfer.startMicros, copyEnd[Int(transfer.tensor) * deviceCount + to]!, transfer.bytes,
                         graph.edges[Int(transfer.edge)].destination)
            }
        }
        var peak = persistent
        var peakTime = [Double](repeating: 0, count: deviceCount)
        var peakNode = [Int32](repeating: -1, count: deviceCount)
        var timeline = [[(time: Double, bytes: Int)]](repeating: [], count: deviceCount)
        for device in 0..<deviceCount {
            events[device].sort { ($0.time, $0.order) < ($1.time, $1.order) }
            var current = persistent[device]
            if keepTimeline { timeline[device].append((0, current)) }
            for event in events[device] {
                current += event.bytes
                if current > peak[device] {
                    peak[device] = current
                    peakTime[device] = event.time
                    peakNode[device] = event.node
                }
                if keepTimeline { timeline[device].append((event.time, current)) }
            }
        }
        self.persistent = persistent
        self.peak = peak
        self.peakTime = peakTime
        self.peakNode = peakNode
        self.timeline = timeline
    }

    /// The memory use of every device over the step of `result` (for charts).
    public init(_ result: SimulationResult, graph: Graph) {
        self.init(graph: graph, deviceOfNode: result.deviceOfNode, deviceCount: result.deviceCount,
                  start: result.startMicros, end: result.endMicros, transfers: result.transfers, keepTimeline: true)
    }
}
