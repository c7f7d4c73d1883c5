import Basics
import Foundation
import Testing
@testable import Placement

/// Links per pair of devices: the fit of measured times, the simulator and m-ETF with a fast and a slow
/// pair, and the device file's `"links"` object.
@Suite struct LinksTests {
    static let sizes = [8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 2 << 20, 16 << 20]

    // MARK: - Fit

    @Test func fitRecoversAnExactLine() throws {
        let truth = LinkModel(bytesPerSecond: 3.2e9, latencyMicros: 7.5)
        let fit = try LinkFit.fit(bytes: Self.sizes, micros: Self.sizes.map { truth.micros(forBytes: $0) })
        #expect(abs(fit.link.latencyMicros / 7.5 - 1) < 1e-9)
        #expect(abs(fit.link.bytesPerSecond / 3.2e9 - 1) < 1e-9)
        #expect(fit.maxRelativeResidual < 1e-9)
        #expect(abs(fit.rSquared - 1) < 1e-9)
    }

    /// Seeded noise of up to ±4% on every time: the fit stays within a few percent of the truth, and its
    /// error figures say the points are off the line by about the noise.
    @Test func fitOfNoisyTimesStaysNearTheTruthAndReportsTheNoise() throws {
        let truth = LinkModel(bytesPerSecond: 5e9, latencyMicros: 2)
        var random = SplitMix64(seed: 19)
        var worstNoise = 0.0
        let micros = Self.sizes.map { size -> Double in
            let noise = (Double(random.next() % 10_001) / 10_000 - 0.5) * 0.08
            worstNoise = max(worstNoise, abs(noise))
            return truth.micros(forBytes: size) * (1 + noise)
        }
        let fit = try LinkFit.fit(bytes: Self.sizes, micros: micros)
        #expect(abs(fit.link.latencyMicros / 2 - 1) < 0.06, "latency \(fit.link.latencyMicros)")
        #expect(abs(fit.link.bytesPerSecond / 5e9 - 1) < 0.06, "bandwidth \(fit.link.bytesPerSecond)")
        #expect(fit.maxRelativeResidual > 0.005 && fit.maxRelativeResidual < 2 * worstNoise + 0.01)
        #expect(fit.rSquared > 0.99 && fit.rSquared < 1)
        // The residual is the measured time's distance from the fitted line, recomputed here.
        let worst = zip(Self.sizes, micros).map { abs($1 - fit.link.micros(forBytes: $0)) / $1 }.max()!
        #expect(abs(worst - fit.maxRelativeResidual) < 1e-12)
    }

    @Test func fitNeverGivesANegativeLatency() throws {
        // Times that a line would meet below zero bytes: the latency is 0 and the slope refitted.
        var micros = Self.sizes.map { Double($0) / 1000 }
        micros[0] /= 2
        let fit = try LinkFit.fit(bytes: Self.sizes, micros: micros)
        #expect(fit.link.latencyMicros == 0)
        #expect(fit.link.bytesPerMicrosecond > 0)
    }

    @Test func fitRefusesWhatNoLineDescribes() {
        #expect(throws: LinkFit.Failure.self) { try LinkFit.fit(bytes: [64, 64], micros: [1, 1.1]) }
        #expect(throws: LinkFit.Failure.self) { try LinkFit.fit(bytes: [8, 64, 512], micros: [3, 2, 1]) }
        #expect(throws: LinkFit.Failure.self) { try LinkFit.fit(bytes: [8, 64], micros: [1, .nan]) }
        #expect(throws: LinkFit.Failure.self) { try LinkFit.fit(bytes: [8, 64], micros: [0, 1]) }
    }

    // MARK: - Links

    static let fast = LinkModel(bytesPerMicrosecond: 1000, latencyMicros: 1)
    static let slow = LinkModel(bytesPerMicrosecond: 100, latencyMicros: 50)

