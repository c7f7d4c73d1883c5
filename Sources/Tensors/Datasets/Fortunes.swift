import Foundation

/// Token ids for words, with an unknown token for everything outside it.
public struct Vocabulary: Sendable {
    public static let unknown = "<unk>"
    public static let endOfText = "<eos>"
    public private(set) var tokens: [String]
    private var ids: [String: Int]

    /// The most frequent tokens seen at least `minimumCount` times, at most `limit` in all
    /// (ties broken alphabetically, so the vocabulary does not depend on file order).
    public init(counting streams: [[String]], limit: Int, minimumCount: Int = 2) {
        var counts: [String: Int] = [:]
        for stream in streams { for token in stream { counts[token, default: 0] += 1 } }
        counts[Self.unknown] = nil
        counts[Self.endOfText] = nil
        let frequent = counts.filter { $0.value >= minimumCount }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(max(0, limit - 2)).map(\.key)
        tokens = [Self.unknown, Self.endOfText] + frequent
        ids = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($0.element, $0.offset) })
    }

    public var count: Int { tokens.count }

    public func id(_ token: String) -> Int { ids[token] ?? 0 }
}

/// Fixed-length training sequences: `inputs[i]` are `steps` token ids, `targets[i]` the next token of each.
public struct TokenSequences: Sendable {
    public var steps: Int
    public var inputs: [Float] = []
    public var targets: [Float] = []
    public var count: Int { inputs.count / max(1, steps) }

    public init(steps: Int) { self.steps = steps }

    /// Cuts a token stream into sequences of `steps` inputs and the `steps` tokens that follow each.
    public init(stream: [Int], steps: Int) {
        self.steps = steps
        var start = 0
        while start + steps < stream.count {
            inputs += stream[start..<(start + steps)].map { Float($0) }
            targets += stream[(start + 1)...(start + steps)].map { Float($0) }
            start += steps
        }
    }

    public mutating func append(_ other: TokenSequences) {
        inputs += other.inputs
        targets += other.targets
    }

    public func batch<Indices: Collection<Int>>(_ indices: Indices) -> (inputs: Tensor, targets: Tensor) {
        var x: [Float] = []
        var y: [Float] = []
        for i in indices {
            x += inputs[(i * steps)..<((i + 1) * steps)]
            y += targets[(i * steps)..<((i + 1) * steps)]
        }
        return (Tensor(shape: [indices.count, steps], data: x), Tensor(shape: [indices.count, steps], data: y))
    }

    public func prefix(_ limit: Int) -> TokenSequences {
        guard limit < count else { return self }
        var result = TokenSequences(steps: steps)
        result.inputs = Array(inputs[..<(limit * steps)])
        result.targets = Array(targets[..<(limit * steps)])
        return result
    }
}

/// Debian's fortune cookie files as a next-word corpus: one category per file, fortunes separated by
/// lines holding "%". Every tenth fortune of a category is held out for testing. The category is the
/// natural split for federated sites.
public struct FortunesCorpus: Sendable {
    public var vocabulary: Vocabulary
    /// Category names, sorted.
    public var categories: [String]
    public var train: [String: TokenSequences]
    public var test: [String: TokenSequences]

    public var allTrain: TokenSequences { merged(train) }
    public var allTest: TokenSequences { merged(test) }

    private func merged(_ split: [String: TokenSequences]) -> TokenSequences {
        var all = TokenSequences(steps: split.values.first?.steps ?? 1)
        for category in categories { if let part = split[category] { all.append(part) } }
        return all
    }

    /// Lower-cased words (letters, digits, and apostrophes after the first letter) and single punctuation marks.
    public static func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        var word = ""
        for character in text.lowercased() {
            if character.isLetter || character.isNumber || (character == "'" && !word.isEmpty) {
                word.append(character)
            } else {
                if !word.isEmpty { tokens.append(word); word = "" }
                if character.isPunctuation || character.isSymbol { tokens.append(String(character)) }
            }
        }
        if !word.isEmpty { tokens.append(word) }
        return tokens
    }

    /// The fortunes of one file, checked to be text.
    public static func fortunes(inFile path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError.corrupt(file: path, reason: "cannot be read")
        }
        if data.contains(0) {
            throw DatasetError.corrupt(file: path, reason: "holds binary data (NUL bytes), not text")
        }
        let text = String(decoding: data, as: UTF8.self)
        let replaced = text.unicodeScalars.filter { $0 == "\u{FFFD}" }.count
        if replaced * 100 > max(1, text.unicodeScalars.count) {
            throw DatasetError.corrupt(file: path, reason: "is not UTF-8 text (\(replaced) undecodable bytes)")
        }
        var fortunes: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "%" {
                if !current.isEmpty { fortunes.append(current.joined(separator: "\n")) }
                current = []
            } else {
                current.append(line)
            }
        }
        if current.contains(where: { !$0.isEmpty }) { fortunes.append(current.joined(separator: "\n")) }
        return fortunes
    }

    /// Loads every category file in `directory` (index files *.dat and the *.u8 links skipped).
    public static func load(directory: String = KnownDataset.fortunes.defaultDirectory, steps: Int = 20,
                            vocabularyLimit: Int = 10_000) throws -> FortunesCorpus {
        let dataset = KnownDataset.fortunes
        guard dataset.missingFiles(in: directory).isEmpty else {
            throw DatasetError.missing(dataset: dataset.rawValue, path: directory, debianPackage: dataset.debianPackage)
        }
        let names = KnownDataset.fortuneFiles(in: directory)
        guard !names.isEmpty else {
            throw DatasetError.missing(dataset: dataset.rawValue, path: directory + "/*", debianPackage: dataset.debianPackage)
        }
        var trainTokens: [String: [String]] = [:]
        var testTokens: [String: [String]] = [:]
        for name in names {
            for (index, fortune) in try fortunes(inFile: directory + "/" + name).enumerated() {
                let tokens = tokenize(fortune) + [Vocabulary.endOfText]
                if index % 10 == 9 { testTokens[name, default: []] += tokens } else { trainTokens[name, default: []] += tokens }
            }
        }
        let vocabulary = Vocabulary(counting: names.compactMap { trainTokens[$0] }, limit: vocabularyLimit)
        func sequences(_ tokens: [String: [String]]) -> [String: TokenSequences] {
            tokens.mapValues { TokenSequences(stream: $0.map(vocabulary.id), steps: steps) }
        }
        return FortunesCorpus(vocabulary: vocabulary, categories: names, train: sequences(trainTokens),
                              test: sequences(testTokens))
    }
}
