import ArgumentParser
import Basics
import Foundation
import Placement

/// `fedbaechi report METRICS`: a metrics file (`train --metrics`) as a one-screen text summary, an SVG of
/// the loss and accuracy curves beside it, and optionally TensorBoard event files.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Summarise a metrics file of `train --metrics` and draw its loss and accuracy curves.",
        discussion: """
            Prints a table of the epochs (single, model-parallel) or rounds (federated) with the best \
            test score, and writes an SVG of the loss and accuracy (or perplexity) curves beside the \
            file (METRICS with .svg in place of its extension). A federated run's curves include every \
            site's own model. --tensorboard writes the same curves as TensorBoard event files.

            Examples:
              fedbaechi train --mode single --model lenet --epochs 5 --metrics lenet.jsonl
              fedbaechi report lenet.jsonl
              fedbaechi report lenet.jsonl --tensorboard runs/lenet
              tensorboard --logdir runs
            """
    )

    @Argument(help: ArgumentHelp("A metrics file written by `fedbaechi train --metrics`.", valueName: "metrics"))
    var metrics: String

    @Option(help: ArgumentHelp("Write the SVG here instead of beside the metrics file ('-' for none).", valueName: "file"))
    var svg: String?

    @Option(help: ArgumentHelp("Also write the curves as a TensorBoard event file into this folder.", valueName: "folder"))
    var tensorboard: String?

    @Flag(help: "Print the summary as JSON instead of a table.")
    var json = false

    func run() throws {
        let history = try TrainingHistory.read(metrics)
        let svgPath = svg ?? ((metrics as NSString).deletingPathExtension + ".svg")
        if svgPath != "-" {
            do { try MetricsChart.svg(history, title: (metrics as NSString).lastPathComponent).write(toFile: svgPath, atomically: true, encoding: .utf8) } catch {
                throw Refusal(FileProblem.writeFailure(error, path: svgPath))
            }
        }
        var tensorboardFile: String?
        if let tensorboard {
            tensorboardFile = try history.writeTensorBoard(directory: tensorboard)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(history.summary(svg: svgPath == "-" ? nil : svgPath, tensorboard: tensorboardFile)), as: UTF8.self))
        } else {
            print(history.table())
            if svgPath != "-" { print("curves: \(svgPath)") }
            if let tensorboardFile { print("TensorBoard: \(tensorboardFile) (tensorboard --logdir \(tensorboard!))") }
        }
    }
}

/// The records of a metrics file, by kind.
struct TrainingHistory {
    /// One epoch (single, model-parallel) or round (federated).
    struct Point: Codable {
        var index: Int
        var trainLoss: Double?
        var testLoss: Double?
        var accuracy: Double?
        var perplexity: Double?
        var seconds: Double
        /// Federated: each site's own model after the round.
        var sites: [Site] = []

        enum CodingKeys: String, CodingKey {
            case index, accuracy, perplexity, seconds, sites
            case trainLoss = "train_loss", testLoss = "test_loss"
        }
    }

    struct Site: Codable {
        var site: Int
        var trainLoss: Double
        var testLoss: Double
        var accuracy: Double?

        enum CodingKeys: String, CodingKey {
            case site, accuracy
            case trainLoss = "train_loss", testLoss = "test_loss"
        }
    }

    /// "epoch" or "round".
    var unit = "epoch"
    var points: [Point] = []
    /// What the run was: the first record's model, dataset, mode and the like.
    var description: [String: String] = [:]
    /// The model-parallel summary line, when there is one (step times, memory).
    var summaryLine: String?

