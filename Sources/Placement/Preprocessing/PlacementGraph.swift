import Basics
import Foundation

/// Which preprocessing steps run before placement (each can be switched off).
public struct PreprocessingOptions: Sendable, Hashable {
    /// An op whose output goes to exactly one op joins that op's group (Baechi's co-placement).
    public var coPlacement: Bool
    /// Contract each group into as few placement units as the cycle guard allows.
    public var fusion: Bool
    /// Honour framework colocation labels (nodes sharing a label share a device).
    public var colocation: Bool
    /// Also fuse u->v when out(u) > 1 and in(v) > 1 if a bounded search finds no other path from u to v.
    public var fusionPathCheck: Bool

    public init(coPlacement: Bool = true, fusion: Bool = true, colocation: Bool = true, fusionPathCheck: Bool = true) {
        self.coPlacement = coPlacement
        self.fusion = fusion
        self.colocation = colocation
        self.fusionPathCheck = fusionPathCheck
    }

    /// Everything off: every node is its own unit and group.
    public static let none = PreprocessingOptions(coPlacement: false, fusion: false, colocation: false, fusionPathCheck: false)
}

/// What placers place: a fused group of nodes that runs as one operator on one device.
public struct PlacementUnit: Sendable {
    /// Nodes of the input graph, in topological order (the order they run in).
    public var members: [Int32]
    public var computeMicros: Double
    public var persistentBytes: Int
    /// Peak of a member's scratch memory plus the unit's internal tensors alive at that moment.
    public var temporaryBytes: Int
    /// Tensors that leave the unit: freed once every consuming unit has run.
    public var outputBytes: Int
    /// Outputs of members nobody consumes: results of the step, kept to its end.
    public var retainedBytes: Int
    /// Colocation group: all units of a group go to one device.
    public var group: Int32
}

/// The graph placers work on: units (fused nodes), the tensors between them with their
/// communication times, colocation groups and topological order.
///
/// The tensors' communication times (`itemComm`, `edgeComm`) are those of `links.slowest`: preprocessing
/// and m-SCT's linear program know no devices yet, and the slowest pair's times keep their choices safe
/// wherever units land (see `Links.slowest`). The list scheduler costs each transfer with the link of
/// the two devices it joins (`links`).
public final class PlacementGraph: Sendable {
    public let graph: Graph
    /// The links between devices.
    public let links: Links
    /// The one link the device-independent figures use: `links.slowest`.
    public let link: LinkModel
    public let options: PreprocessingOptions
    public let units: [PlacementUnit]
    public let unitOfNode: [Int32]
    /// Units of each group, in topological order of their first member.
    public let groupUnits: Adjacency
    public let groupPersistentBytes: [Int]
    /// Unit edges: one per pair of connected units, carrying the distinct tensors between them.
    public let edgeSource: [Int32]
    public let edgeDestination: [Int32]
    /// Summed communication time of the edge's tensors (the LP's edge weight).
    public let edgeComm: [Double]
    /// Tensor items of unit edge `e` are `itemOffsets[e]..<itemOffsets[e+1]` in `itemTensor`, `itemComm`, `itemBytes`.
    public let itemOffsets: [Int32]
    public let itemTensor: [Int32]
    /// The edge of the input graph an item stands for (its communication time is the item's).
    public let itemEdge: [Int32]
    public let itemComm: [Double]
    public let itemBytes: [Int]
    /// Incoming and outgoing unit edges of each unit.
    public let inEdges: Adjacency
    public let outEdges: Adjacency
    public let topologicalOrder: [Int32]
    public let topologicalRank: [Int32]
    /// Tie-breaking priority of each unit: the input graph's topological rank of its first member
    /// (units are numbered that way, so it is the unit's index).
    public let priority: [Int32]
    /// For each tensor of the input graph: the units (other than its producer's) that consume it.
    public let tensorConsumers: Adjacency
    /// Seconds spent building this graph (grouping, fusion, unit edges).
    public let preprocessingSeconds: Double

    public var unitCount: Int { units.count }
    @inline(__always) public func items(ofEdge e: Int) -> Range<Int> { Int(itemOffsets[e])..<Int(itemOffsets[e + 1]) }
    public var groupCount: Int { groupPersistentBytes.count }

    public convenience init(graph: Graph, link: LinkModel, options: PreprocessingOptions = PreprocessingOptions()) {
        self.init(graph: graph, links: Links(link), options: options)
    }

