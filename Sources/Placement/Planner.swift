import Basics
import Foundation

/// A plan that fits: where every node of the input graph runs, and the simulated step.
public struct PlacementPlan: Sendable {
    public let algorithm: Algorithm
    public let placementGraph: PlacementGraph
    public var devices: [DeviceSpec]
    public let deviceOfUnit: [Int32]
    /// The simulated step on the input graph: the placer's own order replayed (m-ETF, m-SCT) or,
    /// for placers that make no schedule, Baechi's simulator (see `Simulator`).
    public let simulation: SimulationResult
    /// The step the placer predicted while placing (m-ETF, m-SCT). It is never below the simulated
    /// step: the replay runs the same order but sends a fused unit's outputs as each member ends
    /// and starts nothing later than its inputs, device and channels allow (the placer may have
    /// held a unit back for memory or a favourite child).
    public var predictedMakespanMicros: Double?
    /// The step Baechi's simulator gives this placement in its own order (a global queue by ready
    /// time), to compare with Baechi's numbers; set by `Planner.plan`.
    public var queueMakespanMicros: Double?
    /// The tie-break the placer used.
    public var tieBreak: TieBreak = .topological
    /// What the search tried, when `Planner.plan` searched.
    public var search: SearchSummary?
    /// Preprocessing plus placement (and, for `auto`, every candidate), not file reading.
    public var placementSeconds: Double
    /// Time inside the placer alone (all its rounds; for m-SCT including the linear program).
    public var placerSeconds: Double = 0
    /// Time simulating the plan (all rounds).
    public var simulationSeconds: Double = 0
    /// Preprocessing time to report (by default this plan's; a benchmark may put a median here).
    public var medianPreprocessingSeconds: Double?
    public var preprocessingSeconds: Double { medianPreprocessingSeconds ?? placementGraph.preprocessingSeconds }
    /// m-SCT: the linear program's makespan (see `FavoriteChildLP.makespanMicros`).
    public var lpMakespanMicros: Double?
    /// `auto`: every plan it considered.
    public var candidates: [Candidate]

    /// One plan `auto` weighed.
    public struct Candidate: Sendable {
        public var algorithm: Algorithm
        /// The per-device memory the placer was given (nil: unlimited).
        public var memoryBudgetBytes: Int?
        public var makespanMicros: Double?
        public var peakMemoryBytes: Int?
        /// Why it was not usable, if it was not.
        public var problem: String?
        /// For the best of a search: how many plans the search simulated for this algorithm.
        public var plansTried: Int?
    }
}

/// Why no plan fits, in one line, and what would.
public struct PlanFailure: Error, CustomStringConvertible, Sendable {
    public var algorithm: Algorithm
    /// The op or group that did not fit.
    public var culprit: String?
    public var reason: String

    public var description: String { reason }
}

/// Places one graph under one set of links: preprocessing once, then plans for any algorithm and
/// devices, each checked in the simulator (every device within its memory at every instant).
///
///     let planner = Planner(graph: graph, link: .baechi)
///     let plan = try planner.plan(.mSCT, devices: DeviceSpec.uniform(count: 4, memoryBytes: 8 << 30)).get()
///     plan.simulation.order(ofDevice: 0)   // what device 0 runs, in order
///
/// With `search`, m-ETF and m-SCT run with many tie-break orders and with and without
/// co-placement, and the fastest simulated plan that fits wins (see `SearchOptions`).
///
/// A planner keeps the plans it made (the `auto` ladder and the memory search reuse them); use
/// one planner from one thread at a time.
public final class Planner {
    public let placementGraph: PlacementGraph
    public let sctThreshold: Double
    private let sct: MSCTPlacer
    private var attempts = [AttemptKey: Result<PlacementPlan, PlacementFailure>]()
    /// Planners of the same graph with other preprocessing, made when a search needs them.
    private var variants = [PreprocessingOptions: Planner]()

