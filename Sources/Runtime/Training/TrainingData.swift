import Basics
import Federated
import Foundation
import Tensors

/// What a run's data are, without the examples: every rank of a model-parallel job knows this,
/// whatever it loads.
struct DataDescription: Codable, Sendable {
    var summary: String
    var trainCount: Int
    var testCount: Int
    /// A text corpus's vocabulary (nil for images).
    var vocabulary: Int?

    /// Refuses a data set too small to train on or score.
    func requireExamples(spec: ModelSpec) throws {
        guard trainCount > 0, testCount > 0 else {
            throw Refusal("\(summary) gives \(trainCount) training and \(testCount) test examples: "
                          + "too little text for sequences of \(spec.steps) tokens")
        }
    }
}

/// The examples a run trains and scores on, with a line that says what they are.
struct TrainingData {
    var train: Examples
    var test: Examples
    var summary: String

    var description: DataDescription {
        DataDescription(summary: summary, trainCount: train.count, testCount: test.count)
    }

    /// Loads the examples a model trains on (`spec.vocabulary` is set from a text corpus); a `DatasetError`
    /// says what is missing or damaged and carries its exit status.
    static func load(_ settings: TrainingSettings, spec: inout ModelSpec, testLimit: Int?) throws -> TrainingData {
        if let file = settings.file { return try load(file, trainLimit: settings.limitTrain, testLimit: testLimit) }
        let dataset = settings.dataset
        let directory = settings.dataDirectory
        switch dataset {
        case .fashionMNIST:
            let data = try FashionMNIST.load(directory: directory ?? dataset.defaultDirectory,
                                             trainLimit: settings.limitTrain, testLimit: testLimit)
            return TrainingData(train: .images(data.train), test: .images(data.test), summary: "fashion-mnist")
        case .fortunes:
            let corpus = try FortunesCorpus.load(directory: directory ?? dataset.defaultDirectory, steps: spec.steps)
            spec.vocabulary = corpus.vocabulary.count
            var train = Examples.text(corpus.allTrain)
            var test = Examples.text(corpus.allTest)
            if let limit = settings.limitTrain { train = train.prefix(limit) }
            if let testLimit { test = test.prefix(testLimit) }
            return TrainingData(train: train, test: test,
                                summary: "fortunes (\(corpus.categories.count) categories, vocabulary \(corpus.vocabulary.count))")
        }
    }

    /// Refuses a data set too small to train on or score.
    func requireExamples(spec: ModelSpec) throws { try description.requireExamples(spec: spec) }

    /// The user's files for a model read from a file.
    static func load(_ file: ModelFile, trainLimit: Int?, testLimit: Int?) throws -> TrainingData {
        guard let trainPath = file.trainData, let testPath = file.testData else {
            throw Refusal("a model file trains on --train-data FILE.npz and is scored on --test-data FILE.npz")
        }
        let train = try file.examples(trainPath, limit: trainLimit)
        let test = try file.examples(testPath, limit: testLimit)
        func name(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }
        return TrainingData(train: .images(train), test: .images(test),
                            summary: "\(name(trainPath)) (\(train.count) examples), \(name(testPath)) (\(test.count))")
    }
}

/// The part of the data one model-parallel rank holds: only the inputs its nodes read, in training
/// (`train`) and in evaluation (`test`); a rank that reads no input holds no example.
struct RankData {
    var description: DataDescription
    var train: Examples?
    var test: Examples?
    /// The inputs held for training and for evaluation.
    var trainFeeds: Set<String>
    var testFeeds: Set<String>

    /// What the data are, counted as a rank without examples counts them: image files' headers only;
    /// a text corpus is read for its vocabulary (the model's shape depends on it) and then dropped.
    static func describe(_ settings: TrainingSettings, spec: inout ModelSpec) throws -> DataDescription {
        if let file = settings.file {
            return try TrainingData.load(file, trainLimit: settings.limitTrain, testLimit: settings.limitTest).description
        }
        switch settings.dataset {
        case .fashionMNIST:
            let data = try FashionMNIST.load(directory: settings.dataDirectory ?? settings.dataset.defaultDirectory,
                                             trainLimit: settings.limitTrain, testLimit: settings.limitTest, train: [], test: [])
            return DataDescription(summary: "fashion-mnist", trainCount: data.train.count, testCount: data.test.count)
        case .fortunes:
            var description = try TrainingData.load(settings, spec: &spec, testLimit: settings.limitTest).description
            description.vocabulary = spec.vocabulary
            return description
        }
    }

