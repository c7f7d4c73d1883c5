import CZlib
import Foundation
import TestSupport
import Testing
@testable import Tensors

/// `.npz` and `.npy` files built here (no NumPy needed): stored archives from the writer, with and
/// without ZIP64 records, deflated archives as `np.savez_compressed` writes them, and `.npy` files.
enum NumPySeeds {
    static let arrays: [String: NumPyArray] = [
        "x": NumPyArray(shape: [2, 3, 2], floats: (0..<12).map { Float($0) - 5.5 }),
        "y": NumPyArray(shape: [2], int64: [1, -7]),
        "scalar": NumPyArray(shape: [], dtype: .uint8, bytes: [200]),
        "empty": NumPyArray(shape: [0, 4], dtype: .bool, bytes: []),
        "half": NumPyArray(shape: [3], dtype: .float16, bytes: [0x00, 0x3C, 0x00, 0x7C, 0x01, 0x80]),
    ]

    /// One entry of a hand-built archive: `claimedSize` overrides the uncompressed size the archive states.
    struct Entry {
        var name: String
        var content: [UInt8]
        var deflated = true
        var claimedSize: UInt32?
        /// Compressed bytes left off the end (the uncompressed size stated is still the whole content's).
        var cutShort = 0
    }

    /// `bytes` as raw deflate (zip method 8): zlib's stream without its 2-byte header and Adler-32 trailer.
    static func deflate(_ bytes: [UInt8]) -> [UInt8] {
        var length = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(length))
        let status = compress2(&out, &length, bytes, uLong(bytes.count), 6)
        precondition(status == Z_OK)
        return Array(out[2..<(Int(length) - 4)])
    }

    static func crc(_ bytes: [UInt8]) -> UInt32 { UInt32(crc32(0, bytes, uInt(bytes.count))) }

    /// A zip archive of `entries`, and `aliases`: more directory records, under other names, for the
    /// local header and data of entry `of` (what an overlapping zip bomb does).
    static func archive(_ entries: [Entry], aliases: [(name: String, of: Int)] = []) -> [UInt8] {
        var file = [UInt8](), directory = [UInt8]()
        func u16(_ value: Int, _ into: inout [UInt8]) { into += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
        func u32(_ value: UInt32, _ into: inout [UInt8]) { for s in [0, 8, 16, 24] { into.append(UInt8(value >> UInt32(s) & 0xFF)) } }
        var records = [(offset: Int, crc: UInt32, stored: Int, size: UInt32, method: Int)]()
        for entry in entries {
            let stored = Array((entry.deflated ? deflate(entry.content) : entry.content).dropLast(entry.cutShort))
            let record = (offset: file.count, crc: crc(entry.content), stored: stored.count,
                          size: entry.claimedSize ?? UInt32(entry.content.count), method: entry.deflated ? 8 : 0)
            records.append(record)
            let name = Array(entry.name.utf8)
            u32(0x0403_4B50, &file); u16(20, &file); u16(0, &file); u16(record.method, &file); u16(0, &file); u16(0x21, &file)
            u32(record.crc, &file); u32(UInt32(stored.count), &file); u32(record.size, &file); u16(name.count, &file); u16(0, &file)
            file += name + stored
        }
        for (index, name) in entries.map(\.name).enumerated().map({ ($0.offset, $0.element) }) + aliases.map({ ($0.of, $0.name) }) {
            let record = records[index]
            let bytes = Array(name.utf8)
            u32(0x0201_4B50, &directory); u16(20, &directory); u16(20, &directory); u16(0, &directory); u16(record.method, &directory)
            u16(0, &directory); u16(0x21, &directory); u32(record.crc, &directory); u32(UInt32(record.stored), &directory)
            u32(record.size, &directory); u16(bytes.count, &directory); u16(0, &directory); u16(0, &directory); u16(0, &directory)
            u16(0, &directory); u32(0, &directory); u32(UInt32(record.offset), &directory)
            directory += bytes
        }
        let count = entries.count + aliases.count
        var end = [UInt8]()
        u32(0x0605_4B50, &end); u16(0, &end); u16(0, &end); u16(count, &end); u16(count, &end)
        u32(UInt32(directory.count), &end); u32(UInt32(file.count), &end); u16(0, &end)
        return file + directory + end
    }

    static func npy(_ array: NumPyArray) -> [UInt8] { array.npyHeader + array.bytes }

    /// A `.npy` with `header` as its dict (format 1.0, not padded) and `data`.
    static func npy(header: String, data: [UInt8]) -> [UInt8] {
        let text = Array((header + "\n").utf8)
        return NumPyArray.magic + [1, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text + data
    }

    static func written(_ arrays: [String: NumPyArray], zip64: Bool, in folder: URL) throws -> [UInt8] {
        let path = folder.appendingPathComponent("seed-\(UUID().uuidString).npz").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NumPyArchive.write(arrays, to: path, zip64: zip64)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func seeds(in folder: URL) throws -> [[UInt8]] {
        [
            try written(arrays, zip64: false, in: folder),
            try written(arrays, zip64: true, in: folder),
            archive(arrays.keys.sorted().map { Entry(name: $0 + ".npy", content: npy(arrays[$0]!)) }),
            npy(arrays["x"]!),
            npy(header: "{'descr': '>f8', 'fortran_order': False, 'shape': (2L, 1L)}", data: [0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0]),
        ]
    }

    static func positions(of signature: [UInt8], in input: [UInt8]) -> [Int] {
        guard let first = signature.first, input.count >= signature.count else { return [] }
        var places = [Int]()
        for at in 0...(input.count - signature.count) where input[at] == first && input[at..<(at + signature.count)].elementsEqual(signature) {
            places.append(at)
        }
        return places
    }

    static func put(_ value: UInt64, width: Int, at: Int, in input: inout [UInt8]) {
        for k in 0..<width where at + k < input.count { input[at + k] = UInt8(value >> UInt64(8 * k) & 0xFF) }
    }
}

@Suite struct NumPyFuzzTests {
    /// Zip and .npy structure: size, offset and count fields set to edge values; the .npy version and
    /// header length changed; the header's dtype and order swapped; stored entries' CRC-32s made
    /// right again, so that damage inside an entry gets past the checksum to the checks behind it.
    static let structureMutations: [@Sendable (inout [UInt8], inout FuzzRandom) -> Void] = [
        { input, random in
            let records: [([UInt8], [(offset: Int, width: Int)])] = [
                ([0x50, 0x4B, 1, 2], [(8, 2), (10, 2), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (34, 2), (42, 4)]),
                ([0x50, 0x4B, 3, 4], [(8, 2), (18, 4), (22, 4), (26, 2), (28, 2)]),
                ([0x50, 0x4B, 5, 6], [(4, 2), (6, 2), (8, 2), (10, 2), (12, 4), (16, 4), (20, 2)]),
                ([0x50, 0x4B, 6, 6], [(24, 8), (32, 8), (40, 8), (48, 8)]),
                ([0x50, 0x4B, 6, 7], [(4, 4), (8, 8)]),
                ([1, 0, 16, 0], [(4, 8), (12, 8)]),  // a ZIP64 extra field
            ]
            let (signature, fields) = random.pick(records)
            let places = NumPySeeds.positions(of: signature, in: input)
            guard !places.isEmpty else { return }
            let field = random.pick(fields)
            let size = UInt64(input.count)
            let value = random.pick([0, 1, 2, 8, 46, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, 1 << 62,
                                     UInt64.max, size, size - 1, size + 1, size / 2])
            NumPySeeds.put(value, width: field.width, at: random.pick(places) + field.offset, in: &input)
        },
        { input, random in
            let places = NumPySeeds.positions(of: NumPyArray.magic, in: input)
            guard !places.isEmpty else { return }
            let at = random.pick(places)
            if random.chance(40) {
                NumPySeeds.put(UInt64(random.pick([0, 1, 2, 3, 4, 0xFF])), width: 1, at: at + 6, in: &input)
            } else {
                NumPySeeds.put(random.pick([0, 1, 10, 100, 118, 119, 0xFFFF, 0x10000, 0xFFFF_FFFF]), width: random.pick([2, 4]), at: at + 8, in: &input)
            }
        },
        { input, random in
            let phrases: [(String, [String])] = [
                ("'<f4'", ["'>f4'", "'|f4'", "'<f2'", "'<f8'", "'>f8'", "'|b1'", "'<i8'", "'>u8'", "'|O'", "'<c8'", "'<U3'", "'f4'", "[('a', '<f4')]", "'<f16'", "''", "'<'"]),
                ("'<i8'", ["'>i8'", "'<u8'", "'|u1'", "'|i1'", "'<f4'", "'|O'"]),
                ("False", ["True", "0", "None", "Flase"]),
                ("(2, 3, 2)", ["(3, 2, 2)", "(12,)", "(2, 3, 2, 1)", "()", "(0,)", "(2, 3, 2L)", "(2, 3, 3)", "(4294967296, 4294967296)", "[2, 3, 2]", "(2, 3, -2)"]),
            ]
            let (from, choices) = random.pick(phrases)
            let places = NumPySeeds.positions(of: Array(from.utf8), in: input)
            guard !places.isEmpty else { return }
            let at = random.pick(places)
            input.replaceSubrange(at..<(at + from.utf8.count), with: Array(random.pick(choices).utf8))
        },
        { input, _ in
            for central in NumPySeeds.positions(of: [0x50, 0x4B, 1, 2], in: input) where central + 46 <= input.count {
                func field(_ at: Int, _ width: Int) -> Int { (0..<width).reduce(0) { $0 | Int(input[at + $1]) << (8 * $1) } }
                let local = field(central + 42, 4), size = field(central + 20, 4)
                guard field(central + 10, 2) == 0, local + 30 <= input.count, Array(input[local..<(local + 4)]) == [0x50, 0x4B, 3, 4] else { continue }
                let start = local + 30 + field(local + 26, 2) + field(local + 28, 2)
                guard start + size <= input.count else { continue }
                let crc = UInt64(NumPySeeds.crc(Array(input[start..<(start + size)])))
                NumPySeeds.put(crc, width: 4, at: central + 16, in: &input)
                NumPySeeds.put(crc, width: 4, at: local + 14, in: &input)
            }
        },
    ]

    /// Every mutant is read as arrays whose bytes match their shapes, or rejected with a one-line
    /// `DatasetError`, by both readers, and by the archive reader again as an entry of a sound archive.
    @Test(.timeLimit(.minutes(FuzzBudget.timeLimitMinutes)))
    func mutatedFilesAreReadOrRejected() throws {
        let folder = try makeTemporaryFolder("fuzz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let mutantPath = folder.appendingPathComponent("mutant").path
        let wrappedPath = folder.appendingPathComponent("wrapped.npz").path
        let seeds = try NumPySeeds.seeds(in: folder)
        for seed in seeds {
            try Data(seed).write(to: URL(fileURLWithPath: mutantPath))
            let read = (try? NumPyArchive.read(path: mutantPath)).map { $0.count } ?? (try? NumPyArray.read(path: mutantPath)).map { _ in 1 }
            #expect(read != nil, "a seed is not read")
        }
        var mutator = Mutator(seed: FuzzBudget.seed ^ stableHash("npz"), seeds: seeds.map { Data($0) },
                              tokens: ["PK\u{1}\u{2}", "PK\u{3}\u{4}", "PK\u{5}\u{6}", "PK\u{6}\u{6}", "PK\u{6}\u{7}", "NUMPY",
                                       "'descr': ", "'fortran_order': ", "'shape': ", "(1, 2)", "True", "None", "'|O'", "L,", "\\'"],
                              special: Self.structureMutations)
        func check(_ array: NumPyArray) throws {
            #expect(array.bytes.count == array.count * array.dtype.itemSize && array.shape.allSatisfy { $0 >= 0 })
            #expect(array.floats().count == array.count)
            if let integers = try? array.integers() { #expect(integers.count == array.count) }
        }
        let report = try fuzz("npz", mutator: &mutator, seed: FuzzBudget.seed) { input in
            try Data(input).write(to: URL(fileURLWithPath: mutantPath))
            var messages = [String]()
            var read = false
            func attempt(_ body: () throws -> Void) throws {
                do { try body() } catch let error as DatasetError { messages.append(error.description) }
            }
            try attempt {
                for array in try NumPyArchive.read(path: mutantPath).values { try check(array) }
                read = true
            }
            try attempt {
                try check(try NumPyArray.read(path: mutantPath))
                read = true
            }
            // The mutant as the arrays of a sound archive, stored and deflated: damage to a .npy reaches
            // the archive's reader past the zip structure and the checksums.
            try Data(NumPySeeds.archive([.init(name: "a.npy", content: input), .init(name: "b.npy", content: input, deflated: false)]))
                .write(to: URL(fileURLWithPath: wrappedPath))
            try attempt {
                for array in try NumPyArchive.read(path: wrappedPath).values { try check(array) }
                read = true
            }
            if let bad = messages.first(where: { $0.isEmpty || $0.contains(where: \.isNewline) }) { return .rejected(bad) }
            return read ? .accepted : .rejected(messages.first ?? "")
        }
        #expect(report.accepted > 0 && report.rejected > report.inputs / 10, "\(report)")
    }

    /// Sizes claimed in an archive or a header are checked against what the file holds before anything
    /// of that size is allocated or inflated.
    @Test func hostileClaimsAreRefusedFromTheSizes() throws {
        let folder = try makeTemporaryFolder("fuzz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("hostile.npz").path
        func message(_ bytes: [UInt8]) throws -> String {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do { _ = try NumPyArchive.read(path: path) } catch let error as DatasetError { return error.description }
            return "read"
        }
        let x = NumPySeeds.npy(NumPySeeds.arrays["x"]!)
        #expect(try message(NumPySeeds.archive([.init(name: "x.npy", content: x)])) == "read")
        // An entry claiming 4 GiB from a few dozen compressed bytes.
        #expect(try message(NumPySeeds.archive([.init(name: "x.npy", content: x, claimedSize: 0xFFFF_FFF0)])).contains("more than deflate can give"))
        // A header promising 4 GiB over a few bytes of data.
        let promise = NumPySeeds.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824,), }", data: [1, 2, 3, 4])
        #expect(try message(NumPySeeds.archive([.init(name: "x.npy", content: promise)]))
            .hasSuffix("array \"x\": truncated: its shape (1073741824,) of float32 needs 4294967296 bytes of data, 4 are there"))
        // A deflate bomb: 64 MiB of zeros after a 4-byte array, honestly sized; refused from the header.
        let bomb = NumPySeeds.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data: [UInt8](repeating: 0, count: 64 << 20))
        let bombArchive = NumPySeeds.archive([.init(name: "x.npy", content: bomb)])
        #expect(bombArchive.count < 1 << 20)
        #expect(try message(bombArchive).hasSuffix("array \"x\": 67108860 bytes follow the 4 its shape (1,) of float32 needs"))
        // Two names for one compressed stream.
        let overlapping = NumPySeeds.archive([.init(name: "x.npy", content: x)], aliases: [(name: "z.npy", of: 0)])
        #expect(try message(overlapping).contains("overlaps what follows it"))
        // A stored entry's data cut, with the directory intact: the sizes disagree with the file.
        let cut = NumPySeeds.archive([.init(name: "x.npy", content: x, deflated: false, claimedSize: UInt32(x.count + 8))])
        #expect(try message(cut).contains("is stored (uncompressed) but its sizes differ"))
        // Deflated data ending early.
        let short = NumPySeeds.archive([.init(name: "x.npy", content: x, cutShort: 3)])
        #expect(try message(short).hasSuffix("array \"x\": its compressed data is cut short"))
    }
}
