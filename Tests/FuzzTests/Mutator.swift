import Basics
import Foundation
import Testing

/// SplitMix64, so a failing input is reproduced from its seed and index on any machine.
struct FuzzRandom {
    var generator: SplitMix64
    init(seed: UInt64) { generator = SplitMix64(seed: seed ^ 0x5DEE_CE66_D1CE_4E5B) }
    mutating func next() -> UInt64 { generator.next() }
    /// Uniform in `0..<bound`; draws nothing for a bound of 1 or less (unlike `SplitMix64.below`).
    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : generator.below(bound) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// How many inputs each format gets and from which seed: a modest number by default (the test
/// command runs them on every change), more through `FEDBAECHI_FUZZ_INPUTS` for a long local run.
enum FuzzBudget {
    static let environment = ProcessInfo.processInfo.environment
    static var inputs: Int { environment["FEDBAECHI_FUZZ_INPUTS"].flatMap(Int.init).map { max(1, $0) } ?? 2000 }
    static var seed: UInt64 { environment["FEDBAECHI_FUZZ_SEED"].flatMap(UInt64.init) ?? 1 }
    /// Longer than any input should take in a debug build on a busy machine (the slowest seen, with
    /// two other builds on two cores, took 1.1 s): the readers are linear and the inputs are capped
    /// at `Mutator.maximumSize`, so an input near this is a hang in the making.
    static let slowInput: Duration = .seconds(10)
    /// A whole fuzz test's limit, growing with the budget: 10 minutes covers the default with a wide
    /// margin on a shared machine; the long run gets 2 minutes per 1,000 inputs.
    static var timeLimitMinutes: Int { max(10, 2 * inputs / 1000) }
}

/// Seeded structural and byte-level damage to valid files: what a truncated download, a flipped
/// bit, a hand edit or a hostile producer makes of them.
struct Mutator {
    /// Inputs are capped so that time per input stays bounded; the size limits are tested directly.
    static let maximumSize = 256 << 10

    /// Numbers that sit on the edges fedbaechi must handle: overflow of Int, Int32 and UInt32, the 1 TiB
    /// and 1e12 us limits, values a Double cannot hold, and not-numbers.
    static let hostileNumbers = [
        "0", "-0", "-1", "1", "0.5", "-0.5", "1e-400", "65535", "65536", "2147483647", "2147483648", "4294967296",
        "1099511627776", "1099511627777", "1e12", "1000000000001", "9007199254740993", "9e15", "1e18",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616", "1e308",
        "1e309", "-1e309", "1e400", "NaN", "nan", "Infinity", "-Infinity", "1.7976931348623157e308",
        "99999999999999999999999999999999", "0x10", "1_000", "+1", "01", "1e", "-", ".", "1.", "1.5e+3",
    ]

    var random: FuzzRandom
    let seeds: [[UInt8]]
    /// Fragments of the format (keys, punctuation, headers) that mutations insert.
    let tokens: [[UInt8]]
    /// Mutations only this format has (e.g. IDX dimension fields), each given the input.
    let special: [@Sendable (inout [UInt8], inout FuzzRandom) -> Void]
    /// Recent mutants: mutating them again reaches deeper than one round from a seed.
    private var pool: [[UInt8]] = []

    init(seed: UInt64, seeds: [Data], tokens: [String], special: [@Sendable (inout [UInt8], inout FuzzRandom) -> Void] = []) {
        random = FuzzRandom(seed: seed)
        self.seeds = seeds.map { [UInt8]($0) }
        self.tokens = tokens.map { Array($0.utf8) }
        self.special = special
    }

    /// The next input: a seed or a recent mutant with one to eight mutations.
    mutating func next() -> [UInt8] {
        var input = !pool.isEmpty && random.chance(40) ? random.pick(pool) : random.pick(seeds)
        if random.chance(25) {
            // Only values changed, the structure intact: these get past parsing to the checks of values.
            input = random.pick(seeds)
            for _ in 0...random.below(3) { replaceNumber(&input) }
        } else {
            for _ in 0...random.below(8) { mutate(&input) }
        }
        if input.count > Self.maximumSize { input.removeLast(input.count - Self.maximumSize) }
        if pool.count < 64 { pool.append(input) } else { pool[random.below(64)] = input }
        return input
    }

    private mutating func position(in input: [UInt8]) -> Int { random.below(input.count + 1) }

    private mutating func range(in input: [UInt8]) -> Range<Int> {
        let start = random.below(input.count + 1)
        let length = random.pick([1, 2, 4, 8, 16, 64, 256, 4096])
        return start..<min(input.count, start + random.below(length) + 1)
    }

