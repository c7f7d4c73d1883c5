import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TestSupport
import Testing

private let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
private let eventReader = packageRoot.appendingPathComponent("Tests/Fixtures/read_tfevents.py").path

/// The JSON objects of a metrics file.
private func records(_ path: String) throws -> [[String: Any]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
}

/// The titles of an SVG's polylines (one per curve), read with an XML parser: the file must be well formed.
private final class CurveTitles: NSObject, XMLParserDelegate {
    var titles: [String] = []
    var points: [String: Int] = [:]
    private var inPolyline = false, inTitle = false, text = "", pointCount = 0
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
        if name == "polyline" { inPolyline = true; pointCount = (attributes["points"] ?? "").split(separator: " ").count }
        if name == "title" && inPolyline { inTitle = true; text = "" }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { if inTitle { text += string } }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "title" && inTitle { titles.append(text); points[text] = pointCount; inTitle = false }
        if name == "polyline" { inPolyline = false }
    }

    static func read(_ path: String) throws -> CurveTitles {
        let reader = CurveTitles()
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: path)))
        parser.delegate = reader
        #expect(parser.parse(), "\(path) is not well-formed XML")
        return reader
    }
}

/// The scalars of a TensorBoard event file, by the independent reader of Tests/Fixtures/read_tfevents.py.
private func tensorBoardScalars(_ folder: String) throws -> (version: String?, scalars: [String: [[Double]]]) {
    let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("events.out.tfevents.") }
    #expect(files.count == 1, "\(files)")
    let result = try run(python!, [eventReader, folder + "/" + files[0]])
    #expect(result.status == 0, "reader: \(result.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    return (object?["file_version"] as? String, object?["scalars"] as? [String: [[Double]]] ?? [:])
}

@Suite struct ReportCLITests {
    /// A real single-process run: progress lines with throughput, records with a kind, and the report
    /// of them (table, SVG, TensorBoard) agreeing with the records.
    @Test(.enabled(if: fashionInstalled, "dataset-fashion-mnist is not installed"))
    func aTrainingRunIsReported() throws {
        let folder = try makeTemporaryFolder("report")
        defer { try? FileManager.default.removeItem(at: folder) }
        let metrics = folder.appendingPathComponent("run.jsonl").path
        let train = try fedbaechi(["train", "single", "--model", "mlp", "--limit-train", "32", "--limit-test", "16",
                                   "--batch-size", "8", "--epochs", "3", "--metrics", metrics])
        #expect(train.status == 0, "stderr: \(train.stderr)")
        #expect(train.stdout.firstMatch(of: /epoch 1 step 2\/4 loss \d+\.\d+, \d+ examples\/s, \d+ s left in the epoch, \d+ s in the run/) != nil,
                "stdout: \(train.stdout)")
        let lines = try records(metrics)
        #expect(lines.count == 3 && lines.allSatisfy { $0["kind"] as? String == "epoch" })

        let tensorboard = folder.appendingPathComponent("tb").path
        let report = try fedbaechi(["report", metrics, "--tensorboard", tensorboard])
        #expect(report.status == 0, "stderr: \(report.stderr)")
        let accuracies = lines.map { $0["test_accuracy"] as! Double }
        let best = accuracies.indices.max { accuracies[$0] < accuracies[$1] }!
        #expect(report.stdout.contains(String(format: "best test accuracy %.4f at epoch %d", accuracies[best], best + 1)), "stdout: \(report.stdout)")
        for line in lines {
            let row = String(format: "%6d  %10.4f  %9.4f", line["epoch"] as! Int, line["train_loss"] as! Double, line["test_loss"] as! Double)
            #expect(report.stdout.contains(row), "no row \(row) in \(report.stdout)")
        }
        let svg = folder.appendingPathComponent("run.svg").path
        #expect(report.stdout.contains("curves: \(svg)"))
        let curves = try CurveTitles.read(svg)
        #expect(curves.titles == ["train loss", "test loss", "test accuracy"])
        #expect(curves.points.values.allSatisfy { $0 == 3 })

