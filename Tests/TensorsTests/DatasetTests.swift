import Foundation
import TestSupport
import Testing
@testable import Tensors

/// An uncompressed IDX file of unsigned bytes (zlib reads plain files as they are).
func idxFile(dimensions: [Int], body: [UInt8], magic: [UInt8]? = nil) -> Data {
    var bytes = magic ?? [0, 0, 0x08, UInt8(dimensions.count)]
    for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return Data(bytes + body)
}

@Suite struct IDXTests {
    @Test func readsAWellFormedFile() throws {
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("tiny-idx3").path
        try idxFile(dimensions: [2, 1, 3], body: [1, 2, 3, 4, 5, 6]).write(to: URL(fileURLWithPath: path))
        let array = try IDXArray.read(path: path)
        #expect(array.dimensions == [2, 1, 3])
        #expect(array.bytes == [1, 2, 3, 4, 5, 6])
    }

    @Test func rejectsBadMagicAndShortData() throws {
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let badMagic = folder.appendingPathComponent("bad-magic").path
        try idxFile(dimensions: [2], body: [1, 2], magic: [0x1f, 0x00, 0x08, 0x01]).write(to: URL(fileURLWithPath: badMagic))
        #expect { try IDXArray.read(path: badMagic) } throws: { ($0 as? DatasetError)?.description.contains("bad magic") == true }
        let short = folder.appendingPathComponent("short").path
        try idxFile(dimensions: [10, 2], body: [1, 2, 3]).write(to: URL(fileURLWithPath: short))
        #expect { try IDXArray.read(path: short) } throws: { ($0 as? DatasetError)?.description.contains("promises") == true }
        let empty = folder.appendingPathComponent("empty").path
        try Data().write(to: URL(fileURLWithPath: empty))
        #expect(throws: DatasetError.self) { try IDXArray.read(path: empty) }
    }

    /// A process that needs no examples counts them from the header alone; one that reads only labels
    /// (or only images) holds only those, equal to the whole set's.
    @Test func partsAreReadAloneAndCountedFromTheHeader() throws {
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images").path
        let labels = folder.appendingPathComponent("labels").path
        try idxFile(dimensions: [3, 28, 28], body: (0..<(3 * 784)).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: images))
        try idxFile(dimensions: [3], body: [4, 0, 9]).write(to: URL(fileURLWithPath: labels))
        #expect(try IDXArray.dimensions(path: images) == [3, 28, 28])
        let whole = try FashionMNIST.split(images, labels)
        let onlyLabels = try FashionMNIST.split(images, labels, parts: .labels)
        let onlyImages = try FashionMNIST.split(images, labels, limit: 2, parts: .images)
        let none = try FashionMNIST.split(images, labels, parts: [])
        #expect(onlyLabels.labels.data == whole.labels.data && onlyLabels.images.count == 0 && onlyLabels.count == 3)
        #expect(onlyImages.images.data == Array(whole.images.data.prefix(2 * 784)) && onlyImages.labels.count == 0 && onlyImages.count == 2)
        #expect(none.count == 3 && none.images.count == 0 && none.labels.count == 0)
        // A model's feeds are only the parts held.
        let model = ModelSpec(kind: .mlp).build(seed: 1, holding: .none)
        #expect(Set(model.feeds(.images(onlyLabels), [2, 0]).keys) == ["labels"])
        #expect(model.feeds(.images(onlyLabels), [2, 0])["labels"]?.data == [9, 4])
        #expect(model.feeds(.images(none), [1]).isEmpty)
        // Headers are still checked against each other.
        try idxFile(dimensions: [2], body: [1, 2]).write(to: URL(fileURLWithPath: labels))
        #expect { try FashionMNIST.split(images, labels, parts: .images) } throws: { "\($0)".contains("2 labels for 3 images") }
    }

    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func realFashionMNIST() throws {
        let directory = KnownDataset.fashionMNIST.defaultDirectory
        let test = try FashionMNIST.split(directory + "/t10k-images-idx3-ubyte.gz", directory + "/t10k-labels-idx1-ubyte.gz")
        #expect(test.images.shape == [10000, 1, 28, 28])
        // The published test set holds exactly 1,000 images of each class.
        var perClass = [Int](repeating: 0, count: 10)
        for label in test.labels.data { perClass[Int(label)] += 1 }
        #expect(perClass == Array(repeating: 1000, count: 10))
        // Standardised pixels: 0 maps to -mean/std, 255 to (1-mean)/std.
        let low = -FashionMNIST.pixelMean / FashionMNIST.pixelStandardDeviation
        #expect(abs((test.images.data.min() ?? 0) - low) < 1e-5)
        let header = try IDXArray.read(path: directory + "/train-labels-idx1-ubyte.gz")
        #expect(header.dimensions == [60000])
    }

    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func damagedGzipCopies() throws {
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = try Data(contentsOf: URL(fileURLWithPath: KnownDataset.fashionMNIST.defaultDirectory + "/t10k-labels-idx1-ubyte.gz"))
        let truncated = folder.appendingPathComponent("truncated.gz").path
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: truncated))
        #expect { try IDXArray.read(path: truncated) } throws: { ($0 as? DatasetError)?.description.contains("truncated.gz") == true }
        // Flipped bytes in the middle of the stream: the deflate data or the CRC check fails.
        var flipped = original
        for i in (original.count / 2)..<(original.count / 2 + 16) { flipped[i] ^= 0x5a }
        let corrupt = folder.appendingPathComponent("corrupt.gz").path
        try flipped.write(to: URL(fileURLWithPath: corrupt))
        #expect(throws: DatasetError.self) { try IDXArray.read(path: corrupt) }
    }

    @Test func missingDatasetNamesThePackage() {
        #expect { try FashionMNIST.load(directory: "/nonexistent/fashion") } throws: { error in
            (error as? DatasetError)?.description.contains("apt-get install dataset-fashion-mnist") == true
        }
        #expect { try FortunesCorpus.load(directory: "/nonexistent/fortunes") } throws: { error in
            (error as? DatasetError)?.description.contains("apt-get install fortunes") == true
        }
    }

    @Test func labelsThatAreNotClassesAreRejected() throws {
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images").path
        let labels = folder.appendingPathComponent("labels").path
        try idxFile(dimensions: [2, 28, 28], body: [UInt8](repeating: 128, count: 2 * 784)).write(to: URL(fileURLWithPath: images))
        try idxFile(dimensions: [2], body: [3, 12]).write(to: URL(fileURLWithPath: labels))
        #expect { try FashionMNIST.split(images, labels) } throws: { ($0 as? DatasetError)?.description.contains("label 12") == true }
        try idxFile(dimensions: [3], body: [3, 1, 2]).write(to: URL(fileURLWithPath: labels))
        #expect { try FashionMNIST.split(images, labels) } throws: { ($0 as? DatasetError)?.description.contains("3 labels for 2 images") == true }
        try idxFile(dimensions: [2], body: [3, 9]).write(to: URL(fileURLWithPath: labels))
        let data = try FashionMNIST.split(images, labels)
        #expect(data.labels.data == [3, 9])
    }
}