    /// Loads the examples' parts that `trainFeeds` and `testFeeds` name (model inputs).
    static func load(_ settings: TrainingSettings, description: DataDescription, spec: ModelSpec,
                     trainFeeds: Set<String>, testFeeds: Set<String>) throws -> RankData {
        var data = RankData(description: description, trainFeeds: trainFeeds, testFeeds: testFeeds)
        if let file = settings.file {
            // The examples' parts this rank's nodes read; the files are read whole, then only those kept.
            let task = file.model.task
            func parts(_ examples: Examples, _ feeds: Set<String>) -> Examples? {
                guard case .images(let all) = examples, !feeds.isEmpty else { return nil }
                return .images(LabeledImages(count: all.count, images: feeds.contains(task.input) ? all.images : nil,
                                             labels: feeds.contains(task.target) ? all.labels : nil))
            }
            guard !trainFeeds.isEmpty || !testFeeds.isEmpty else { return data }
            let loaded = try TrainingData.load(file, trainLimit: settings.limitTrain, testLimit: settings.limitTest)
            data.train = parts(loaded.train, trainFeeds)
            data.test = parts(loaded.test, testFeeds)
            return data
        }
        switch settings.dataset {
        case .fashionMNIST:
            func parts(_ feeds: Set<String>) -> ImageParts {
                ImageParts().union(feeds.contains("images") ? .images : []).union(feeds.contains("labels") ? .labels : [])
            }
            let (trainParts, testParts) = (parts(trainFeeds), parts(testFeeds))
            guard !trainParts.isEmpty || !testParts.isEmpty else { return data }
            let loaded = try FashionMNIST.load(directory: settings.dataDirectory ?? settings.dataset.defaultDirectory,
                                               trainLimit: settings.limitTrain, testLimit: settings.limitTest,
                                               train: trainParts, test: testParts)
            if !trainParts.isEmpty { data.train = .images(loaded.train) }
            if !testParts.isEmpty { data.test = .images(loaded.test) }
        case .fortunes:
            // Tokens and targets come from one corpus; the initial state is zeros and needs none.
            let text: Set<String> = ["tokens", "targets"]
            guard !trainFeeds.isDisjoint(with: text) || !testFeeds.isDisjoint(with: text) else { return data }
            var shaped = spec
            let loaded = try TrainingData.load(settings, spec: &shaped, testLimit: settings.limitTest)
            if !trainFeeds.isDisjoint(with: text) { data.train = loaded.train }
            if !testFeeds.isDisjoint(with: text) { data.test = loaded.test }
        }
        return data
    }

    /// Bytes of examples this rank holds.
    var heldBytes: Int {
        [train, test].reduce(0) { total, examples in
            switch examples {
            case .images(let images): total + images.images.byteCount + images.labels.byteCount
            case .text(let text): total + (text.inputs.count + text.targets.count) * MemoryLayout<Float>.size
            case nil: total
            }
        }
    }

    /// The inputs `names` of the examples `indices` of the training (or test) set.
    func feeds<Indices: Collection<Int>>(_ model: Model, training: Bool, _ indices: Indices) -> [String: Tensor] {
        let names = training ? trainFeeds : testFeeds
        guard !names.isEmpty else { return [:] }
        var feeds: [String: Tensor] = [:]
        if let examples = training ? train : test { feeds = model.feeds(examples, indices) }
        if names.contains("initial_state"), feeds["initial_state"] == nil, case .languageModel(_, _, let stateSize) = model.task {
            feeds["initial_state"] = Tensor(zeros: [indices.count, stateSize])
        }
        return feeds.filter { names.contains($0.key) }
    }
}

/// A federated site's share of the training data and its slice of the test set.
struct SiteData {
    var train: Examples
    var test: Examples
    /// Training examples of every site.
    var sizes: [Int]
    var summary: String

