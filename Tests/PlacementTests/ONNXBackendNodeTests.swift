import Foundation
import Testing
@testable import ONNXImport
@testable import Placement

/// Shape inference against the ONNX project's own backend node tests: the test case scripts of
/// the installed `onnx` package (onnx/backend/test/case/node) are run into a temporary folder, and
/// every model is imported as `fedbaechi place` imports it. The outputs the reference computed
/// (test_data_set_0/output_*.pb) are the truth: each output shape and element type import infers
/// is compared with them, and its bytes with elements x the type's bits / 8, rounded up.
///
/// The cases feed every input as data. Here the first stays a model input and the others become
/// initializers holding the case's data, as an exporter writes weights, shapes, axes, pads and
/// scales, so that ops whose output shape depends on them can be inferred.
///
/// A case is *right* when every output is inferred right, *wrong* when one is inferred wrong (or
/// import refuses a model the reference ran), and *unsupported* when an op needed the fallback
/// estimate (`--unknown-ops=estimate`; its declared outputs must then be kept exactly) or the
/// model has what import does not take (sequence, optional or shapeless inputs, symbolic
/// dimensions). With `ONNX_BACKEND_SHAPES_TABLE=FILE` the per-op table is written to FILE
/// (`scripts/onnx-backend-shapes.sh`). Skipped, with a message, without `pip install onnx`.
@Suite struct ONNXBackendNodeTests {
    /// Cases known to be inferred wrong, and why: not failed on, still imported (no crash).
    static let knownWrong: [String: String] = [:]

    /// Writes each case as onnx's `generate-data` does (model.onnx, test_data_set_0/input_*.pb and
    /// output_*.pb), tensors only. Exits 77 when the onnx package or its test cases are missing.
    static let generator = """
        import os, sys, warnings
        warnings.simplefilter("ignore")
        try:
            import numpy as np
            import onnx
            from onnx import numpy_helper
            import onnx.reference.ops.op_pool_common as pool_common
            from onnx.backend.test.case import node
        except ImportError:
            sys.exit(77)
        # Only shapes are compared: the pooling cases' reference loop (three quarters of the time)
        # is skipped, and its output allocated as pool() allocates it, from the shape the case computed.
        def pool_shape_only(padded, x_shape, kernel, strides, out_shape, *args, **kwargs):
            return np.zeros([x_shape[0], x_shape[1], *list(out_shape)], dtype=padded.dtype)
        pool_common.pool = pool_shape_only
        out = sys.argv[1]
        for case in node.collect_testcases():
            folder = os.path.join(out, case.name)
            data = os.path.join(folder, "test_data_set_0")
            os.makedirs(data)
            with open(os.path.join(folder, "model.onnx"), "wb") as f:
                f.write(case.model.SerializeToString())
            inputs, outputs = case.data_sets[0]
            for kind, values, declared in (("input", inputs, case.model.graph.input), ("output", outputs, case.model.graph.output)):
                for j, value in enumerate(values):
                    if j >= len(declared) or not declared[j].type.HasField("tensor_type"):
                        continue  # sequences, maps and optionals
                    tensor = value if isinstance(value, onnx.TensorProto) else numpy_helper.from_array(np.asarray(value), declared[j].name)
                    with open(os.path.join(data, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(tensor.SerializeToString())
        """

    /// Bits per element of each ONNX element type (onnx.proto's `TensorProto.DataType`), written
    /// out here rather than taken from the importer. STRING (8) has no size and is not listed.
    static let bits: [Int32: Int] = [
        1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128,
        16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2, 27: 6, 28: 6,
    ]

    enum Outcome: String { case right, wrong, unsupported }

    struct Tally {
        var cases = 0, right = 0, wrong = 0, unsupported = 0
        mutating func add(_ outcome: Outcome) {
            cases += 1
            switch outcome {
            case .right: right += 1
            case .wrong: wrong += 1
            case .unsupported: unsupported += 1
            }
        }
        mutating func add(_ other: Tally) {
            cases += other.cases; right += other.right; wrong += other.wrong; unsupported += other.unsupported
        }
    }

