import Basics

/// How `Planner.plan` searches for a faster plan.
///
/// m-ETF and m-SCT are greedy list schedulers whose result depends a great deal on how they break
/// ties between units that could start at the same moment: on the GNMT profile the same placer
/// ranges from 96 to 142 ms over tie-break orders on 2 devices. Placing costs milliseconds, so
/// trying many orders and keeping the fastest simulated plan is cheap. Co-placement can hurt too
/// (it merges parallel branches that end in one op), so the search also places without it.
///
/// The first order is always the topological one on the caller's preprocessing: the plan a
/// search returns is never slower than the plan without search. The other orders are drawn from
/// `seed`, so the same seed and the same number of plans give the same plan.
public struct SearchOptions: Sendable, Hashable {
    /// Places per algorithm and preprocessing, on average: the topological order, then `orders - 1`
    /// seeded random ones (see `PlacementSearch` for how they are shared out).
    public var orders: Int
    /// Stop trying further orders once this much time has passed since planning began (the
    /// topological order always runs). A budget makes the number of plans depend on the machine.
    public var budgetSeconds: Double?
    public var seed: UInt64
    /// Also place without co-placement (when the caller's preprocessing co-places; a caller that
    /// turned co-placement off keeps it off).
    public var withoutCoPlacement: Bool

    public init(orders: Int, budgetSeconds: Double? = nil, seed: UInt64 = 1, withoutCoPlacement: Bool = true) {
        precondition(orders >= 1)
        self.orders = orders
        self.budgetSeconds = budgetSeconds
        self.seed = seed
        self.withoutCoPlacement = withoutCoPlacement
    }

    /// The command line's default for `graph`: 60 orders (under a second for m-SCT on the GNMT
    /// profile) on graphs of up to about 16,000 ops and edges, and proportionally fewer on larger
    /// ones, so that the search costs about what placing a graph of a million ops and edges once
    /// does; none on graphs of more than 500,000.
    public static func standard(for graph: Graph, seed: UInt64 = 1) -> SearchOptions? {
        let orders = min(standardOrders, 1_000_000 / max(1, graph.nodes.count + graph.edges.count))
        return orders >= 2 ? SearchOptions(orders: orders, seed: seed) : nil
    }

    public static let standardOrders = 60
}

/// What a search tried.
public struct SearchSummary: Sendable {
    public var seed: UInt64
    /// Plans placed and simulated, whether they fit or not.
    public var plansTried: Int
    public var plansFitting: Int
    /// Steps of the plans that fit: fastest, median, slowest.
    public var fastestMicros: Double?
    public var medianMicros: Double?
    public var slowestMicros: Double?
    /// Whether the time budget stopped the search before it had placed as often as asked.
    public var stoppedByBudget: Bool
    /// Each algorithm and preprocessing searched, with how often it placed.
    public var arms: [Arm]

    public struct Arm: Sendable {
        public var algorithm: Algorithm
        public var coPlacement: Bool
        public var plansTried: Int
        /// Its fastest plan that fits.
        public var fastestMicros: Double?
    }
}

extension Algorithm {
    /// Whether the placer chooses between equal candidates, so that its tie-break matters.
    var usesTieBreak: Bool { self == .mETF || self == .mSCT }
}

/// One run of a search over arms (an algorithm on one preprocessing).
///
/// Every arm places once with the topological order. The arms whose placer breaks ties then place
/// `orders - 1` more times each in all, round by round:
///
/// - The first rounds (a quarter of them, at most 10) use seeded random orders. Then the slower
///   half of the arms stop and hand their remaining places to the faster half. On the GNMT
///   profile, for instance, placing without co-placement is never competitive, and its places go
///   to the arm with co-placement, which then tries nearly twice as many orders at the same cost.
/// - After that, every other order is the arm's best order so far with `variedUnits` random pairs
///   of units swapped, and the others fresh random orders. The greedy is chaotic, so a variation
///   of a good order is not always good, but it is good more often than a random one: on GNMT at
///   4 devices, 3% of random orders give a step under 110 ms and 10% to 20% of variations of a
///   112 ms one.
struct PlacementSearch {
    struct Arm {
        var algorithm: Algorithm
        var planner: Planner
    }

    /// Pairs of units whose ranks a variation swaps.
    static let variedUnits = 20