        if python != nil {
            let (version, scalars) = try tensorBoardScalars(tensorboard)
            #expect(version == "brain.Event:2")
            for (tag, key) in [("loss/train", "train_loss"), ("loss/test", "test_loss"), ("accuracy/test", "test_accuracy")] {
                // Compared as the Float32 TensorBoard stores.
                let expected = lines.map { [Float($0["epoch"] as! Int), Float($0[key] as! Double)] }
                #expect(scalars[tag]?.map { $0.map(Float.init) } == expected, "\(tag): \(scalars[tag] ?? []) vs \(expected)")
            }
        }
    }

    /// A federated metrics file, written here as `train federated --metrics` writes it: the
    /// report draws every site's own curves and names the range of their accuracies.
    @Test func aFederatedRunHasPerSiteCurves() throws {
        let folder = try makeTemporaryFolder("report")
        defer { try? FileManager.default.removeItem(at: folder) }
        let metrics = folder.appendingPathComponent("fed.jsonl").path
        func site(_ id: Int, _ round: Int) -> String {
            let accuracy = 0.5 + 0.1 * Double(round) + 0.01 * Double(id)
            return #"{"site": \#(id), "train_examples": 100, "train_loss": \#(1.0 / Double(round + id)), "test_loss": 0.9, "test_accuracy": \#(accuracy), "test_examples": 20, "bytes_sent": 1000, "local_seconds": 1.5, "aggregation_seconds": 0.1}"#
        }
        let text = (1...2).map { round in
            #"{"kind": "round", "mode": "federated", "round": \#(round), "rounds": 2, "model": "lenet", "dataset": "fashion-mnist", "aggregation": "admm", "masked": true, "iterations": 4, "sites": 3, "partition": "iid", "seed": 1, "global_loss": \#(1.0 - 0.2 * Double(round)), "global_accuracy": \#(0.6 + 0.1 * Double(round)), "seconds": 2.5, "local_seconds_max": 1.5, "aggregation_seconds_max": 0.1, "bytes_sent_max": 1000, "per_site": [\#((0..<3).map { site($0, round) }.joined(separator: ", "))]}"#
        }.joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: metrics))
        let tensorboard = folder.appendingPathComponent("tb").path
        let report = try fedbaechi(["report", metrics, "--tensorboard", tensorboard])
        #expect(report.status == 0, "stderr: \(report.stderr)")
        #expect(report.stdout.contains("aggregation admm") && report.stdout.contains("sites 3"), "stdout: \(report.stdout)")
        #expect(report.stdout.contains("0.7000 to 0.7200"), "stdout: \(report.stdout)")  // round 2's sites' own accuracies
        #expect(report.stdout.contains("best global accuracy 0.8000 at round 2"))
        let curves = try CurveTitles.read(folder.appendingPathComponent("fed.svg").path)
        for id in 0..<3 {
            #expect(curves.titles.contains("site \(id) train loss") && curves.titles.contains("site \(id) own accuracy"), "\(curves.titles)")
        }
        if python != nil {
            let (_, scalars) = try tensorBoardScalars(tensorboard)
            func float(_ tag: String) -> [[Float]]? { scalars[tag]?.map { $0.map(Float.init) } }
            #expect(float("site_2/accuracy") == [[1, 0.62], [2, 0.72]], "\(scalars)")
            #expect(float("accuracy/global_test") == [[1, 0.7], [2, 0.8]])
        }
    }

    @Test func aDamagedMetricsFileIsNamedByLine() throws {
        let folder = try makeTemporaryFolder("report")
        defer { try? FileManager.default.removeItem(at: folder) }
        let metrics = folder.appendingPathComponent("bad.jsonl").path
        try Data("{\"kind\": \"epoch\", \"epoch\": 1, \"train_loss\": 1.5, \"train_seconds\": 1}\n{\"epoch\": \"two\"}\n".utf8)
            .write(to: URL(fileURLWithPath: metrics))
        let report = try fedbaechi(["report", metrics])
        #expect(report.status == 2)
        #expect(report.stderr.contains("\(metrics) line 2: not a record of `fedbaechi train --metrics`"), "stderr: \(report.stderr)")
    }
}