    @Test func inferredShapesMatchTheBackendNodeTests() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-backend-node-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.generator, folder.path]
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch {
            print("skipped: python3 is not installed (with pip install onnx, the onnx package's backend node tests are the test data)")
            return
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationStatus == 77 || process.terminationStatus == 127 {
            print("skipped: the onnx Python package is not installed (pip install onnx) -- its backend node tests are the test data")
            return
        }
        try #require(process.terminationStatus == 0, "generating the cases failed: \(String(decoding: message, as: UTF8.self))")

        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        // A few hundred cases at the least (1,884 with onnx 1.23): an empty folder must not pass.
        try #require(names.count > 500, "only \(names.count) cases were generated")
        var models = [String: Onnx_ModelProto]()
        for name in names {
            models[name] = try ONNXImporter.decode(try Data(contentsOf: folder.appendingPathComponent(name).appendingPathComponent("model.onnx")))
        }
        var tallies = [String: Tally]()
        var failures = [String]()
        for name in names {
            let model = models[name]!
            let op = Self.opType(of: name, models: models)
            let cases = folder.appendingPathComponent(name).appendingPathComponent("test_data_set_0")
            let (outcome, problems) = try Self.check(model, name: name, data: cases)
            if let why = Self.knownWrong[name] {
                #expect(outcome == .wrong, "\(name) is listed as known wrong (\(why)) but is \(outcome.rawValue): take it off the list")
            } else {
                failures += problems
            }
            tallies[op, default: Tally()].add(outcome)
        }
        for problem in failures { Issue.record("\(problem)") }

        let table = Self.table(tallies)
        if let path = ProcessInfo.processInfo.environment["ONNX_BACKEND_SHAPES_TABLE"], !path.isEmpty {
            try Data(table.utf8).write(to: URL(fileURLWithPath: path))
        }
        let total = tallies.values.reduce(into: Tally()) { $0.add($1) }
        print("ONNX backend node tests: \(total.cases) cases, \(total.right) right, \(total.unsupported) unsupported, \(total.wrong) wrong (\(Self.knownWrong.count) known)")
    }

    /// The op a case tests: its node's (domain-qualified outside ai.onnx); a function expanded into
    /// primitive ops (`<case>_expanded`, `<case>_expanded_verN`) counts under the op it expands.
    static func opType(of name: String, models: [String: Onnx_ModelProto]) -> String {
        var base = name
        if let range = name.range(of: "_expanded"), models[String(name[..<range.lowerBound])] != nil {
            base = String(name[..<range.lowerBound])
        }
        guard let node = models[base]?.graph.node.first else { return "(none)" }
        return node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : "\(node.domain).\(node.opType)"
    }

    /// Imports one case and compares its outputs with the reference's.
    static func check(_ original: Onnx_ModelProto, name: String, data: URL) throws -> (Outcome, [String]) {
        var model = original
        // Inputs after the first become initializers holding the case's data (see the suite's comment).
        var kept = [Onnx_ValueInfoProto]()
        var constants = [Onnx_TensorProto]()
        for (j, input) in model.graph.input.enumerated() {
            let url = data.appendingPathComponent("input_\(j).pb")
            if j > 0, input.type.tensorType.hasShape, let bytes = try? Data(contentsOf: url) {
                var tensor = try Onnx_TensorProto(serializedBytes: bytes)
                tensor.name = input.name
                constants.append(tensor)
            } else {
                kept.append(input)
            }
        }
        model.graph.input = kept
        model.graph.initializer += constants
        let bytes = try ONNXImporter.encode(model)

        // What import does not take at all: sequence, optional, map or shapeless inputs, and
        // symbolic dimensions other than the leading one (it says so and stops, by design).
        let takesInputs = model.graph.input.allSatisfy { input in
            guard input.type.tensorType.hasShape else { return false }
            return input.type.tensorType.shape.dim.dropFirst().allSatisfy { if case .dimValue = $0.value { return true } else { return false } }
        }
        // A model without inputs computes constants only: everything folds, nothing is left to place.
        if model.graph.input.isEmpty || !takesInputs { return (.unsupported, []) }
        let result: ONNXImportResult
        do {
            result = try ONNXImporter().importModel(from: bytes, name: name)
        } catch {
            // Refused for an op shape inference does not know, or whose output shape depends on
            // values it does not know: the message says so, and the estimate must then import it.
            guard error.description.contains("--unknown-ops=estimate gives it a fallback estimate") else {
                return (.wrong, ["\(name): import refused a model the reference ran: \(error)"])
            }
            do {
                result = try ONNXImporter(options: ONNXImportOptions(unknownOps: .estimate)).importModel(from: bytes, name: name)
            } catch let refusal {
                return (.wrong, ["\(name): refused even with --unknown-ops=estimate: \(refusal)"])
            }
            if result.estimatedOps.isEmpty {
                return (.wrong, ["\(name): refused without --unknown-ops=estimate (\(error)) but nothing was estimated with it"])
            }
        }

        var problems = [String]()
        var compared = 0
        let estimated = !result.estimatedOps.isEmpty
        for (j, output) in model.graph.output.enumerated() {
            let url = data.appendingPathComponent("output_\(j).pb")
            guard let bytes = try? Data(contentsOf: url) else { continue }   // not a tensor
            let truth = try Onnx_TensorProto(serializedBytes: bytes)
            let shape = truth.dims.map { Int($0) }
            guard let got = result.tensors[output.name] else {
                problems.append("\(name): output \(output.name) has no tensor")
                continue
            }
            // Behind an estimated op only the estimate's own rule is checked: a declared shape is kept.
            if estimated && !got.estimated { continue }
            // An estimate can only keep what the model declares: a shape whose every dimension
            // is a number (none for a scalar), an element type.
            let declared = output.type.tensorType
            let shapeKnown = !got.estimated || (declared.hasShape && declared.shape.dim.allSatisfy {
                if case .dimValue = $0.value { return true } else { return false }
            })
            let typeKnown = !got.estimated || declared.elemType != 0
            if shapeKnown || typeKnown { compared += 1 }
            var wrong = [String]()
            if shapeKnown && got.shape != shape { wrong.append("shape \(got.shape), expected \(shape)") }
            if typeKnown && got.elementType != truth.dataType { wrong.append("element type \(got.elementType), expected \(truth.dataType)") }
            if let bits = Self.bits[truth.dataType], shapeKnown && typeKnown, got.shape == shape {
                let expectedBytes = (shape.reduce(1, *) * bits + 7) / 8
                if got.bytes != expectedBytes { wrong.append("\(got.bytes) bytes, expected \(expectedBytes)") }
            }
            if !wrong.isEmpty {
                problems.append("\(name): output \(j) (\(output.name))\(got.estimated ? " estimated" : ""): " + wrong.joined(separator: ", "))
            }
        }
        if !problems.isEmpty { return (.wrong, problems) }
        // Right only when something was compared (not when every output is a sequence or a map).
        return (estimated || compared == 0 ? .unsupported : .right, [])
    }

    /// The per-op Markdown table, ops in alphabetical order, with the totals.
    static func table(_ tallies: [String: Tally]) -> String {
        var lines = ["| op | cases | right | unsupported | wrong |", "| --- | ---: | ---: | ---: | ---: |"]
        var total = Tally()
        for (op, tally) in tallies.sorted(by: { $0.key < $1.key }) {
            lines.append("| \(op) | \(tally.cases) | \(tally.right) | \(tally.unsupported) | \(tally.wrong) |")
            total.add(tally)
        }
        lines.append("| **total** | **\(total.cases)** | **\(total.right)** | **\(total.unsupported)** | **\(total.wrong)** |")
        return lines.joined(separator: "\n") + "\n"
    }
}