    let options: SearchOptions
    private(set) var best: PlacementPlan?
    private(set) var bestOf = [Algorithm: PlacementPlan]()
    private(set) var triedOf = [Algorithm: Int]()
    private var steps = [Double]()
    private var stoppedByBudget = false
    private var armSummaries = [SearchSummary.Arm]()

    init(options: SearchOptions) {
        self.options = options
    }

    /// Runs the search over `arms` (see the type), keeping the fastest plan that fits the devices,
    /// overall and per algorithm; stops placing when `deadline` has passed. Ties keep the plan
    /// found first, so the plan without search wins a tie. A search may explore several sets of
    /// arms, one after the other (`auto` explores each algorithm's): each set is explored as if it
    /// were alone, from the same seed.
    mutating func explore(_ arms: [Arm], devices: [DeviceSpec], deadline: ContinuousClock.Instant?) {
        let limits = devices.map(\.memoryBytes)
        var random = SplitMix64(seed: options.seed)
        var randomOrders: [TieBreak] = [.topological]
        var bestOrder = [[Int32]?](repeating: nil, count: arms.count)
        let first = armSummaries.count
        armSummaries += arms.map { SearchSummary.Arm(algorithm: $0.algorithm, coPlacement: $0.planner.options.coPlacement, plansTried: 0) }
        let firstRounds = min(options.orders / 4, 10)

        func place(_ a: Int) {
            let arm = arms[a]
            let k = armSummaries[first + a].plansTried
            let tieBreak: TieBreak
            if k > firstRounds && k % 2 == 0, var ranks = bestOrder[a] {
                for _ in 0..<Self.variedUnits { ranks.swapAt(random.below(ranks.count), random.below(ranks.count)) }
                tieBreak = .ranks(ranks)
            } else {
                while randomOrders.count <= k { randomOrders.append(.shuffled(seed: random.next())) }
                tieBreak = randomOrders[k]
            }
            // The first order goes through the planner's cache: it is the plan without search.
            let result = k == 0
                ? arm.planner.attempt(arm.algorithm, devices: devices, limits: limits, tieBreak: tieBreak)
                : arm.planner.freshAttempt(arm.algorithm, devices: devices, limits: limits, tieBreak: tieBreak)
            armSummaries[first + a].plansTried += 1
            triedOf[arm.algorithm, default: 0] += 1
            guard case .success(var plan) = result else { return }
            plan.devices = devices
            steps.append(plan.makespanMicros)
            if armSummaries[first + a].fastestMicros.map({ plan.makespanMicros < $0 }) ?? true {
                armSummaries[first + a].fastestMicros = plan.makespanMicros
                if arm.algorithm.usesTieBreak { bestOrder[a] = tieBreak.priority(arm.planner.placementGraph) }
            }
            if bestOf[arm.algorithm].map({ plan.makespanMicros < $0.makespanMicros }) ?? true { bestOf[arm.algorithm] = plan }
            if best.map({ plan.makespanMicros < $0.makespanMicros }) ?? true { best = plan }
        }

        for a in arms.indices { place(a) }
        var active = arms.indices.filter { arms[$0].algorithm.usesTieBreak }
        var places = (options.orders - 1) * active.count
        var round = 1
        search: while places > 0 && !active.isEmpty {
            if round == firstRounds + 1 && active.count > 1 {
                let fastest = active.map { armSummaries[first + $0].fastestMicros ?? .infinity }
                let ranked = active.indices.sorted { (fastest[$0], active[$0]) < (fastest[$1], active[$1]) }.map { active[$0] }
                active = Array(ranked.prefix(active.count / 2)).sorted()
            }
            for a in active where places > 0 {
                if let deadline, ContinuousClock.now >= deadline {
                    stoppedByBudget = true
                    break search
                }
                place(a)
                places -= 1
            }
            round += 1
        }
        let summary = self.summary
        best?.search = summary
    }

    var summary: SearchSummary {
        let sorted = steps.sorted()
        return SearchSummary(seed: options.seed, plansTried: armSummaries.reduce(0) { $0 + $1.plansTried }, plansFitting: sorted.count,
                             fastestMicros: sorted.first, medianMicros: sorted.isEmpty ? nil : upperMedian(sorted),
                             slowestMicros: sorted.last, stoppedByBudget: stoppedByBudget, arms: armSummaries)
    }
}