    static func read(_ path: String) throws -> TrainingHistory {
        let data: Data
        do { data = try GraphFile.read(path: path) } catch {
            throw Refusal("cannot read \(path): \(FileProblem.reason(error, path: path)) (expected the JSON lines of `fedbaechi train --metrics`)")
        }
        var history = TrainingHistory()
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            try history.add(text, where: "\(path) line \(number + 1)")
        }
        guard !history.points.isEmpty else {
            throw Refusal("\(path) holds no epoch or round record (expected the JSON lines of `fedbaechi train --metrics`)")
        }
        // A resumed run appends: the newest record of an epoch or round counts.
        var latest: [Int: Point] = [:]
        for point in history.points { latest[point.index] = point }
        history.points = latest.keys.sorted().map { latest[$0]! }
        return history
    }

    /// The fields of every record kind, all optional (JSONDecoder: numbers are numbers, `true` is not 1).
    private struct Record: Decodable {
        struct SiteRecord: Decodable {
            var site: Int
            var train_loss: Double?
            var test_loss: Double?
            var test_accuracy: Double?
        }
        var kind, model, dataset, mode, optimizer, aggregation, partition: String?
        var epoch, round, batch_size, sites: Int?
        var seed: UInt64?
        var learning_rate, train_loss, test_loss, test_accuracy, test_perplexity, train_seconds: Double?
        var global_loss, global_accuracy, global_perplexity, seconds, median_step_ms, predicted_step_ms: Double?
        var within_memory: Bool?
        var per_site: [SiteRecord]?
    }

    /// Files written before records had a `kind` are read too: the kind follows from the keys.
    private mutating func add(_ line: String, where location: String) throws {
        let record: Record
        do { record = try JSONDecoder().decode(Record.self, from: Data(line.utf8)) } catch {
            throw Refusal("\(location): not a record of `fedbaechi train --metrics` (\(PlaceSetup.describe(error)))")
        }
        let kind = record.kind ?? (record.round != nil ? "round" : record.epoch != nil ? "epoch" : "summary")
        for (key, value) in [("model", record.model), ("dataset", record.dataset), ("mode", record.mode), ("optimizer", record.optimizer),
                             ("aggregation", record.aggregation), ("partition", record.partition),
                             ("seed", record.seed.map(String.init)), ("batch_size", record.batch_size.map(String.init)),
                             ("learning_rate", record.learning_rate.map { String(format: "%g", $0) }), ("sites", record.sites.map(String.init))] {
            if description[key] == nil, let value { description[key] = value }
        }
        switch kind {
        case "epoch":
            guard let index = record.epoch else { throw Refusal("\(location): an epoch record without \"epoch\"") }
            unit = "epoch"
            points.append(Point(index: index, trainLoss: record.train_loss, testLoss: record.test_loss, accuracy: record.test_accuracy,
                                perplexity: record.test_perplexity, seconds: record.train_seconds ?? 0))
        case "round":
            guard let index = record.round else { throw Refusal("\(location): a round record without \"round\"") }
            unit = "round"
            let sites = (record.per_site ?? []).map {
                Site(site: $0.site, trainLoss: $0.train_loss ?? .nan, testLoss: $0.test_loss ?? .nan, accuracy: $0.test_accuracy)
            }
            points.append(Point(index: index, trainLoss: sites.isEmpty ? nil : sites.map(\.trainLoss).reduce(0, +) / Double(sites.count),
                                testLoss: record.global_loss, accuracy: record.global_accuracy, perplexity: record.global_perplexity,
                                seconds: record.seconds ?? 0, sites: sites))
        case "step":
            break  // --log-every's per-step losses: the report draws epochs and rounds
        case "summary":
            if let median = record.median_step_ms, let predicted = record.predicted_step_ms {
                summaryLine = String(format: "model-parallel: median step %.2f ms (predicted %.2f ms)", median, predicted)
                    + (record.within_memory.map { $0 ? ", within memory" : ", ABOVE the memory limit" } ?? "")
            }
        default:
            throw Refusal("\(location): unknown record kind \"\(kind)\" (expected epoch, round, step or summary)")
        }
    }

    var isFederated: Bool { unit == "round" }
    var qualityName: String { points.contains { $0.accuracy != nil } ? "accuracy" : "perplexity" }
    func quality(_ point: Point) -> Double? { qualityName == "accuracy" ? point.accuracy : point.perplexity }

    /// The table people read.
    func table() -> String {
        var lines: [String] = []
        let facts = ["mode", "model", "dataset", "optimizer", "learning_rate", "batch_size", "aggregation", "partition", "sites", "seed"]
            .compactMap { key in description[key].map { "\(key.replacingOccurrences(of: "_", with: " ")) \($0)" } }
        lines.append(facts.joined(separator: ", ") + ": \(points.count) \(unit)\(points.count == 1 ? "" : "s")")
        let lossHeader = isFederated ? "mean site train loss  global loss" : "train loss  test loss"
        let qualityHeader = isFederated ? "global \(qualityName)" : "test \(qualityName)"
        lines.append(unit.padding(6) + "  " + lossHeader + "  " + qualityHeader + (isFederated ? "  sites' own \(qualityName)" : "") + "  seconds")
        func format(_ value: Double?, _ width: Int, _ digits: Int = 4) -> String {
            (value.map { String(format: "%.\(digits)f", $0) } ?? "-").leftPadding(width)
        }
        for point in points {
            var line = String(point.index).leftPadding(6) + "  "
            line += isFederated ? format(point.trainLoss, 21) + "  " + format(point.testLoss, 11)
                                : format(point.trainLoss, 10) + "  " + format(point.testLoss, 9)
            line += "  " + format(quality(point), qualityHeader.count)
            if isFederated {
                let own = point.sites.compactMap(\.accuracy)
                let range = own.isEmpty ? "-" : String(format: "%.4f to %.4f", own.min()!, own.max()!)
                line += "  " + range.leftPadding("sites' own \(qualityName)".count)
            }
            line += "  " + String(format: "%7.1f", point.seconds)
            lines.append(line)
        }
        let scored = points.filter { quality($0) != nil }
        if let best = qualityName == "accuracy" ? scored.max(by: { quality($0)! < quality($1)! }) : scored.min(by: { quality($0)! < quality($1)! }) {
            lines.append("best \(isFederated ? "global " : "test ")\(qualityName) \(String(format: "%.4f", quality(best)!)) at \(unit) \(best.index); "
                         + "total \(String(format: "%.1f", points.map(\.seconds).reduce(0, +))) s")
        }
        if let summaryLine { lines.append(summaryLine) }
        return lines.joined(separator: "\n")
    }

    struct Summary: Codable {
        var unit: String
        var run: [String: String]
        var points: [Point]
        var svg: String?
        var tensorboard: String?
    }

    func summary(svg: String?, tensorboard: String?) -> Summary {
        Summary(unit: unit, run: description, points: points, svg: svg, tensorboard: tensorboard)
    }

    /// The curves as one TensorBoard event file in `directory`; returns its path. Steps are epochs or
    /// rounds; wall times count the recorded seconds from now backwards, so spacing is as measured.
    func writeTensorBoard(directory: String) throws -> String {
        let end = Date().timeIntervalSince1970
        var clock = end - points.map(\.seconds).reduce(0, +)
        var writer = try TensorBoardWriter(directory: directory, wallTime: clock)
        for point in points {
            clock += point.seconds
            var scalars: [(tag: String, value: Double)] = []
            if let value = point.trainLoss { scalars.append((isFederated ? "loss/mean_site_train" : "loss/train", value)) }
            if let value = point.testLoss { scalars.append((isFederated ? "loss/global_test" : "loss/test", value)) }
            if let value = quality(point) { scalars.append(("\(qualityName)/\(isFederated ? "global_test" : "test")", value)) }
            for site in point.sites {
                scalars.append(("site_\(site.site)/train_loss", site.trainLoss))
                if let accuracy = site.accuracy { scalars.append(("site_\(site.site)/accuracy", accuracy)) }
            }
            scalars.append(("time/seconds", point.seconds))
            try writer.add(step: point.index, wallTime: clock, scalars: scalars.filter { $0.value.isFinite })
        }
        try writer.flush()
        return writer.path
    }
}
