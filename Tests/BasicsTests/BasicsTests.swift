import Basics
import Testing

@Suite struct SplitMix64Tests {
    /// The reference implementation's outputs (Vigna, splitmix64.c): seed 0 and seed 1234567.
    @Test func matchesTheReferenceOutputs() {
        var zero = SplitMix64(seed: 0)
        #expect((0..<5).map { _ in zero.next() }
                == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC, 0x1B39_896A_51A8_749B])
        var other = SplitMix64(seed: 1_234_567)
        #expect((0..<5).map { _ in other.next() }
                == [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
                    4_593_380_528_125_082_431, 16_408_922_859_458_223_821])
    }

    /// Streams: the same name and index give the same numbers, another name or index others.
    @Test func streamsAreReproducibleAndDistinct() {
        var a = SplitMix64(seed: 5, stream: "init/w", index: 2)
        var same = SplitMix64(seed: 5, stream: "init/w", index: 2)
        var otherName = SplitMix64(seed: 5, stream: "init/b", index: 2)
        var otherIndex = SplitMix64(seed: 5, stream: "init/w", index: 3)
        let first = (0..<4).map { _ in a.next() }
        #expect(first == (0..<4).map { _ in same.next() })
        #expect(first != (0..<4).map { _ in otherName.next() })
        #expect(first != (0..<4).map { _ in otherIndex.next() })
    }

    /// `below` is the remainder of one word, `between` is `below` shifted; both stay in range.
    @Test func belowAndBetween() {
        var random = SplitMix64(seed: 9)
        var twin = SplitMix64(seed: 9)
        for bound in [1, 2, 3, 7, 100, 65_537] {
            let value = random.below(bound)
            #expect(value == Int(twin.next() % UInt64(bound)))
            #expect((0..<bound).contains(value))
        }
        #expect(random.below(0) == 0)
        for _ in 0..<200 { #expect((-3...4).contains(random.between(-3, 4))) }
        var seen = Set<Int>()
        for _ in 0..<500 { seen.insert(random.below(6)) }
        #expect(seen == Set(0..<6), "every value of a small range comes up")
    }

    /// `nextIndex(below:)` is the multiply-shift of the top 32 bits, in range, every value reached;
    /// `permutation` is a permutation that depends on the seed.
    @Test func nextIndexAndPermutation() {
        var random = SplitMix64(seed: 3)
        var twin = SplitMix64(seed: 3)
        for bound in [1, 2, 10, 1000, 1 << 31, 1 << 32] {
            let value = random.nextIndex(below: bound)
            #expect(value == Int(((twin.next() >> 32) * UInt64(bound)) >> 32))
            #expect((0..<bound).contains(value))
        }
        var seen = Set<Int>()
        for _ in 0..<500 { seen.insert(random.nextIndex(below: 6)) }
        #expect(seen == Set(0..<6), "every value of a small range comes up")
        let order = random.permutation(50)
        #expect(order.sorted() == Array(0..<50))
        var other = SplitMix64(seed: 77)
        #expect(order != other.permutation(50))
        #expect(random.permutation(0) == [] && random.permutation(1) == [0])
    }

    @Test func unitFloatsUseTwentyFourBits() {
        var random = SplitMix64(seed: 11)
        var twin = SplitMix64(seed: 11)
        for _ in 0..<100 {
            let value = random.nextUnitFloat()
            #expect(value >= 0 && value < 1)
            #expect(value == Float(twin.next() >> 40) / 16_777_216)
        }
    }
}

@Suite struct MedianTests {
    @Test func middleOfOddAndEvenCounts() {
        #expect(median([5, 1, 3]) == 3)
        #expect(median([4, 1, 3, 2]) == 2.5)
        #expect(median([7]) == 7)
        #expect(median([]) == 0)
        #expect(median([2, 2, 9, 9]) == 5.5)
    }

    @Test func upperMedianIsAnElement() {
        #expect(upperMedian([5.0, 1, 3]) == 3)
        #expect(upperMedian([4.0, 1, 3, 2]) == 3)
        #expect(upperMedian([7]) == 7)
        #expect(upperMedian(["b", "a"]) == "b")
    }
}

@Suite struct MinHeapTests {
    /// Pops come out in sorted order on random input with repeats, interleaved with pushes.
    @Test(arguments: [1, 2, 3, 4, 5])
    func popsInSortedOrder(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var heap = MinHeap<Int>()
        var reference = [Int]()
        var popped = [Int]()
        var expected = [Int]()
        for _ in 0..<500 {
            if random.below(3) == 0, !reference.isEmpty {
                reference.sort()
                expected.append(reference.removeFirst())
                popped.append(heap.pop()!)
            } else {
                let value = random.below(50)
                heap.push(value)
                reference.append(value)
            }
            #expect(heap.count == reference.count)
            #expect(heap.top == reference.min())
        }
        while let value = heap.pop() { popped.append(value) }
        expected += reference.sorted()
        #expect(popped == expected)
        #expect(heap.isEmpty && heap.pop() == nil)
    }
}