@Suite struct FortunesTests {
    @Test func tokenizerByHand() {
        #expect(FortunesCorpus.tokenize("Don't PANIC!  -- 42 towels.") == ["don't", "panic", "!", "-", "-", "42", "towels", "."])
        #expect(FortunesCorpus.tokenize("'quoted'") == ["'", "quoted'"])
    }

    @Test func vocabularyAndSequences() {
        let vocabulary = Vocabulary(counting: [["a", "b", "a", "c"], ["a", "b", "d"]], limit: 4, minimumCount: 1)
        #expect(vocabulary.tokens == ["<unk>", "<eos>", "a", "b"])  // a (3), b (2); c and d cut by the limit
        #expect(vocabulary.id("zebra") == 0)
        let sequences = TokenSequences(stream: [5, 6, 7, 8, 9, 10, 11], steps: 3)
        #expect(sequences.count == 2)
        #expect(sequences.inputs == [5, 6, 7, 8, 9, 10])
        #expect(sequences.targets == [6, 7, 8, 9, 10, 11])
    }

    @Test func smallCorpusInAFolder() throws {
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = (0..<20).map { "fortune number \($0) says hello world" }.joined(separator: "\n%\n")
        try Data(text.utf8).write(to: folder.appendingPathComponent("greetings"))
        try Data([0, 1, 2]).write(to: folder.appendingPathComponent("greetings.dat"))  // index files are skipped
        let corpus = try FortunesCorpus.load(directory: folder.path, steps: 4)
        #expect(corpus.categories == ["greetings"])
        // 18 training fortunes of 6 tokens + <eos> = 126 tokens -> 31 sequences of 4 (+1 target).
        #expect(corpus.train["greetings"]?.count == 31)
        #expect(corpus.vocabulary.tokens.contains("hello"))
        #expect(!corpus.vocabulary.tokens.contains("19"))  // seen once, in a held-out fortune only
    }

    @Test func damagedFilesGiveClearErrors() throws {
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("one fortune\n%\nanother".utf8).write(to: folder.appendingPathComponent("good"))
        try Data([0x47, 0x00, 0x13, 0xff, 0x00]).write(to: folder.appendingPathComponent("binary"))
        #expect { try FortunesCorpus.load(directory: folder.path) } throws: { error in
            (error as? DatasetError)?.description.contains("binary") == true
        }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("binary"))
        try Data((0..<200).map { _ in UInt8(0xc3) }).write(to: folder.appendingPathComponent("latin"))
        #expect { try FortunesCorpus.load(directory: folder.path) } throws: { error in
            (error as? DatasetError)?.description.contains("not UTF-8") == true
        }
        let empty = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: DatasetError.self) { try FortunesCorpus.load(directory: empty.path) }
    }

    @Test(.enabled(if: fortunesInstalled, "fortunes is not installed"))
    func realFortunesAndATruncatedCopy() throws {
        let corpus = try FortunesCorpus.load(steps: 20)
        #expect(corpus.categories.contains("fortunes") && corpus.categories.contains("zippy"))
        #expect(!corpus.categories.contains { $0.hasSuffix(".dat") || $0.hasSuffix(".u8") })
        #expect(corpus.vocabulary.count == 10_000)
        #expect(corpus.allTrain.count > 10 * corpus.allTest.count / 2)
        #expect(corpus.allTest.count > 1000)
        #expect(corpus.allTrain.inputs.allSatisfy { $0 >= 0 && $0 < 10_000 })

        // A category cut mid-fortune still loads, with fewer sequences.
        let folder = try makeTemporaryFolder("tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try Data(contentsOf: URL(fileURLWithPath: KnownDataset.fortunes.defaultDirectory + "/zippy"))
        try source.prefix(source.count / 3 + 17).write(to: folder.appendingPathComponent("zippy"))
        let cut = try FortunesCorpus.load(directory: folder.path, steps: 20)
        #expect(cut.categories == ["zippy"])
        #expect((cut.train["zippy"]?.count ?? 0) < (corpus.train["zippy"]?.count ?? 0))
        #expect((cut.train["zippy"]?.count ?? 0) > 0)
    }
}