    mutating func mutate(_ input: inout [UInt8]) {
        let kinds = 11 + (special.isEmpty ? 0 : 2)
        switch random.below(kinds) {
        case 0:  // flip a bit
            guard !input.isEmpty else { return }
            input[random.below(input.count)] ^= UInt8(1 << random.below(8))
        case 1:  // set a byte to something with meaning in a text format, or anything
            guard !input.isEmpty else { return }
            let meaningful = Array("{}[]\":,\\-.0123456789eE \n\t\u{0}".utf8) + [0xFF, 0xC3, 0x80, 0xE2]
            input[random.below(input.count)] = random.chance(60) ? random.pick(meaningful) : UInt8(random.below(256))
        case 2:  // insert a token of the format
            guard !tokens.isEmpty else { return }
            input.insert(contentsOf: random.pick(tokens), at: position(in: input))
        case 3:  // delete a range
            input.removeSubrange(range(in: input))
        case 4:  // duplicate a range, sometimes many times
            let r = range(in: input)
            let copies = random.chance(10) ? random.below(200) + 2 : 1
            let chunk = Array(input[r])
            let at = position(in: input)
            for _ in 0..<copies where input.count < Self.maximumSize { input.insert(contentsOf: chunk, at: at) }
        case 5:  // truncate
            input.removeLast(input.count - random.below(input.count + 1))
        case 6:  // splice: our head onto another seed's tail
            let other = random.pick(seeds)
            input = Array(input[..<random.below(input.count + 1)]) + Array(other[random.below(other.count + 1)...])
        case 7:  // replace a number with a hostile one
            replaceNumber(&input)
        case 8:  // deep nesting of arrays or objects at a random place
            let depth = random.pick([64, 511, 512, 513, 5000, 100_000])
            let (open, close): ([UInt8], [UInt8]) = random.chance(50) ? (Array("[".utf8), Array("]".utf8))
                                                                       : (Array("{\"a\":".utf8), Array("}".utf8))
            var nest = [UInt8]()
            for _ in 0..<depth { nest += open }
            if random.chance(50) { for _ in 0..<depth { nest += close } }
            input.insert(contentsOf: nest.prefix(Self.maximumSize), at: position(in: input))
        case 9:  // swap two ranges
            let a = range(in: input), b = range(in: input)
            guard a.upperBound <= b.lowerBound else { return }
            let first = Array(input[a]), second = Array(input[b])
            input.replaceSubrange(b, with: first)
            input.replaceSubrange(a, with: second)
        case 10:  // a long string or run of one byte (names of megabytes, long digit strings)
            let byte = random.pick(Array("a9\"\\ \u{1}".utf8))
            input.insert(contentsOf: [UInt8](repeating: byte, count: random.pick([100, 5000, 70_000])), at: position(in: input))
        default:
            random.pick(special)(&input, &random)
        }
    }

    /// Finds a number (a run of digits, with its sign, point and exponent) and puts a hostile one in its place.
    private mutating func replaceNumber(_ input: inout [UInt8]) {
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        func isNumberByte(_ b: UInt8) -> Bool { isDigit(b) || b == 0x2D || b == 0x2B || b == 0x2E || b == 0x65 || b == 0x45 }
        let replacement = Array(random.pick(Self.hostileNumbers).utf8)
        guard !input.isEmpty else { input = replacement; return }
        var at = random.below(input.count)
        var tries = 0
        while !isDigit(input[at]) && tries < input.count { at = (at + 1) % input.count; tries += 1 }
        guard isDigit(input[at]) else { input.insert(contentsOf: replacement, at: at); return }
        var start = at, end = at
        while start > 0 && isNumberByte(input[start - 1]) { start -= 1 }
        while end < input.count && isNumberByte(input[end]) { end += 1 }
        input.replaceSubrange(start..<end, with: replacement)
    }
}

/// What a run tried, for the figures in docs/reliability.md.
struct FuzzReport: CustomStringConvertible {
    var format: String
    var inputs = 0
    var accepted = 0
    var rejected = 0
    var seconds = 0.0
    var slowest = Duration.zero
    var seed: UInt64

    var description: String {
        let slowestMs = Double(slowest.components.seconds) * 1000 + Double(slowest.components.attoseconds) * 1e-15
        return "fuzz \(format): \(inputs) inputs (\(accepted) accepted, \(rejected) rejected) in "
            + String(format: "%.1f s, slowest input %.1f ms, seed %llu", seconds, slowestMs, seed)
    }
}

enum FuzzOutcome {
    case accepted
    /// Rejected with this message, which must be one line.
    case rejected(String)
}

/// Feeds `count` mutants to `body`, failing the test for a wrong error, a bad message or a slow
/// input (a crash or a trap ends the test process, a failure by itself). Returns the figures.
@discardableResult
func fuzz(_ format: String, mutator: inout Mutator, count: Int = FuzzBudget.inputs, seed: UInt64,
          sourceLocation: SourceLocation = #_sourceLocation,
          _ body: ([UInt8]) throws -> FuzzOutcome) rethrows -> FuzzReport {
    var report = FuzzReport(format: format, seed: seed)
    let clock = ContinuousClock()
    let started = clock.now
    var problems = 0
    for index in 0..<count {
        let input = mutator.next()
        let before = clock.now
        let outcome = try body(input)
        let took = clock.now - before
        report.slowest = max(report.slowest, took)
        report.inputs += 1
        func fail(_ what: String) {
            problems += 1
            guard problems <= 5 else { return }
            let preview = String(decoding: input.prefix(200), as: UTF8.self)
            Issue.record("\(format) input \(index) (seed \(seed), \(input.count) bytes): \(what); starts \(preview.debugDescription)",
                         sourceLocation: sourceLocation)
        }
        if took > FuzzBudget.slowInput { fail("took \(took)") }
        switch outcome {
        case .accepted: report.accepted += 1
        case .rejected(let message):
            report.rejected += 1
            if message.isEmpty { fail("rejected with an empty message") }
            if message.contains(where: { $0.isNewline }) { fail("message is not one line: \(message.debugDescription)") }
            if message.count > 1000 { fail("message of \(message.count) characters") }
        }
    }
    let elapsed = clock.now - started
    report.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    print(report)
    return report
}