    @Test func linksArePerPairAndSymmetric() {
        let links = Links(standard: Self.slow, pairs: [DevicePair(1, 0): Self.fast])
        #expect(links.between(0, 1) == Self.fast && links.between(1, 0) == Self.fast)
        #expect(links.between(0, 2) == Self.slow && links.between(2, 1) == Self.slow)
        #expect(links.table(deviceCount: 3) == [Self.slow, Self.fast, Self.slow, Self.fast, Self.slow, Self.slow, Self.slow, Self.slow, Self.slow])
        #expect(!links.isUniform)
        // A pair given the standard link is no exception.
        #expect(Links(standard: Self.fast, pairs: [DevicePair(0, 1): Self.fast]).isUniform)
        // The slowest: highest latency, lowest bandwidth of all.
        let mixed = Links(standard: LinkModel(bytesPerMicrosecond: 500, latencyMicros: 3),
                          pairs: [DevicePair(0, 1): LinkModel(bytesPerMicrosecond: 900, latencyMicros: 9)])
        #expect(mixed.slowest == LinkModel(bytesPerMicrosecond: 500, latencyMicros: 9))
        #expect(Links(Self.fast).slowest == Self.fast)
    }

    /// a (10 us, 1000 B out) on device 0 feeds b on device 1 (fast pair: 1 + 1000/1000 = 2 us) and c on
    /// device 2 (slow: 50 + 1000/100 = 60 us), edges in that order, one channel per device:
    /// a 0-10; a->b 10-12; a->c waits for device 0's channel: 12-72; b 12-22; c 72-82.
    @Test func simulatorCostsEachTransferWithItsPairsLink() throws {
        let graph = try Graph(name: "fork", nodes: [Node(name: "a", computeMicros: 10, outputBytes: [1000]),
                                                    Node(name: "b", computeMicros: 10), Node(name: "c", computeMicros: 10)],
                              edges: [Edge(source: 0, destination: 1), Edge(source: 0, destination: 2)])
        let links = Links(standard: Self.slow, pairs: [DevicePair(0, 1): Self.fast])
        let result = Simulator.simulate(graph, links: links, deviceOfNode: [0, 1, 2], deviceCount: 3)
        #expect(result.startMicros == [0, 12, 72])
        #expect(result.makespanMicros == 82)
        #expect(result.transfers.map { [$0.startMicros, $0.endMicros] } == [[10, 12], [12, 72]])
        // Replaying the same order gives the same step.
        let replayed = try Simulator.replay(graph, links: links, deviceOfNode: [0, 1, 2], deviceCount: 3, schedule: result.schedule)
        #expect(replayed.startMicros == result.startMicros && replayed.makespanMicros == 82)
        // Uniform links: both slow (a->b 10-70, a->c 70-130) or both fast (10-12, 12-14).
        #expect(Simulator.simulate(graph, link: Self.slow, deviceOfNode: [0, 1, 2], deviceCount: 3).makespanMicros == 140)
        #expect(Simulator.simulate(graph, link: Self.fast, deviceOfNode: [0, 1, 2], deviceCount: 3).makespanMicros == 24)
    }

    /// a (10 us) feeds b and c (10 us each) on 3 devices; device 0 and device 2 share a fast link, every
    /// other pair is slow. m-ETF runs a on device 0, then b there at 10; c would start on device 0 at 20,
    /// on device 1 at 10 + 60 = 70 and on device 2 at 10 + 2 = 12: device 2. (With one link for every
    /// pair, c goes to device 0 when it is slow and device 1, the lower of two ties, when it is fast.)
    /// m-SCT's linear program marks no favourite child in this symmetric fork, so its list scheduler
    /// decides as m-ETF's does, with the same per-pair costs.
    @Test(arguments: [Algorithm.mETF, .mSCT])
    func listSchedulerTakesTheDeviceAcrossTheFastLink(_ algorithm: Algorithm) throws {
        let graph = try Graph(name: "fork", nodes: [Node(name: "a", computeMicros: 10, outputBytes: [1000]),
                                                    Node(name: "b", computeMicros: 10), Node(name: "c", computeMicros: 10)],
                              edges: [Edge(source: 0, destination: 1), Edge(source: 0, destination: 2)])
        func plan(_ links: Links) throws -> PlacementPlan {
            try Planner(graph: graph, links: links).plan(algorithm, devices: devices(3)).get()
        }
        let links = Links(standard: Self.slow, pairs: [DevicePair(0, 2): Self.fast])
        if algorithm == .mSCT {
            let pg = Planner(graph: graph, links: links).placementGraph
            #expect(try MSCTPlacer().linearProgram(for: pg).favoriteChildren(pg, threshold: 0.1) == [-1, -1, -1])
        }
        let measured = try plan(links)
        #expect(measured.deviceOfNode == [0, 0, 2])
        #expect(measured.makespanMicros == 22)
        #expect(try plan(Links(Self.slow)).deviceOfNode == [0, 0, 0])
        #expect(try plan(Links(Self.fast)).deviceOfNode == [0, 0, 1])
    }

