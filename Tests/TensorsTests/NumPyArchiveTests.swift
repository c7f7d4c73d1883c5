import Basics
import Foundation
import TestSupport
import Testing
@testable import Tensors

/// NumPy itself is the independent truth: it writes the files read here (and the values expected of
/// them, as `astype(np.float32)` and Python integers give them), and it reads and checks the files
/// written here. Skipped, with a message, when `import numpy` fails.
@Suite struct NumPyArchiveTests {
    static let numpyAvailable = ((try? run("/usr/bin/env", ["python3", "-c", "import numpy"], timeout: 120))?.status ?? -1) == 0
    static let skipped = "skipped: numpy is not installed for python3 (apt-get install python3-numpy) -- it writes and checks the test files"

    /// Runs `script` under python3 with `arguments` (`sys.argv[1...]`).
    static func python(_ script: String, _ arguments: [String]) throws -> CommandResult {
        try run("/usr/bin/env", ["python3", "-c", script] + arguments, timeout: 300)
    }

    /// Every dtype read, with its edges (extremes, -0, subnormals, infinities, NaN, values a Float
    /// rounds), in a 0-d, 1-d, 4-d, empty and big-endian array, saved with np.savez and
    /// np.savez_compressed, and the same arrays' expected bytes, floats and integers as JSON (and a
    /// larger array's bytes as they are).
    static let writer = #"""
        import json, sys, numpy as np
        folder = sys.argv[1]
        rng = np.random.default_rng(1)
        arrays = {
            'bool': np.array([True, False, True, True]),
            'int8': np.array([-128, -1, 0, 1, 127], np.int8),
            'uint8': np.array([0, 1, 128, 254, 255], np.uint8),
            'int16': np.array([-32768, -1, 0, 12345, 32767], np.int16),
            'uint16': np.array([0, 1, 40000, 65535], np.uint16),
            'int32': np.array([-2**31, -1, 0, 16777217, 2**31 - 1], np.int32),
            'uint32': np.array([0, 1, 16777217, 2**32 - 1], np.uint32),
            'int64': np.array([-2**63, -3, 0, 2**53 + 1, 16777217, 2**63 - 1], np.int64),
            'uint64': np.array([0, 7, 2**53 + 1, 2**63 - 1], np.uint64),
            'uint64_huge': np.array([2**63, 2**64 - 1], np.uint64),
            'float16': np.array([0.0, -0.0, 1.0, 0.1, 65504, 6e-8, -2.5e-5, np.inf, -np.inf, np.nan], np.float16),
            'float32': np.array([0.0, -0.0, 1.5, 0.1, 3.4028235e38, 1e-45, -np.inf, np.nan], np.float32),
            'float64': np.array([0.1, 1e300, 1e-300, -2.5, 16777217.0, 3.4028235677973366e38, np.nan], np.float64),
            'scalar': np.array(3.25, np.float32),
            'four_d': (np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) * 0.5 - 7),
            'labels': np.array([[3, 1], [4, 1], [5, 9]], np.int64),
            'empty': np.zeros((0,), np.float32),
            'empty_3d': np.zeros((3, 0, 2), np.int64),
            'big_f4': (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.75).astype('>f4'),
            'big_i8': np.array([-2**40, 5, 2**62], '>i8'),
            'big_f2': np.array([1.5, -0.25, 65504], '>f2'),
            'big_u2': np.array([1, 258, 65535], '>u2'),
            'random': rng.standard_normal(400_000).astype(np.float32),
            'größe': np.array([1, 2], np.uint8),
        }
        np.savez(folder + '/stored.npz', **arrays)
        np.savez_compressed(folder + '/deflated.npz', **arrays)
        np.save(folder + '/four_d.npy', arrays['four_d'])
        np.save(folder + '/big.npy', arrays['big_i8'])
        for version in [(1, 0), (2, 0), (3, 0)]:
            with open(folder + '/v%d.npy' % version[0], 'wb') as f:
                np.lib.format.write_array(f, arrays['labels'], version=version)
        expected = {}
        with open(folder + '/random.bin', 'wb') as f:
            f.write(arrays['random'].tobytes())
        for name, a in arrays.items():
            if name == 'random':
                continue  # 1.6 MB, more than one chunk of reading: checked against random.bin
            little = a.astype(a.dtype.newbyteorder('<'))
            entry = {'shape': list(a.shape), 'dtype': a.dtype.name, 'bytes': little.tobytes().hex(),
                     'float_bits': a.astype(np.float32).ravel().view(np.uint32).tolist()}
            if a.dtype.kind in 'biu':
                entry['integers'] = [str(int(v)) for v in a.ravel().tolist()]
            expected[name] = entry
        with open(folder + '/expected.json', 'w') as f:
            json.dump(expected, f)
        np.savez(folder + '/fortran.npz', x=np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
        np.save(folder + '/fortran.npy', np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
        np.savez(folder + '/objects.npz', x=np.array([{'a': 1}, None], dtype=object))
        np.savez(folder + '/complex.npz', x=np.array([1 + 2j]))
        np.savez(folder + '/strings.npz', x=np.array(['cat', 'dog']))
        np.savez(folder + '/structured.npz', x=np.zeros(2, dtype=[('a', '<f4'), ('b', '<i8')]))
        np.savez(folder + '/dates.npz', x=np.array(['2024-01-01'], dtype='datetime64[D]'))
        """#

    struct Expected: Decodable {
        var shape: [Int]
        var dtype: String
        var bytes: String
        var floatBits: [UInt32]
        var integers: [String]?

        enum CodingKeys: String, CodingKey {
            case shape, dtype, bytes, integers
            case floatBits = "float_bits"
        }
    }

    /// Makes the files in a fresh folder (nil without numpy).
    static func numpyFiles() throws -> (URL, [String: Expected])? {
        guard numpyAvailable else { return nil }
        let folder = try makeTemporaryFolder("npz")
        let result = try python(writer, [folder.path])
        try #require(result.status == 0, "python: \(result.stderr)")
        let expected = try JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
        return (folder, expected)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// `array` is exactly what NumPy said: shape, type, bytes (big-endian ones swapped), every Float
    /// bit for bit (any NaN for a NaN), every integer; a float or out-of-range array's integers refused.
    static func check(_ array: NumPyArray?, _ expected: Expected, _ label: String) throws {
        let array = try #require(array, "\(label) missing")
        #expect(array.shape == expected.shape, "\(label)")
        #expect(array.dtype.rawValue == expected.dtype, "\(label)")
        #expect(array.count == expected.shape.reduce(1, *), "\(label)")
        #expect(hex(array.bytes) == expected.bytes, "\(label)")
        let floats = array.floats()
        #expect(floats.count == expected.floatBits.count, "\(label)")
        let wrong = zip(floats, expected.floatBits).enumerated().filter { _, pair in
            let truth = Float(bitPattern: pair.1)
            return truth.isNaN ? !pair.0.isNaN : pair.0.bitPattern != pair.1
        }
        #expect(wrong.isEmpty, "\(label): \(wrong.count) floats differ, first \(wrong.first.map { "\($0.element.0) at \($0.offset), NumPy says \(Float(bitPattern: $0.element.1))" } ?? "")")
        if let integers = expected.integers, integers.allSatisfy({ Int($0) != nil }) {
            #expect(try array.integers() == integers.map { Int($0)! }, "\(label)")
        } else {
            #expect(throws: Refusal.self, "\(label)") { try array.integers() }
        }
    }

    @Test func readsWhatNumPyWrites() throws {
        guard let (folder, expected) = try Self.numpyFiles() else { print(Self.skipped); return }
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(expected.count == 23)
        let random = [UInt8](try Data(contentsOf: folder.appendingPathComponent("random.bin")))
        #expect(random.count == 1_600_000)
        for file in ["stored.npz", "deflated.npz"] {
            let arrays = try NumPyArchive.read(contentsOf: folder.appendingPathComponent(file))
            #expect(Set(arrays.keys) == Set(expected.keys).union(["random"]), "\(file)")
            for (name, truth) in expected { try Self.check(arrays[name], truth, "\(file) \(name)") }
            let large = try #require(arrays["random"])
            #expect(large.shape == [400_000] && large.dtype == .float32 && large.bytes == random, "\(file)")
            let bits: [UInt32] = stride(from: 0, to: random.count, by: 4).map { i in
                UInt32(random[i]) | UInt32(random[i + 1]) << 8 | UInt32(random[i + 2]) << 16 | UInt32(random[i + 3]) << 24
            }
            #expect(large.floats().map(\.bitPattern) == bits, "\(file)")
        }
        try Self.check(try NumPyArray.read(path: folder.appendingPathComponent("four_d.npy").path), expected["four_d"]!, "four_d.npy")
        try Self.check(try NumPyArray.read(path: folder.appendingPathComponent("big.npy").path), expected["big_i8"]!, "big.npy")
        for version in 1...3 {
            try Self.check(try NumPyArray.read(path: folder.appendingPathComponent("v\(version).npy").path), expected["labels"]!, "v\(version).npy")
        }
    }

    /// What is not read is refused with one line naming the file and saying what to do instead.
    @Test func refusesWhatItDoesNotRead() throws {
        guard let (folder, _) = try Self.numpyFiles() else { print(Self.skipped); return }
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases: [(String, [String])] = [
            ("fortran.npz", ["array \"x\"", "Fortran", "np.ascontiguousarray"]),
            ("objects.npz", ["array \"x\"", "'|O'", "pickle"]),
            ("complex.npz", ["'<c16'", "float32"]),
            ("strings.npz", ["'<U3'"]),
            ("structured.npz", ["structured"]),
            ("dates.npz", ["'<M8[D]'"]),
            ("four_d.npy", ["one array (.npy", "np.savez"]),
            ("expected.json", ["not an .npz archive"]),
        ]
        for (file, phrases) in cases {
            let path = folder.appendingPathComponent(file).path
            #expect { try NumPyArchive.read(path: path) } throws: { error in
                guard let error = error as? DatasetError, case .unreadable = error else { return false }
                let message = error.description
                return message.hasPrefix("cannot read \(path): ") && !message.contains("\n") && phrases.allSatisfy(message.contains)
            }
        }
        let fortran = folder.appendingPathComponent("fortran.npy").path
        #expect(throws: DatasetError.unreadable(file: fortran, reason: "it is in Fortran (column-major) order; save it in C order, as np.ascontiguousarray(x) gives it")) {
            try NumPyArray.read(path: fortran)
        }
        #expect(throws: DatasetError.self) { try NumPyArchive.read(path: folder.appendingPathComponent("absent.npz").path) }
        #expect(throws: DatasetError.self) { try NumPyArchive.read(path: folder.path) }
    }

    /// Arrays of every type (raw bytes 0, 1, 2, ...), a 4-d float array, labels, a 0-d and empty
    /// arrays, a non-ASCII name; written as a plain archive and with ZIP64 records, and as a .npy.
    static func written() -> [String: NumPyArray] {
        var arrays = [String: NumPyArray]()
        for dtype in NumPyArray.DType.allCases {
            let count = 5
            arrays["raw_\(dtype)"] = NumPyArray(shape: [count], dtype: dtype, bytes: (0..<(count * dtype.itemSize)).map { UInt8(($0 * 7 + 1) % (dtype == .bool ? 2 : 256)) })
        }
        arrays["x"] = NumPyArray(shape: [2, 3, 4, 1], floats: (0..<24).map { Float($0) * 0.25 - 1 })
        arrays["y"] = NumPyArray(shape: [4], int64: [0, -1, Int64.max, Int64.min])
        arrays["scalar"] = NumPyArray(shape: [], floats: [-0.5])
        arrays["empty"] = NumPyArray(shape: [0, 3], floats: [])
        arrays["größe"] = NumPyArray(shape: [1], int64: [7])
        return arrays
    }

    /// Checks, in NumPy, the file `argv[1]` holds exactly `written()`; prints "ok".
    static let reader = #"""
        import sys, numpy as np
        d = np.load(sys.argv[1])
        names = ['raw_' + t for t in ['bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16', 'float32', 'float64']]
        assert sorted(d.files) == sorted(names + ['x', 'y', 'scalar', 'empty', 'größe']), d.files
        for name in names:
            a = d[name]
            assert a.dtype.name == name[4:] and a.shape == (5,) and a.flags.c_contiguous, (name, a.dtype, a.shape)
            expected = bytes(((i * 7 + 1) % (2 if name == 'raw_bool' else 256)) for i in range(5 * a.dtype.itemsize))
            assert a.astype(a.dtype.newbyteorder('<')).tobytes() == expected, name
        x = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1) * np.float32(0.25) - np.float32(1)
        assert d['x'].dtype == np.float32 and np.array_equal(d['x'], x), d['x']
        assert d['y'].dtype == np.int64 and d['y'].tolist() == [0, -1, 2**63 - 1, -2**63], d['y']
        assert d['scalar'].shape == () and d['scalar'].dtype == np.float32 and d['scalar'] == -0.5
        assert d['empty'].shape == (0, 3) and d['empty'].dtype == np.float32
        assert d['größe'].tolist() == [7]
        if len(sys.argv) > 2:
            one = np.load(sys.argv[2])
            assert one.dtype == np.float32 and np.array_equal(one, x), one
        print('ok')
        """#

    @Test func numPyReadsWhatIsWritten() throws {
        guard Self.numpyAvailable else { print(Self.skipped); return }
        let folder = try makeTemporaryFolder("npz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let arrays = Self.written()
        for zip64 in [false, true] {
            let path = folder.appendingPathComponent(zip64 ? "zip64.npz" : "plain.npz").path
            let single = folder.appendingPathComponent("x.npy").path
            if zip64 { try NumPyArchive.write(arrays, to: path, zip64: true) } else { try NumPyArchive.write(arrays, to: path) }
            try arrays["x"]!.write(to: single)
            let result = try Self.python(Self.reader, [path] + (zip64 ? [] : [single]))
            #expect(result.status == 0 && result.stdout == "ok\n", "\(path): \(result.stderr)")
            // And back: what was written is what is read.
            #expect(try NumPyArchive.read(path: path) == arrays)
            #expect(try NumPyArray.read(path: single) == arrays["x"])
        }
    }

    /// Every half-precision bit pattern against the standard library's Float16.
    @Test func halfPrecisionIsExact() {
        var wrong = 0
        for bits in 0...UInt16.max {
            let truth = Float(Float16(bitPattern: bits))
            let converted = NumPyArray.float(half: bits)
            if truth.isNaN ? !converted.isNaN : converted.bitPattern != truth.bitPattern { wrong += 1 }
        }
        #expect(wrong == 0)
    }
}

/// `.npy` headers and damaged archives made here, byte by byte (no NumPy needed).
@Suite struct NumPyFormatTests {
    /// A version 1.0 `.npy` file with `header` as its dict (padded as NumPy pads it) and `data`.
    static func npy(_ header: String, data: [UInt8] = [], version: UInt8 = 1) -> [UInt8] {
        var text = Array(header.utf8)
        let prefix = version == 1 ? 10 : 12
        text += [UInt8](repeating: 0x20, count: (64 - (prefix + text.count + 1) % 64) % 64) + [0x0A]
        let length = version == 1 ? [UInt8(text.count & 0xFF), UInt8(text.count >> 8)]
                                  : [UInt8(text.count & 0xFF), UInt8(text.count >> 8 & 0xFF), 0, 0]
        return NumPyArray.magic + [version, 0] + length + text + data
    }

    static func read(_ bytes: [UInt8]) throws -> NumPyArray {
        let path = temporaryPath("npy", extension: "npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try NumPyArray.read(path: path)
    }

    /// The reason a reading of `bytes` fails with, or nil.
    static func reason(_ bytes: [UInt8]) -> String? {
        do { _ = try read(bytes); return nil } catch let error as DatasetError {
            switch error {
            case .corrupt(_, let reason), .unreadable(_, let reason): return reason
            default: return "\(error)"
            }
        } catch { return "not a DatasetError: \(error)" }
    }

    @Test func headersAreParsedAsPythonLiterals() throws {
        // Python 2's long suffix, double quotes, no trailing comma, other key order, extra spaces.
        let old = try Self.read(Self.npy("{\"shape\": (2L, 3L), \"fortran_order\": False, \"descr\": \"<i2\"}", data: Array(0..<12)))
        #expect(old.shape == [2, 3] && old.dtype == .int16 && old.bytes == Array(0..<12))
        // Fortran order with at most one dimension above 1 is C order.
        let column = try Self.read(Self.npy("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 1), }", data: [UInt8](repeating: 0, count: 12)))
        #expect(column.shape == [3, 1])
        // Format 2.0 headers and a big-endian 0-d array.
        let scalar = try Self.read(Self.npy("{'descr': '>f8', 'fortran_order': False, 'shape': (), }", data: [0x3F, 0xF0, 0, 0, 0, 0, 0, 0], version: 2))
        #expect(scalar.shape == [] && scalar.floats() == [1])

        let damaged: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", "shape is not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [3], }", "shape is not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", "whole numbers >= 0"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,), }", "not an integer"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }", "fortran_order is not True or False"),
            ("{'descr': '<f4', 'shape': (3,), }", "has no 'fortran_order'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", "unknown key \"x\""),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", "gives \"descr\" twice"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } junk", "something follows the dict"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,", "ends early"),
            ("{'descr': '<f4, 'fortran_order': False, 'shape': (3,), }", "expected ','"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "integer too large"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (03,), }", "leading zero"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), '__import__': os}", "unexpected \"o\""),
            ("[" + String(repeating: "(", count: 10_000), "nests too deep"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", "truncated: its shape (3, 4) of float32 needs 48 bytes of data, 0 are there"),
        ]
        for (header, phrase) in damaged {
            let reason = Self.reason(Self.npy(header))
            #expect(reason?.contains(phrase) == true, "\(header.prefix(80)): \(reason ?? "read")")
        }
        let refused: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", "Fortran"),
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", "structured array"),
            ("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", "never loads pickles"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (\(1 << 31), \(1 << 31)), }", "more than the 4 GiB fedbaechi reads in one array"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (\(Int.max), \(Int.max), 0), }", "more than the 4 GiB"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (" + String(repeating: "1, ", count: 65) + "), }", "65 dimensions"),
        ]
        for (header, phrase) in refused {
            let reason = Self.reason(Self.npy(header, data: [UInt8](repeating: 0, count: 24)))
            #expect(reason?.contains(phrase) == true, "\(header.prefix(80)): \(reason ?? "read")")
        }
        // An empty array is read when the product of its other dimensions is within the limit.
        let empty = try Self.read(Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 100000000), }"))
        #expect(empty.count == 0 && empty.floats().isEmpty)
        #expect(Self.reason(NumPyArray.magic + [4, 0, 0, 0]) == ".npy format version 4.0 is not read (1.0, 2.0 and 3.0 are)")
        #expect(Self.reason(Array(NumPyArray.magic.prefix(4))) == "too short for a .npy header (4 bytes)")
        #expect(Self.reason(NumPyArray.magic + [1, 0, 0xFF, 0xFF]) == "the .npy header claims 65535 bytes, more than the 10 there are")
    }

    /// An empty archive is one (`np.savez(path)` writes it); a path that cannot be written is an error
    /// of the run, not of the input, and leaves nothing behind; floats are not taken for integers.
    @Test func edgesOfWritingAndConverting() throws {
        let folder = try makeTemporaryFolder("npz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("none.npz").path
        try NumPyArchive.write([:], to: path)
        #expect(try NumPyArchive.read(path: path).isEmpty)
        let absent = folder.appendingPathComponent("absent/a.npz").path
        #expect(throws: DatasetError.unwritable(file: absent, reason: "No such file or directory")) {
            try NumPyArchive.write(["x": NumPyArray(shape: [1], floats: [1])], to: absent)
        }
        #expect(DatasetError.unwritable(file: absent, reason: "").exitStatus == .runtime)
        #expect(DatasetError.unreadable(file: absent, reason: "").exitStatus == .badInput)
        #expect(throws: Refusal("the array holds float64 values, not integers: save it as integers (labels with y.astype(np.int64))")) {
            try NumPyArray(shape: [], dtype: .float64, bytes: [UInt8](repeating: 0, count: 8)).integers()
        }
        #expect(try NumPyArray(shape: [3], dtype: .bool, bytes: [0, 1, 7]).integers() == [0, 1, 1])
    }

    /// Damage to a written archive: each kind is found, and named.
    @Test func damagedArchivesAreRejected() throws {
        let folder = try makeTemporaryFolder("npz")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("a.npz").path
        let arrays = ["x": NumPyArray(shape: [2, 2], floats: [1, 2, 3, 4]), "y": NumPyArray(shape: [2], int64: [0, 1])]
        try NumPyArchive.write(arrays, to: path)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func reason(_ bytes: [UInt8]) throws -> String? {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do { _ = try NumPyArchive.read(path: path); return nil } catch let error as DatasetError {
                let message = error.description
                #expect(!message.contains("\n") && message.contains(path))
                return message
            }
        }
        #expect(try reason(good) == nil)
        // The first data byte of "x" (after its 30-byte local header, name and 128-byte .npy header).
        var flipped = good
        flipped[30 + 5 + 128] ^= 1
        #expect(try reason(flipped)?.contains("array \"x\": its CRC-32 is") == true)
        // Cut anywhere: always refused, never read short.
        for cut in stride(from: 0, to: good.count, by: 7) {
            #expect(try reason(Array(good[..<cut])) != nil, "cut at \(cut)")
        }
        // A directory that claims a huge stored entry is refused from the sizes, before reading.
        var huge = good
        let central = try #require((0..<(good.count - 4)).first { good[$0..<($0 + 4)] == [0x50, 0x4B, 1, 2] })
        for k in 0..<4 { huge[central + 20 + k] = 0xFF; huge[central + 24 + k] = 0xFF }
        #expect(try reason(huge)?.contains("lies outside the file") == true)
    }
}