    /// Every rank reads the public dataset and computes the same split from the seed; a site then keeps
    /// only its own part.
    static func load(_ settings: TrainingSettings, scheme: PartitionScheme, spec: inout ModelSpec,
                     site: Int, sites: Int) throws -> SiteData {
        var train: Examples
        var test: Examples
        var sizes: [Int]
        var summary: String
        if let file = settings.file, let folder = file.siteData {
            // Private data: each site reads its own file, which no other site opens.
            let own = folder + "/site-\(site).npz"
            guard FileManager.default.fileExists(atPath: own) else {
                throw Refusal("--site-data \(folder): site \(site) has no file site-\(site).npz")
            }
            guard let testPath = file.testData else { throw Refusal("federated training of a model file is scored on --test-data FILE.npz") }
            let mine = try file.examples(own, limit: settings.limitTrain)
            train = .images(mine)
            test = .images(try file.examples(testPath, limit: nil))
            sizes = []
            summary = "site-\(site).npz (\(mine.count) examples)"
        } else if settings.dataset == .fortunes, settings.file == nil, scheme == .natural {
            let corpus = try FortunesCorpus.load(directory: settings.dataDirectory ?? settings.dataset.defaultDirectory,
                                                 steps: spec.steps)
            spec.vocabulary = corpus.vocabulary.count
            let perSiteLimit = settings.limitTrain.map { max(1, $0 / sites) }
            let categoryTrain = corpus.categories.map { corpus.train[$0] ?? TokenSequences(steps: spec.steps) }
            let assignment = try DataPartition.assignGroups(sizes: categoryTrain.map(\.count), sites: sites)
            sizes = assignment.map { groups in
                let total = groups.reduce(0) { $0 + categoryTrain[$1].count }
                return perSiteLimit.map { min($0, total) } ?? total
            }
            var mine = TokenSequences(steps: spec.steps)
            for group in assignment[site] { mine.append(categoryTrain[group]) }
            train = .text(mine)
            if let perSiteLimit { train = train.prefix(perSiteLimit) }
            test = .text(corpus.allTest)
            summary = "fortunes (\(corpus.categories.count) categories, vocabulary \(corpus.vocabulary.count); "
                + "site 0 holds \(assignment[0].count) categories)"
        } else {
            let loaded = try TrainingData.load(settings, spec: &spec, testLimit: nil)
            let labels = loaded.train.classLabels
                ?? (0..<loaded.train.count).map { _ in 0 }  // text without categories: only iid is meaningful
            if loaded.train.classLabels == nil, scheme != .iid {
                throw Refusal("partition \(scheme) needs class labels; fortunes takes natural or iid")
            }
            let parts = try DataPartition.split(labels: labels, sites: sites, scheme: scheme, seed: settings.seed)
            sizes = parts.map(\.count)
            train = loaded.train.subset(parts[site])
            test = loaded.test
            summary = loaded.summary
        }
        if let limit = settings.limitTest { test = test.prefix(limit) }
        guard train.count > 0, test.count > 0 else {
            throw Refusal("site \(site) has \(train.count) training and the job \(test.count) test examples")
        }
        // Sites score their slices of the test set in parallel.
        test = test.subset((test.count * site / sites)..<(test.count * (site + 1) / sites))
        if !sizes.isEmpty { summary += ": \(sizes.reduce(0, +)) training examples split among the sites" }
        return SiteData(train: train, test: test, sizes: sizes, summary: summary)
    }
}

/// A batch of seeded random inputs of the right kind for a model: profiling and timing without a dataset.
public func syntheticExamples(for model: Model, count: Int, steps: Int, seed: UInt64) -> Examples {
    var random = SplitMix64(seed: seed, stream: "synthetic")
    switch model.task {
    case .classification(let classes):
        let images = Tensor(shape: [count, 1, 28, 28]) { out in
            for i in 0..<out.count { out[i] = 2 * random.nextUnitFloat() - 1 }
        }
        let labels = Tensor(shape: [count], data: (0..<count).map { _ in Float(random.nextIndex(below: classes)) })
        return .images(LabeledImages(images: images, labels: labels))
    case .languageModel(let vocabulary, _, _):
        let stream = (0..<(count * steps + 1)).map { _ in random.nextIndex(below: vocabulary) }
        return .text(TokenSequences(stream: stream, steps: steps))
    case .supervised(let task):
        let features = Tensor(shape: [count] + task.inputShape) { out in
            for i in 0..<out.count { out[i] = 2 * random.nextUnitFloat() - 1 }
        }
        let targets = Tensor(shape: [count] + task.targetShape) { out in
            for i in 0..<out.count {
                switch task.objective {
                case .crossEntropy(let classes): out[i] = Float(random.nextIndex(below: classes))
                case .meanSquaredError: out[i] = 2 * random.nextUnitFloat() - 1
                }
            }
        }
        return .images(LabeledImages(images: features, labels: targets))
    }
}
