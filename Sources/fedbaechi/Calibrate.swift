import ArgumentParser
import Basics
import Foundation
import MPI
import ONNXImport
import Placement
import Runtime
import Tensors

/// `fedbaechi calibrate`: measures this machine's rates for the cost model of ONNX placement.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine's FLOP rate, memory bandwidth and per-op overhead for the ONNX cost model, or (--link, under mpirun) the links between ranks.",
        discussion: """
            Runs the project's own kernels: a matrix product (sgemm through the Tensors MatMul op) \
            for the FLOP rate, a ReLU over a tensor far larger than the caches for the memory \
            bandwidth (bytes read plus written), and a ReLU of one element for the fixed cost of an \
            op. Each figure is the median of --repeats measurements. The output is a JSON file with \
            a "cost_model" object that `fedbaechi place --cost-model FILE` reads (see docs/formats.md).

            With --link, run under an MPI launcher with at least 2 ranks: every pair of ranks \
            ping-pongs messages of 8 B, 64 B, ... up to --link-max-bytes (each size eight times the \
            one before), the one-way time of a size being the median of --repeats samples, and a \
            least-squares fit of time = latency + bytes / bandwidth per pair gives its link, with the \
            fit's R² and largest relative residual. Rank 0 prints the table and writes a JSON file \
            with a "links" object that `fedbaechi train model-parallel --links FILE` places with.

            Example:
              fedbaechi calibrate --output device.json
              fedbaechi place resnet50.onnx --cost-model device.json \\
                  --devices 4 --memory 8GiB
              mpirun -np 2 fedbaechi calibrate --link --output links.json
              mpirun -np 2 fedbaechi train model-parallel --links links.json
            """
    )

    @Option(help: ArgumentHelp("Write the device file here ('-' or absent: standard output).", valueName: "file"))
    var output: String?

    @Option(help: "Measurements per figure; the median is kept.")
    var repeats: Int = 9

    @Option(help: "Matrix size n of the n x n x n product.")
    var size: Int = 1024

    @Option(help: "Bytes of the tensor the bandwidth is measured on (e.g. 64MiB).")
    var bandwidthBytes: String = "64MiB"

    @Flag(help: "Measure the links between every pair of ranks instead (under mpirun, at least 2 ranks).")
    var link = false

    @Option(help: "--link: the largest message (64B to 256MiB; sizes go from 8 B up in steps of x8).")
    var linkMaxBytes: String = "16MiB"

    func run() throws {
        if link { return try runLink() }
        guard repeats >= 1 && repeats <= 1000 else { throw Refusal("--repeats must be between 1 and 1000") }
        guard size >= 16 && size <= 8192 else { throw Refusal("--size must be between 16 and 8192") }
        let streamBytes = try PlaceSetup.parse { () throws(Quantity.ParseError) in try Quantity.bytes(bandwidthBytes) }
        guard streamBytes >= 1 << 20 && streamBytes <= 4 << 30 else { throw Refusal("--bandwidth-bytes must be between 1MiB and 4GiB") }

        let context = ExecutionContext(training: false)
        func seconds(_ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        func medianOf(_ body: () -> Double) -> Double {
            _ = body()   // warm-up: page faults, thread start-up, frequency ramp
            return median((0..<repeats).map { _ in body() })
        }

        let n = size
        let a = Tensor(shape: [n, n], data: (0..<(n * n)).map { Float($0 % 7) * 0.125 })
        let b = Tensor(shape: [n, n], data: (0..<(n * n)).map { Float($0 % 5) * 0.25 })
        let product = MatMul()
        var sink: Float = 0
        let gemmSeconds = medianOf { seconds { sink += product.forward([a, b], context: context)[0].data[n + 1] } }
        let flopRate = 2 * Double(n) * Double(n) * Double(n) / gemmSeconds

        let elements = streamBytes / 4
        let big = Tensor(shape: [elements], data: (0..<elements).map { Float($0 % 3) - 1 })
        let relu = ReLU()
        let streamSeconds = medianOf { seconds { sink += relu.forward([big], context: context)[0].data[elements / 2] } }
        let bandwidth = 2 * Double(elements * 4) / streamSeconds

        let tiny = Tensor(shape: [1], data: [1])
        let calls = 1000
        let overheadSeconds = medianOf {
            seconds { for _ in 0..<calls { sink += relu.forward([tiny], context: context)[0].data[0] } } / Double(calls)
        }

        let model = CostModel(flopsPerSecond: flopRate, memoryBytesPerSecond: bandwidth, opOverheadMicros: overheadSeconds * 1e6)
        let host = ProcessInfo.processInfo.hostName
        let document: [String: Any] = [
            "cost_model": [
                "flops_per_second": (model.flopsPerSecond).rounded(),
                "memory_bytes_per_second": (model.memoryBytesPerSecond).rounded(),
                "op_overhead_us": (model.opOverheadMicros * 1000).rounded() / 1000,
            ],
            "measured": [
                "host": host,
                "blas": BLAS.coreName,
                "blas_threads": BLAS.threadCount,
                "sgemm_size": n,
                "stream_bytes": elements * 4,
                "repeats": repeats,
                "method": "medians: MatMul n x n x n (2n^3 FLOPs); ReLU read+write of stream_bytes; ReLU of 1 element, 1000 calls",
            ] as [String: Any],
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
        let text = String(decoding: data, as: UTF8.self) + "\n"
        if let output, output != "-" {
            do { try Data(text.utf8).write(to: URL(fileURLWithPath: output)) } catch {
                throw Refusal(FileProblem.writeFailure(error, path: output))
            }
            print("FLOP rate \(Quantity.formatNumber(flopRate / 1e9)) GFLOP/s, memory \(Quantity.formatBandwidth(bytesPerSecond: bandwidth)), op overhead \(Quantity.formatMicros(model.opOverheadMicros)) (\(BLAS.coreName), \(BLAS.threadCount) BLAS thread\(BLAS.threadCount == 1 ? "" : "s")); wrote \(output)")
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        if sink.isNaN { print("") }   // keeps the measured results alive
    }
}

extension Calibrate {
    /// `calibrate --link`: Runtime measures; rank 0 prints the table and writes the file.
    func runLink() throws {
        guard repeats >= 1 && repeats <= 1000 else { throw Refusal("--repeats must be between 1 and 1000") }
        let largest = try PlaceSetup.parse { () throws(Quantity.ParseError) in try Quantity.bytes(linkMaxBytes) }
        guard largest >= 64 && largest <= 256 << 20 else { throw Refusal("--link-max-bytes must be between 64B and 256MiB") }
        var sizes = [8]
        while sizes.last! * 8 <= largest { sizes.append(sizes.last! * 8) }
        let output = self.output.flatMap { $0 == "-" ? nil : $0 }
        guard let measured = try LinkCalibration.runJob(sizes: sizes, repeats: repeats, rootCheck: {
            output.flatMap { path in FileProblem.unwritable(path).map { "cannot write \(path): \($0)" } }
        }) else { return }

        let document: [String: Any] = [
            "links": try JSONSerialization.jsonObject(with: JSONEncoder().encode(measured)),
            "measured": [
                "sizes": sizes,
                "repeats": repeats,
                "round_trips": sizes.map(LinkCalibration.roundTrips(forBytes:)),
                "mpi": MPIEnvironment.libraryVersion,
                "method": "pairs one at a time, other ranks idle; per size: round_trips ping-pongs per sample, one-way time = elapsed / (2 round_trips), median of repeats samples; least squares time = latency + bytes / bandwidth weighted by 1/time^2",
            ] as [String: Any],
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
        let text = String(decoding: data, as: UTF8.self) + "\n"
        let table = Self.table(measured)
        if let output {
            do { try Data(text.utf8).write(to: URL(fileURLWithPath: output)) } catch {
                throw Refusal(FileProblem.writeFailure(error, path: output))
            }
            print(table + "\nwrote \(output)")
        } else {
            FileHandle.standardError.write(Data((table + "\n").utf8))
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    /// One line per pair: its ranks and hosts, the fitted link and the fit's error.
    static func table(_ measured: MeasuredLinks) -> String {
        func column(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        let hostWidth = max(5, measured.pairs.map { $0.hosts.joined(separator: " - ").count }.max() ?? 0) + 2
        var lines = [column("ranks", 7) + column("hosts", hostWidth) + column("latency", 11) + column("bandwidth", 13) + column("R^2", 10) + "max relative residual"]
        for pair in measured.pairs {
            lines.append(column("\(pair.ranks[0])-\(pair.ranks[1])", 7) + column(pair.hosts.joined(separator: " - "), hostWidth)
                         + column(Quantity.formatMicros(pair.latencyMicros), 11)
                         + column(Quantity.formatBandwidth(bytesPerSecond: pair.bandwidthBytesPerSecond), 13)
                         + column(String(format: "%.6f", pair.rSquared), 10)
                         + String(format: "%.1f%%", pair.maxRelativeResidual * 100))
        }
        return lines.joined(separator: "\n")
    }
}