    public var graph: Graph { placementGraph.graph }
    /// The one link of device-independent figures (`Links.slowest`; the link itself when uniform).
    public var link: LinkModel { placementGraph.link }
    public var links: Links { placementGraph.links }
    public var options: PreprocessingOptions { placementGraph.options }

    public convenience init(graph: Graph, link: LinkModel, options: PreprocessingOptions = PreprocessingOptions(), sctThreshold: Double = 0.1) {
        self.init(graph: graph, links: Links(link), options: options, sctThreshold: sctThreshold)
    }

    public init(graph: Graph, links: Links, options: PreprocessingOptions = PreprocessingOptions(), sctThreshold: Double = 0.1) {
        placementGraph = PlacementGraph(graph: graph, links: links, options: options)
        self.sctThreshold = sctThreshold
        sct = MSCTPlacer(threshold: sctThreshold)
    }

    public func placer(for algorithm: Algorithm) -> any Placer {
        switch algorithm {
        case .mSCT: return sct
        case .mETF: return METFPlacer()
        case .mTOPO: return MTopoPlacer()
        case .single: return SinglePlacer()
        case .expert: return ExpertPlacer()
        case .auto: preconditionFailure("auto is not a single placer")
        }
    }

    /// The plan `algorithm` makes for `devices`, or why none fits. With `search`, the fastest of
    /// the plans the search tries (never slower than the plan without it, which it tries first).
    public func plan(_ algorithm: Algorithm, devices: [DeviceSpec], search: SearchOptions? = nil) -> Result<PlacementPlan, PlanFailure> {
        precondition(!devices.isEmpty)
        let started = ContinuousClock.now
        var result: Result<PlacementPlan, PlanFailure>
        if algorithm == .auto {
            result = auto(devices: devices, search: search, started: started)
        } else if let search {
            var run = PlacementSearch(options: search)
            run.explore(arms(for: [algorithm], search: search), devices: devices, deadline: search.budgetSeconds.map { started + .seconds($0) })
            result = run.best.map { .success($0) } ?? attempt(algorithm, devices: devices, limits: devices.map(\.memoryBytes), tieBreak: .topological).mapError {
                PlanFailure(algorithm: algorithm, culprit: $0.culprit, reason: $0.reason)
            }
        } else {
            result = attempt(algorithm, devices: devices, limits: devices.map(\.memoryBytes), tieBreak: .topological).mapError {
                PlanFailure(algorithm: algorithm, culprit: $0.culprit, reason: $0.reason)
            }
        }
        let seconds = placementGraph.preprocessingSeconds + (ContinuousClock.now - started).seconds
        if case .success(var plan) = result {
            plan.placementSeconds = seconds
            plan.queueMakespanMicros = Simulator.simulate(graph, links: links, deviceOfNode: plan.deviceOfNode, deviceCount: devices.count).makespanMicros
            result = .success(plan)
        }
        return result
    }

    /// The planner of this graph with `options` (this one, or one made once and kept).
    func variant(_ options: PreprocessingOptions) -> Planner {
        if options == self.options { return self }
        if let made = variants[options] { return made }
        let made = Planner(graph: graph, links: links, options: options, sctThreshold: sctThreshold)
        variants[options] = made
        return made
    }

    /// What a search runs for `algorithms`: each on this preprocessing and, when co-placement is
    /// on and the search asks for it, without co-placement too.
    private func arms(for algorithms: [Algorithm], search: SearchOptions) -> [PlacementSearch.Arm] {
        var planners = [self]
        if search.withoutCoPlacement && options.coPlacement {
            var other = options
            other.coPlacement = false
            planners.append(variant(other))
        }
        var arms = [PlacementSearch.Arm]()
        for algorithm in algorithms where algorithm != .auto {
            for planner in planners { arms.append(PlacementSearch.Arm(algorithm: algorithm, planner: planner)) }
        }
        return arms
    }