    public init(graph: Graph, links: Links, options: PreprocessingOptions = PreprocessingOptions()) {
        let started = ContinuousClock.now
        let n = graph.nodes.count
        let link = links.slowest
        self.graph = graph
        self.links = links
        self.link = link
        self.options = options

        // 1. Groups: colocation labels, then co-placement (one pass suffices with union-find).
        var groups = UnionFind<Int32>(count: n)
        if options.colocation {
            var first = [Int32](repeating: -1, count: n)
            for i in 0..<n {
                let label = Int(graph.colocationClass[i])
                guard label >= 0 else { continue }
                if first[label] >= 0 { groups.union(Int32(i), first[label]) } else { first[label] = Int32(i) }
            }
        }
        if options.coPlacement {
            for i in 0..<n where graph.successorCount[i] == 1 {
                let e = Int(graph.outEdges.items[Int(graph.outEdges.offsets[i])])
                groups.union(Int32(i), Int32(graph.edges[e].destination))
            }
        }

        // 2. Fusion inside groups.
        var fused = UnionFind<Int32>(count: n)
        if options.fusion {
            var fusion = Fusion(graph: graph, groups: &groups, pathCheck: options.fusionPathCheck)
            fused = fusion.run()
        }

        // 3. Units, numbered by the topological rank of their first member.
        var unitOfNode = [Int32](repeating: -1, count: n)
        var unitOfRoot = [Int32](repeating: -1, count: n)
        var members = [[Int32]]()
        for node in graph.topologicalOrder {
            let root = Int(fused.find(node))
            if unitOfRoot[root] < 0 {
                unitOfRoot[root] = Int32(members.count)
                members.append([])
            }
            let unit = unitOfRoot[root]
            unitOfNode[Int(node)] = unit
            members[Int(unit)].append(node)
        }
        let unitCount = members.count

        // Groups renumbered densely in unit order.
        var groupOfRoot = [Int32](repeating: -1, count: n)
        var unitGroup = [Int32](repeating: 0, count: unitCount)
        var groupCount = 0
        for u in 0..<unitCount {
            let root = Int(groups.find(members[u][0]))
            if groupOfRoot[root] < 0 {
                groupOfRoot[root] = Int32(groupCount)
                groupCount += 1
            }
            unitGroup[u] = groupOfRoot[root]
        }

        // 4. Unit edges with their distinct tensors.
        var edgeSource = [Int32](), edgeDestination = [Int32](), edgeComm = [Double]()
        var itemOffsets: [Int32] = [0]
        var itemTensor = [Int32](), itemEdge = [Int32](), itemComm = [Double](), itemBytes = [Int]()
        var slot = [Int32](repeating: -1, count: unitCount)
        var slotOwner = [Int32](repeating: -1, count: unitCount)
        for u in 0..<unitCount {
            // Collect (destination unit, edge) pairs of this unit, then emit them grouped.
            var pending = [(Int32, Int32)]()
            for member in members[u] {
                for e in graph.outEdges[Int(member)] {
                    let v = unitOfNode[graph.edges[Int(e)].destination]
                    if v != Int32(u) { pending.append((v, e)) }
                }
            }
            var local = [[Int32]]()
            var order = [Int32]()
            for (v, e) in pending {
                if slotOwner[Int(v)] != Int32(u) {
                    slotOwner[Int(v)] = Int32(u)
                    slot[Int(v)] = Int32(local.count)
                    local.append([])
                    order.append(v)
                }
                local[Int(slot[Int(v)])].append(e)
            }
            for (k, v) in order.enumerated() {
                edgeSource.append(Int32(u))
                edgeDestination.append(v)
                var comm = 0.0
                let begin = itemTensor.count
                for e in local[k] {
                    let tensor = graph.tensorOfEdge[Int(e)]
                    if itemTensor[begin...].contains(tensor) { continue }
                    let c = graph.commMicros(ofEdge: Int(e), link: link)
                    itemTensor.append(tensor)
                    itemEdge.append(e)
                    itemComm.append(c)
                    itemBytes.append(graph.transferBytes(ofEdge: Int(e)))
                    comm += c
                }
                edgeComm.append(comm)
                itemOffsets.append(Int32(itemTensor.count))
            }
        }
        let edgeCount = edgeSource.count
        let inEdges = Adjacency(count: unitCount, pairs: (0..<edgeCount).lazy.map { (Int(edgeDestination[$0]), $0) })
        let outEdges = Adjacency(count: unitCount, pairs: (0..<edgeCount).lazy.map { (Int(edgeSource[$0]), $0) })

        // Kahn's order over units (FIFO, sources by unit id, successors by edge order).
        var indegree = (0..<unitCount).map { Int32(inEdges.count($0)) }
        var order = [Int32]()
        order.reserveCapacity(unitCount)
        for u in 0..<unitCount where indegree[u] == 0 { order.append(Int32(u)) }
        var head = 0
        while head < order.count {
            let u = Int(order[head])
            head += 1
            for e in outEdges[u] {
                let v = Int(edgeDestination[Int(e)])
                indegree[v] -= 1
                if indegree[v] == 0 { order.append(Int32(v)) }
            }
        }
        precondition(order.count == unitCount, "fusion created a cycle")
        var rank = [Int32](repeating: 0, count: unitCount)
        for (position, u) in order.enumerated() { rank[Int(u)] = Int32(position) }

        // 5. Memory of each unit.
        var units = [PlacementUnit]()
        units.reserveCapacity(unitCount)
        var position = [Int32](repeating: 0, count: n)
        var lastUse = [Int32](repeating: -1, count: graph.tensorCount)
        var leaves = [Bool](repeating: false, count: graph.tensorCount)
        for u in 0..<unitCount {
            let list = members[u]
            for (k, member) in list.enumerated() { position[Int(member)] = Int32(k) }
            var unit = PlacementUnit(members: list, computeMicros: 0, persistentBytes: 0, temporaryBytes: 0,
                                     outputBytes: 0, retainedBytes: 0, group: unitGroup[u])
            if list.count == 1 {
                let node = graph.nodes[Int(list[0])]
                unit.computeMicros = node.computeMicros
                unit.persistentBytes = node.persistentBytes
                unit.temporaryBytes = node.temporaryBytes
                let outputs = node.outputBytes.reduce(0, +)
                if graph.outEdges.count(Int(list[0])) > 0 { unit.outputBytes = outputs } else { unit.retainedBytes = outputs }
                units.append(unit)
                continue
            }
            // Internal tensors live from their producer's position to their last consumer's.
            var alive = [Int](repeating: 0, count: list.count + 1)
            for member in list {
                let i = Int(member)
                let node = graph.nodes[i]
                unit.computeMicros += node.computeMicros
                unit.persistentBytes += node.persistentBytes
                var nodeLast: Int32 = -1
                var nodeLeaves = false
                for e in graph.outEdges[i] {
                    let edge = graph.edges[Int(e)]
                    let t = Int(graph.tensorOfEdge[Int(e)])
                    if unitOfNode[edge.destination] != Int32(u) {
                        leaves[t] = true
                        nodeLeaves = true
                    } else {
                        lastUse[t] = max(lastUse[t], position[edge.destination])
                        nodeLast = max(nodeLast, position[edge.destination])
                    }
                }
                let base = Int(graph.tensorBase[i])
                let start = Int(position[i])
                for (port, bytes) in node.outputBytes.enumerated() {
                    let t = base + port
                    if graph.outEdges.count(i) == 0 {
                        unit.retainedBytes += bytes
                    } else if leaves[t] || (lastUse[t] < 0 && nodeLeaves) {
                        unit.outputBytes += bytes
                    } else {
                        let end = Int(lastUse[t] >= 0 ? lastUse[t] : nodeLast)
                        alive[start] += bytes
                        alive[end + 1] -= bytes
                    }
                    leaves[t] = false
                    lastUse[t] = -1
                }
                leaves[base + node.outputBytes.count] = false
                lastUse[base + node.outputBytes.count] = -1
            }
            var running = 0
            for (k, member) in list.enumerated() {
                running += alive[k]
                unit.temporaryBytes = max(unit.temporaryBytes, running + graph.nodes[Int(member)].temporaryBytes)
            }
            units.append(unit)
        }

        var groupPersistent = [Int](repeating: 0, count: groupCount)
        for unit in units { groupPersistent[Int(unit.group)] += unit.persistentBytes }
        let groupUnits = Adjacency(count: groupCount, pairs: order.lazy.map { (Int(unitGroup[Int($0)]), Int($0)) })

        var consumerPairs = [(Int, Int)]()
        consumerPairs.reserveCapacity(itemTensor.count)
        for e in 0..<edgeCount {
            for item in Int(itemOffsets[e])..<Int(itemOffsets[e + 1]) {
                consumerPairs.append((Int(itemTensor[item]), Int(edgeDestination[e])))
            }
        }

        self.units = units
        self.unitOfNode = unitOfNode
        self.groupUnits = groupUnits
        self.groupPersistentBytes = groupPersistent
        self.edgeSource = edgeSource
        self.edgeDestination = edgeDestination
        self.edgeComm = edgeComm
        self.itemOffsets = itemOffsets
        self.itemTensor = itemTensor
        self.itemEdge = itemEdge
        self.itemComm = itemComm
        self.itemBytes = itemBytes
        self.inEdges = inEdges
        self.outEdges = outEdges
        self.topologicalOrder = order
        self.topologicalRank = rank
        self.priority = Array(0..<Int32(unitCount))
        self.tensorConsumers = Adjacency(count: graph.tensorCount, pairs: consumerPairs)
        self.preprocessingSeconds = (ContinuousClock.now - started).seconds
    }

    /// A short description of a unit for messages: its first node, and how many nodes it holds.
    public func describe(unit u: Int) -> String {
        let unit = units[u]
        let first = graph.nodes[Int(unit.members[0])].name
        return unit.members.count == 1 ? "op \"\(first)\"" : "op group \"\(first)\" (\(unit.members.count) ops)"
    }

    /// A colocation group for messages.
    public func describe(group g: Int) -> String {
        let list = groupUnits[g]
        if list.count == 1 { return describe(unit: Int(list.first!)) }
        let count = list.reduce(0) { $0 + units[Int($1)].members.count }
        let first = graph.nodes[Int(units[Int(list.first!)].members[0])].name
        return "op group \"\(first)\" (\(count) ops)"
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
