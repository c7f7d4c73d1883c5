import CZlib
import Foundation
import TestSupport
import Testing
import Tensors

/// IDX files built here (the tests do not need the dataset installed): a header of big-endian
/// dimensions and the bytes, plain or gzip'd as Debian ships them.
enum IDXSeeds {
    static func plain(_ dimensions: [Int], body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return bytes + body
    }

    /// `bytes` gzip'd by zlib itself, through a file (zlib's gz* interface is file based).
    static func gzip(_ bytes: [UInt8], in folder: URL) throws -> [UInt8] {
        let path = folder.appendingPathComponent("seed-\(UUID().uuidString).gz").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try #require(gzopen(path, "wb1"))
        var offset = 0
        while offset < bytes.count {
            let chunk = min(1 << 20, bytes.count - offset)
            let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress! + offset, UInt32(chunk)) }
            try #require(written == Int32(chunk))
            offset += chunk
        }
        try #require(gzclose(file) == Z_OK)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static let images = plain([3, 28, 28], body: (0..<(3 * 784)).map { UInt8($0 % 251) })
    static let labels = plain([3], body: [7, 0, 9])
}

@Suite struct IDXFuzzTests {
    /// Sets one 32-bit dimension (or the rank, or the type) of a plain IDX header to a value on an edge.
    static let headerMutations: [@Sendable (inout [UInt8], inout FuzzRandom) -> Void] = [
        { input, random in
            guard input.count >= 8 else { return }
            let field = 4 + 4 * random.below(min(4, (input.count - 4) / 4))
            let value: UInt32 = random.pick([0, 1, 2, 3, 27, 28, 29, 255, 256, 60000, 1 << 16, 1 << 24, 1 << 28, 1 << 30,
                                             (1 << 30) + 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF])
            for k in 0..<4 { input[field + k] = UInt8(value >> (24 - 8 * UInt32(k)) & 255) }
        },
        { input, random in
            guard input.count >= 4 else { return }
            input[random.chance(50) ? 3 : 2] = random.pick([0, 1, 2, 3, 4, 5, 8, 9, 0x0D, 0xFF])
        },
    ]

    /// Every mutant file is read as a complete IDX array or rejected with a `DatasetError` in one
    /// line; images and labels go through Fashion-MNIST's own checks as well.
    @Test(.timeLimit(.minutes(FuzzBudget.timeLimitMinutes)))
    func mutatedFilesAreReadOrRejected() throws {
        let folder = try makeTemporaryFolder("fuzz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let imagesPath = folder.appendingPathComponent("images").path
        let labelsPath = folder.appendingPathComponent("labels").path
        let mutantPath = folder.appendingPathComponent("mutant").path
        try Data(IDXSeeds.images).write(to: URL(fileURLWithPath: imagesPath))
        try Data(IDXSeeds.labels).write(to: URL(fileURLWithPath: labelsPath))
        #expect(try FashionMNIST.split(imagesPath, labelsPath).count == 3)

        let seeds = [IDXSeeds.images, IDXSeeds.labels, try IDXSeeds.gzip(IDXSeeds.images, in: folder),
                     try IDXSeeds.gzip(IDXSeeds.labels, in: folder), IDXSeeds.plain([2, 2, 2, 2], body: Array(0..<16))]
        var mutator = Mutator(seed: FuzzBudget.seed ^ stableHash("idx"), seeds: seeds.map { Data($0) },
                              tokens: ["\u{0}\u{0}\u{8}\u{3}", "\u{1f}\u{8b}\u{8}\u{0}", "\u{0}\u{0}\u{0}\u{1c}"],
                              special: Self.headerMutations)
        let report = try fuzz("idx", mutator: &mutator, seed: FuzzBudget.seed) { input in
            try Data(input).write(to: URL(fileURLWithPath: mutantPath))
            var messages = [String]()
            var read = false
            func attempt(_ body: () throws -> Void) throws {
                do { try body() } catch let error as DatasetError { messages.append(error.description) }
            }
            try attempt {
                let array = try IDXArray.read(path: mutantPath)
                #expect(array.bytes.count == array.dimensions.reduce(1, *))
                read = true
            }
            try attempt { _ = try FashionMNIST.split(mutantPath, labelsPath, limit: 2) }
            try attempt { _ = try FashionMNIST.split(imagesPath, mutantPath) }
            if let bad = messages.first(where: { $0.isEmpty || $0.contains(where: \.isNewline) }) { return .rejected(bad) }
            return read ? .accepted : .rejected(messages.first ?? "")
        }
        #expect(report.accepted > 0 && report.rejected > report.inputs / 10, "\(report)")
    }

    /// Headers that promise more than fedbaechi reads are refused from the header alone: no
    /// allocation of the promised size and no decompression of the rest.
    @Test func hugeHeadersAreRefusedBeforeAllocating() throws {
        let folder = try makeTemporaryFolder("fuzz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("huge").path
        for dimensions in [[1 << 20, 1 << 20], [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], [(1 << 30) + 1], [1 << 16, 1 << 15]] {
            try Data(IDXSeeds.plain(dimensions, body: [1, 2, 3])).write(to: URL(fileURLWithPath: path))
            #expect { try IDXArray.read(path: path) } throws: {
                ($0 as? DatasetError)?.description.contains("more than the 1073741824 (1 GiB) fedbaechi reads") == true
            }
        }
        // 65536^4 wraps to 0 in 64 bits: the old reader took it for an empty array of 2^64 elements.
        try Data(IDXSeeds.plain([1 << 16, 1 << 16, 1 << 16, 1 << 16], body: [])).write(to: URL(fileURLWithPath: path))
        #expect { try IDXArray.read(path: path) } throws: { ($0 as? DatasetError)?.description.contains("more than the") == true }
        try Data(IDXSeeds.plain([60000, 0, 28], body: [])).write(to: URL(fileURLWithPath: path))
        #expect { try IDXArray.read(path: path) } throws: { ($0 as? DatasetError)?.description.contains("a dimension is 0") == true }
    }

    /// A small gzip file whose content runs on far past what its header promises (a gzip bomb) is
    /// refused after reading one byte too many, not after inflating all of it.
    @Test func gzipBombIsStoppedAtTheHeadersSize() throws {
        let folder = try makeTemporaryFolder("fuzz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("bomb.gz").path
        let bomb = try IDXSeeds.gzip(IDXSeeds.plain([1000], body: [UInt8](repeating: 1, count: 1000)) + [UInt8](repeating: 0, count: 64 << 20), in: folder)
        #expect(bomb.count < 1 << 20)
        try Data(bomb).write(to: URL(fileURLWithPath: path))
        let started = ContinuousClock.now
        #expect { try IDXArray.read(path: path) } throws: { ($0 as? DatasetError)?.description.contains("file holds more") == true }
        #expect(ContinuousClock.now - started < .seconds(1))
    }
}