    /// The smallest memory per device (the same on all `deviceCount` devices, to within 1%) with
    /// which `algorithm` finds a plan, or nil if it finds none even with unlimited memory.
    /// A greedy placer is not monotone in memory: the result is a size where it succeeds, found by
    /// doubling and bisection.
    public func smallestMemory(for algorithm: Algorithm, deviceCount: Int) -> Int? {
        func works(_ bytes: Int) -> Bool {
            if case .success = plan(algorithm, devices: DeviceSpec.uniform(count: deviceCount, memoryBytes: bytes)) { return true }
            return false
        }
        guard works(Self.unlimited) else { return nil }
        var low = max(0, memoryLowerBound() - 1)
        var high = max(1, memoryLowerBound())
        while !works(high) {
            low = high
            guard high < Self.unlimited / 4 else { return Self.unlimited }
            high *= 2
        }
        while high - low > max(1 << 20, high / 100) {
            let middle = low + (high - low) / 2
            if works(middle) { high = middle } else { low = middle }
        }
        return high
    }

    /// No device holding a group can have less than its persistent memory plus, while one of its
    /// nodes runs, that node's scratch memory and outputs: the largest such need over groups.
    public func memoryLowerBound() -> Int {
        let pg = placementGraph
        var need = [Int](repeating: 0, count: pg.groupCount)
        for unit in pg.units {
            for m in unit.members {
                let node = pg.graph.nodes[Int(m)]
                need[Int(unit.group)] = max(need[Int(unit.group)], node.temporaryBytes + node.outputBytes.reduce(0, +))
            }
        }
        var bound = 0
        for g in 0..<pg.groupCount { bound = max(bound, need[g] + pg.groupPersistentBytes[g]) }
        return bound
    }

    static let unlimited = Int.max / 8

    // MARK: - One algorithm

    private struct AttemptKey: Hashable {
        var algorithm: Algorithm
        var limits: [Int]
        var tieBreak: TieBreak
    }

    /// Runs `algorithm` with memory `limits`, simulates, and checks the simulated memory (kept for
    /// reuse; a search's other tie-breaks go to `freshAttempt` and are not kept).
    func attempt(_ algorithm: Algorithm, devices: [DeviceSpec], limits: [Int], tieBreak: TieBreak) -> Result<PlacementPlan, PlacementFailure> {
        let key = AttemptKey(algorithm: algorithm, limits: limits, tieBreak: tieBreak)
        if let cached = attempts[key] { return cached.map { plan in rename(plan, devices) } }
        let result = freshAttempt(algorithm, devices: devices, limits: limits, tieBreak: tieBreak)
        if attempts.count >= 256 { attempts.removeAll() }   // plans of big graphs are big
        attempts[key] = result
        return result
    }

    private func rename(_ plan: PlacementPlan, _ devices: [DeviceSpec]) -> PlacementPlan {
        var renamed = plan
        renamed.devices = devices
        return renamed
    }

