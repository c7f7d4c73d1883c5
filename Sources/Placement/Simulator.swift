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
    public let transfers: [Transfer]
    /// Highest memory use of each device at any instant of the step.
    public let peakMemoryBytes: [Int]
    /// When each device's peak happens, and the node whose allocation reached it (-1 if persistent memory alone).
    public let peakTimeMicros: [Double]
    public let peakNode: [Int32]
    /// Memory that stays on the device all step (parameters).
    public let persistentBytes: [Int]
    /// Time each device spends computing.
    public let busyMicros: [Double]

    /// The nodes of each device in the order they run.
    public func order(ofDevice d: Int) -> [Int32] {
        (0..<Int32(deviceOfNode.count)).filter { deviceOfNode[Int($0)] == Int32(d) }
            .sorted { (startMicros[Int($0)], $0) < (startMicros[Int($1)], $1) }
    }
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
/// Memory: a device holds its nodes' persistent memory all step; a node's scratch memory while it
/// runs; each output tensor from its producer's start until its last consumer ends (an unused
/// output until the producer's last consumer ends; the outputs of a node nobody consumes until
/// the step ends); a received copy from the start of its transfer until its last consumer on
/// that device ends. Releases at an instant happen before allocations at that instant.
public enum Simulator {
    public static func simulate(_ graph: Graph, link: LinkModel, deviceOfNode: [Int32], deviceCount: Int) -> SimulationResult {
        let n = graph.nodes.count
        let d = deviceCount
        precondition(deviceOfNode.count == n && deviceOfNode.allSatisfy { $0 >= 0 && Int($0) < d })
        var remaining = (0..<n).map { Int32(graph.inEdges.count($0)) }
        var ready = [Double](repeating: 0, count: n)
        var start = [Double](repeating: 0, count: n)
        var end = [Double](repeating: 0, count: n)
        var deviceFree = [Double](repeating: 0, count: d)
        var channelFree = [Double](repeating: 0, count: d)
        var cache = [Double](repeating: -1, count: graph.tensorCount * d)
        var transfers = [Transfer]()
        var queue = KeyedHeap(capacity: n)
        for i in 0..<n where remaining[i] == 0 {
            queue.push(key: 0, tie: Int64(graph.topologicalRank[i]), value: Int32(i))
        }
        var makespan = 0.0
        var busy = [Double](repeating: 0, count: d)
        while let entry = queue.pop() {
            let i = Int(entry.value)
            let device = Int(deviceOfNode[i])
            let s = max(deviceFree[device], ready[i])
            let e = s + graph.nodes[i].computeMicros
            start[i] = s
            end[i] = e
            deviceFree[device] = e
            busy[device] += graph.nodes[i].computeMicros
            makespan = max(makespan, e)
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
                        let finish = receiveStart + graph.commMicros(ofEdge: edge, link: link)
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
        let memory = MemoryProfile(graph: graph, deviceOfNode: deviceOfNode, deviceCount: d, start: start, end: end,
                                   transfers: transfers)
        return SimulationResult(deviceCount: d, deviceOfNode: deviceOfNode, startMicros: start, endMicros: end,
                                makespanMicros: makespan, transfers: transfers, peakMemoryBytes: memory.peak,
                                peakTimeMicros: memory.peakTime, peakNode: memory.peakNode,
                                persistentBytes: memory.persistent, busyMicros: busy)
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