    /// Uniform links given as `Links` plan exactly as the single link does (same placement, same times).
    @Test func uniformLinksPlanAsTheOneLink() throws {
        let graph = try fig1()
        for algorithm in [Algorithm.mTOPO, .mETF, .mSCT] {
            let one = try Planner(graph: graph, link: .baechi).plan(algorithm, devices: devices(2)).get()
            let links = try Planner(graph: graph, links: Links(standard: .baechi, pairs: [DevicePair(0, 1): .baechi])).plan(algorithm, devices: devices(2)).get()
            #expect(one.deviceOfNode == links.deviceOfNode)
            #expect(one.simulation.startMicros == links.simulation.startMicros)
        }
    }

    // MARK: - The device file

    func pair(_ a: Int, _ b: Int, hosts: [String], latency: Double = 1.5, bandwidth: Double = 4e9) -> MeasuredLinks.Pair {
        MeasuredLinks.Pair(ranks: [a, b], hosts: [hosts[a], hosts[b]],
                           fit: LinkFit(link: LinkModel(bytesPerSecond: bandwidth, latencyMicros: latency), rSquared: 1, maxRelativeResidual: 0.01),
                           points: [[8, latency], [64, latency + 64 / bandwidth * 1e6]])
    }

    @Test func measuredLinksBecomeLinksPerPair() throws {
        let hosts = ["n1", "n1", "n2"]
        let measured = MeasuredLinks(hosts: hosts, pairs: [pair(0, 1, hosts: hosts, latency: 1, bandwidth: 8e9),
                                                           pair(0, 2, hosts: hosts, latency: 30, bandwidth: 1e9),
                                                           pair(1, 2, hosts: hosts, latency: 25, bandwidth: 1.2e9)])
        #expect(measured.problem() == nil)
        let links = measured.links
        #expect(links.between(1, 0) == LinkModel(bytesPerSecond: 8e9, latencyMicros: 1))
        #expect(links.between(2, 1) == LinkModel(bytesPerSecond: 1.2e9, latencyMicros: 25))
        #expect(links.standard == LinkModel(bytesPerSecond: 1e9, latencyMicros: 30))
        // Written and read back through a file.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("links-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: url) }
        var data = Data(#"{"links": "#.utf8)
        data += try JSONEncoder().encode(measured)
        data += Data("}".utf8)
        try data.write(to: url)
        #expect(try MeasuredLinks.read(path: url.path) == measured)
    }

    @Test func badLinksAreRefusedWithTheReason() throws {
        let hosts = ["n1", "n2", "n2"]
        let all = [pair(0, 1, hosts: hosts), pair(0, 2, hosts: hosts), pair(1, 2, hosts: hosts)]
        func problem(_ pairs: [MeasuredLinks.Pair], hosts: [String] = hosts) -> String {
            MeasuredLinks(hosts: hosts, pairs: pairs).problem() ?? "accepted"
        }
        #expect(problem(Array(all.prefix(2))).contains("2 of the 3 pairs"))
        #expect(problem(Array(all.prefix(2))).contains("ranks 1 and 2 are missing"))
        #expect(problem(all + [all[0]]).contains("listed twice"))
        var wrongHost = all
        wrongHost[1].hosts = ["n1", "n1"]
        #expect(problem(wrongHost).contains("names hosts"))
        var negative = all
        negative[2].latencyMicros = -1
        #expect(problem(negative).contains("latency"))
        var noBandwidth = all
        noBandwidth[0].bandwidthBytesPerSecond = 0
        #expect(problem(noBandwidth).contains("bandwidth"))
        var outside = all
        outside[2].ranks = [1, 3]
        #expect(problem(outside).contains("below 3"))
        #expect(problem([], hosts: ["n1"]).contains("between 2 and 65536"))

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("links-bad-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func read(_ text: String) -> String {
            let path = folder.appendingPathComponent("f.json").path
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            do { _ = try MeasuredLinks.read(path: path); return "accepted" } catch { return error.description }
        }
        #expect(read("not json").contains("expected a device file with a \"links\" object"))
        #expect(read(#"{"cost_model": {}}"#).contains("has no \"links\" object"))
        #expect(read(#"{"links": {"ranks": 2, "hosts": ["a", "b"], "pairs": []}}"#).contains("0 of the 1 pairs"))
        #expect((try? MeasuredLinks.read(path: folder.appendingPathComponent("absent.json").path)) == nil)
    }
}