    /// Runs `algorithm` with memory `limits` and simulates the plan.
    /// Placers estimate memory along their own events, which the simulated step can shift; when
    /// the simulated step goes over a limit the placer runs again with that device's budget
    /// lowered by the excess (a few times).
    func freshAttempt(_ algorithm: Algorithm, devices: [DeviceSpec], limits: [Int], tieBreak: TieBreak) -> Result<PlacementPlan, PlacementFailure> {
        let pg = placementGraph
        let placer = placer(for: algorithm)
        var budget = limits
        var lastSimulation: SimulationResult?
        var placerSeconds = 0.0, simulationSeconds = 0.0
        for _ in 0..<6 {
            let placement: UnitPlacement
            let placing = ContinuousClock.now
            do { placement = try placer.place(pg, limits: budget, tieBreak: tieBreak) } catch {
                if lastSimulation != nil { break }
                return .failure(error)
            }
            placerSeconds += (ContinuousClock.now - placing).seconds
            let simulating = ContinuousClock.now
            let simulation = simulate(placement, deviceCount: limits.count)
            simulationSeconds += (ContinuousClock.now - simulating).seconds
            let over = limits.indices.filter { simulation.peakMemoryBytes[$0] > limits[$0] }
            if over.isEmpty {
                var plan = PlacementPlan(algorithm: algorithm, placementGraph: pg, devices: devices, deviceOfUnit: placement.deviceOfUnit,
                                         simulation: simulation, placementSeconds: 0, lpMakespanMicros: nil, candidates: [])
                plan.placerSeconds = placerSeconds
                plan.simulationSeconds = simulationSeconds
                plan.predictedMakespanMicros = placement.predictedMakespanMicros
                plan.tieBreak = tieBreak
                if algorithm == .mSCT { plan.lpMakespanMicros = try? sct.linearProgram(for: pg).makespanMicros }
                return .success(plan)
            }
            lastSimulation = simulation
            guard algorithm != .single else { break }
            for d in over {
                let excess = simulation.peakMemoryBytes[d] - limits[d]
                budget[d] = max(0, budget[d] - excess - max(1, limits[d] / 100))
            }
        }
        guard let simulation = lastSimulation else {
            return .failure(PlacementFailure(algorithm: algorithm, culprit: nil, reason: "no plan"))
        }
        // Name the device that went over and what was running when it did.
        let d = limits.indices.max { simulation.peakMemoryBytes[$0] - limits[$0] < simulation.peakMemoryBytes[$1] - limits[$1] }!
        let node = Int(simulation.peakNode[d])
        let culprit = node >= 0 ? pg.describe(unit: Int(pg.unitOfNode[node])) : nil
        let during = culprit.map { " when \($0) starts" } ?? ""
        let what = algorithm == .single ? "everything on device \(d)" : "its plan"
        return .failure(PlacementFailure(
            algorithm: algorithm, culprit: culprit,
            reason: "\(what) needs \(Quantity.formatBytes(simulation.peakMemoryBytes[d])) on device \(d) at \(Quantity.formatMicros(simulation.peakTimeMicros[d]))\(during) in the simulated step, above its \(Quantity.formatBytes(limits[d]))"))
    }

    /// The step of a placement: its placer's own order replayed when it made one, otherwise
    /// Baechi's simulator.
    private func simulate(_ placement: UnitPlacement, deviceCount: Int) -> SimulationResult {
        let pg = placementGraph
        var deviceOfNode = [Int32](repeating: 0, count: pg.graph.nodes.count)
        for (node, unit) in pg.unitOfNode.enumerated() { deviceOfNode[node] = placement.deviceOfUnit[Int(unit)] }
        if let order = placement.order {
            let schedule = order.schedule(pg, deviceOfUnit: placement.deviceOfUnit, deviceCount: deviceCount)
            do {
                return try Simulator.replay(pg.graph, links: pg.links, deviceOfNode: deviceOfNode, deviceCount: deviceCount, schedule: schedule)
            } catch {
                assertionFailure("a placer's own order does not replay: \(error)")
            }
        }
        return Simulator.simulate(pg.graph, links: pg.links, deviceOfNode: deviceOfNode, deviceCount: deviceCount)
    }

    // MARK: - auto

    /// Memory budgets `auto` tries below the devices' memory: 2^(k/8) bytes, the same for every
    /// graph, so a budget tried at some memory is tried at every larger memory too.
    static func ladder(below bytes: Int, downTo floor: Int) -> [Int] {
        guard bytes > 0 else { return [] }
        var k = Int((8 * Foundation.log2(Double(bytes))).rounded(.down))
        var values = [Int]()
        while k >= 0 {
            let value = Int(Foundation.pow(2, Double(k) / 8))
            if value <= bytes {
                if value < floor { break }
                values.append(value)
            }
            k -= 1
        }
        return values
    }