@Suite struct UnionFindTests {
    /// Random unions agree with a naive partition (a label per element, relabelled on every join).
    @Test(arguments: [1, 2, 3])
    func agreesWithANaivePartition(seed: UInt64) {
        let count = 60
        var random = SplitMix64(seed: seed)
        var sets = UnionFind<Int32>(count: count)
        var label = Array(0..<count)
        for step in 0..<80 {
            let (a, b) = (random.below(count), random.below(count))
            let root = step % 2 == 0 ? sets.union(Int32(a), Int32(b)) : sets.merge(Int32(b), into: Int32(a))
            let (from, to) = (label[b], label[a])
            for i in 0..<count where label[i] == from { label[i] = to }
            #expect(sets.find(Int32(a)) == root && sets.find(Int32(b)) == root)
        }
        for i in 0..<count {
            for j in 0..<count {
                #expect((sets.find(Int32(i)) == sets.find(Int32(j))) == (label[i] == label[j]))
            }
        }
    }

    /// `merge(_:into:)` keeps the root of the set merged into, whatever the sizes; `union` the larger set's.
    @Test func whichRootSurvives() {
        var sets = UnionFind<Int>(count: 0)
        for _ in 0..<5 { _ = sets.append() }
        #expect(sets.count == 5)
        sets.union(1, 2)
        sets.union(1, 3)
        #expect(sets.merge(1, into: 4) == 4, "the small set's root stays")
        var bySize = UnionFind<Int>(count: 5)
        bySize.union(1, 2)
        bySize.union(1, 3)
        #expect(bySize.union(4, 1) == bySize.find(1), "the larger set's root stays")
        #expect(bySize.union(0, 0) == 0)
    }
}

@Suite struct QuantityTests {
    @Test func readsMemorySizes() throws {
        #expect(try Quantity.bytes("2GiB") == 2 << 30)
        #expect(try Quantity.bytes("8 GB") == 8_000_000_000)
        #expect(try Quantity.bytes(" 16GiB ") == 16 << 30)
        #expect(try Quantity.bytes("1073741824B") == 1 << 30)
        #expect(try Quantity.bytes("1.5MiB") == 1_572_864)
        #expect(try Quantity.bytes("512k") == 512 << 10)
    }

    @Test func refusesWhatIsNotAMemorySize() {
        // A number without a unit is refused: `1.5` would otherwise be 2 bytes.
        for text in ["1073741824", "1.5", "lots", "-1GB", "", "GiB", "3 parsecs", String(repeating: "9", count: 100) + "B"] {
            #expect(throws: Quantity.ParseError.self, "\(text)") { try Quantity.bytes(text) }
        }
        #expect(throws: Quantity.ParseError.self) { try Quantity.bytes("2EiB") }
        #expect(throws: Quantity.ParseError.self) { try Quantity.bytes("2000000TiB") }
    }

    /// What `formatBytes` prints reads back as the same size for whole binary units.
    @Test func formatReadsBack() throws {
        for bytes in [0, 1, 1023, 1024, 3 << 20, 8 << 30, 5 << 40, 1536] {
            let text = Quantity.formatBytes(bytes)
            #expect(try Quantity.bytes(text) == bytes, "\(text)")
        }
        #expect(Quantity.formatBytes(8 << 30) == "8 GiB")
        #expect(Quantity.formatBytes(123) == "123 B")
    }

    @Test func ratesAndDurations() throws {
        #expect(try Quantity.bandwidth("5.7GB/s") == 5.7e9)
        #expect(try Quantity.bandwidth("100Gb/s") == 12.5e9)
        #expect(try Quantity.bandwidth("10Gbit/s") == 1.25e9)
        #expect(throws: Quantity.ParseError.self) { try Quantity.bandwidth("5.7GB") }
        #expect(try Quantity.micros("134us") == 134)
        #expect(try Quantity.micros("0.2ms") == 200)
        #expect(try Quantity.micros("1s") == 1e6)
        #expect(throws: Quantity.ParseError.self) { try Quantity.micros("2e12us") }
        #expect(Quantity.formatMicros(140_920) == "140.9 ms")
        #expect(Quantity.formatMicros(1e300).hasSuffix(" s"))
    }
}

@Suite struct OptimizerTests {
    @Test func stateSlotsAndLearningRates() {
        let slots = Dictionary(uniqueKeysWithValues: OptimizerKind.allCases.map { ($0, $0.stateSlots) })
        #expect(slots == [.sgd: 0, .momentum: 1, .adam: 2, .rmsprop: 1])
        #expect(OptimizerKind.sgd.defaultLearningRate == 0.01 && OptimizerKind.momentum.defaultLearningRate == 0.01)
        #expect(OptimizerKind.adam.defaultLearningRate == 0.001 && OptimizerKind.rmsprop.defaultLearningRate == 0.001)
        #expect(OptimizerKind(rawValue: "momentum") == .momentum)
    }

    /// Weights, a gradient of the same size, and one copy per state slot.
    @Test func parameterMemory() {
        #expect(ParameterMemory.bytes(elements: 10, elementSize: 4, optimizer: .adam) == 160)
        #expect(ParameterMemory.bytes(elements: 10, elementSize: 4, optimizer: .sgd) == 80)
        #expect(ParameterMemory.bytes(elements: 3, elementSize: 2, optimizer: .momentum) == 18)
        let memory = ParameterMemory(weightBytes: 100, stateSlots: 2)
        #expect(memory.weightBytes == 100 && memory.gradientBytes == 100 && memory.stateBytes == 200)
        #expect(memory.totalBytes == 400)
    }
}