    /// The fastest plan that fits among: every algorithm with unlimited memory (if its simulated
    /// peak fits), every algorithm at the largest ladder budget at or below the devices' memory
    /// where any succeeds, and every algorithm at the devices' exact memory. The first two only
    /// grow with memory, so `auto` is monotone: a plan at memory M means a plan at any larger M.
    /// With `search`, also the best plan the search finds for each algorithm at the devices' memory
    /// (only once one of the first two succeeded, which keeps `auto` monotone).
    private func auto(devices: [DeviceSpec], search: SearchOptions?, started: ContinuousClock.Instant) -> Result<PlacementPlan, PlanFailure> {
        let limits = devices.map(\.memoryBytes)
        var candidates = [PlacementPlan.Candidate]()
        var usable = [PlacementPlan]()
        func consider(_ algorithm: Algorithm, budget: [Int]?) {
            let result = attempt(algorithm, devices: devices, limits: budget ?? limits.map { _ in Self.unlimited }, tieBreak: .topological)
            let shown = budget.map { $0.max() ?? 0 }
            switch result {
            case .success(let plan):
                let peak = plan.simulation.peakMemoryBytes.max() ?? 0
                let fits = limits.indices.allSatisfy { plan.simulation.peakMemoryBytes[$0] <= limits[$0] }
                candidates.append(.init(algorithm: algorithm, memoryBudgetBytes: shown, makespanMicros: plan.makespanMicros,
                                        peakMemoryBytes: peak, problem: fits ? nil : "peak memory above the devices' memory"))
                if fits { usable.append(plan) }
            case .failure(let failure):
                candidates.append(.init(algorithm: algorithm, memoryBudgetBytes: shown, makespanMicros: nil,
                                        peakMemoryBytes: nil, problem: failure.reason))
            }
        }
        for algorithm in Algorithm.concrete { consider(algorithm, budget: nil) }
        var lastBudget: [Int]?
        for value in Self.ladder(below: limits.max() ?? 0, downTo: memoryLowerBound()) {
            let budget = limits.map { min($0, value) }
            let before = usable.count
            for algorithm in Algorithm.concrete { consider(algorithm, budget: budget) }
            lastBudget = budget
            if usable.count > before { break }
        }
        guard !usable.isEmpty else {
            // Say why with the devices' own memory, naming what did not fit.
            var failures = [PlacementFailure]()
            for algorithm in Algorithm.concrete {
                if case .failure(let failure) = attempt(algorithm, devices: devices, limits: limits, tieBreak: .topological) { failures.append(failure) }
            }
            let named = failures.first { $0.culprit != nil } ?? failures.first
            return .failure(PlanFailure(algorithm: .auto, culprit: named?.culprit,
                                        reason: "no algorithm finds a plan that fits" + (named.map { "; \($0.description)" } ?? "")))
        }
        if lastBudget != limits {
            for algorithm in Algorithm.concrete { consider(algorithm, budget: limits) }
        }
        var searched: SearchSummary?
        if let search {
            // Each algorithm searched as `plan(algorithm, search:)` would: auto is never slower
            // than any of them. A budget is shared out among the algorithms still to search.
            var run = PlacementSearch(options: search)
            let algorithms: [Algorithm] = [.mSCT, .mETF, .mTOPO, .expert]
            for (i, algorithm) in algorithms.enumerated() {
                let deadline = search.budgetSeconds.map { budget -> ContinuousClock.Instant in
                    let left = budget - (ContinuousClock.now - started).seconds
                    return ContinuousClock.now + .seconds(max(0, left) / Double(algorithms.count - i))
                }
                run.explore(arms(for: [algorithm], search: search), devices: devices, deadline: deadline)
            }
            for algorithm in Algorithm.concrete {
                guard let best = run.bestOf[algorithm] else { continue }
                candidates.append(.init(algorithm: algorithm, memoryBudgetBytes: limits.max() ?? 0, makespanMicros: best.makespanMicros,
                                        peakMemoryBytes: best.simulation.peakMemoryBytes.max() ?? 0, problem: nil,
                                        plansTried: run.triedOf[algorithm]))
                usable.append(best)
            }
            searched = run.summary
        }
        var best = usable[0]
        for plan in usable.dropFirst() where plan.makespanMicros < best.makespanMicros { best = plan }
        best.candidates = candidates
        best.search = searched
        return .success(best)
    }
}
