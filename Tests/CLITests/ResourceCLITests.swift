import Foundation
import TestSupport
import Testing

private let fig1Path = packageRoot.appendingPathComponent("Tests/Fixtures/fig1.json").path

/// One bad value of a size or count flag and what the command line must say about it. The table in
/// docs/reliability.md lists the same cases.
struct ResourceCase: Sendable, CustomTestStringConvertible {
    var arguments: [String]
    var status: Int32
    var message: String
    var testDescription: String { arguments.joined(separator: " ") }
}

private func place(_ extra: [String], devices: String? = "2", memory: String? = "1GiB") -> [String] {
    ["place", fig1Path] + (devices.map { ["--devices", $0] } ?? []) + (memory.map { ["--memory", $0] } ?? []) + extra
}

/// A flag's value that is wrong on its face (out of range, not a number, a size without its unit) is a
/// usage error: exit 64, the message on the first line, then the usage. What only the run can judge (a
/// graph, a generated graph's size) prints one line and exits 2; 3 when the memory is too small for any
/// plan.
let resourceCases: [ResourceCase] = [
    .init(arguments: place([], devices: "0"), status: 64, message: "--devices must be between 1 and 256, not 0"),
    .init(arguments: place([], devices: "257"), status: 64, message: "--devices must be between 1 and 256, not 257"),
    .init(arguments: place([], devices: "many"), status: 64, message: "The value 'many' is invalid for '--devices <devices>'"),
    .init(arguments: place([], devices: "99999999999999999999"), status: 64, message: "is invalid for '--devices <devices>'"),
    .init(arguments: place([], memory: "0B"), status: 64, message: "--memory must be more than 0 bytes"),
    .init(arguments: place([], memory: "lots"), status: 64, message: #"cannot read "lots" as a memory size"#),
    .init(arguments: place(["--memory=-1GB"], memory: nil), status: 64, message: #"cannot read "-1GB" as a memory size"#),
    // Written with a space the value is still the value, not a flag: the same message and status.
    .init(arguments: place(["--memory", "-1GB"], memory: nil), status: 64, message: #"cannot read "-1GB" as a memory size"#),
    // A number without a unit is refused, not read as bytes (1.5 would have been 2 bytes).
    .init(arguments: place([], memory: "1.5"), status: 64, message: #"cannot read "1.5" as a memory size with its unit"#),
    .init(arguments: place([], memory: nil), status: 64, message: "give --memory SIZE for the 2 device(s)"),
    .init(arguments: ["train", "--model", "mlp", "--device-memory", "-1GB"], status: 64, message: #"cannot read "-1GB" as a memory size"#),
    .init(arguments: ["train", "--model", "mlp", "--device-memory", "512"], status: 64, message: "as a memory size with its unit"),
    .init(arguments: place([], memory: "2000000TB"), status: 64, message: "is out of range: at most 1 EiB"),
    .init(arguments: place([], memory: String(repeating: "9", count: 5000)), status: 64, message: "as a memory size"),
    .init(arguments: place([], memory: "2B"), status: 3, message: "finds a plan with 2 devices of"),
    .init(arguments: place(["--bandwidth", "0GB/s"]), status: 64, message: #"cannot read "0GB/s" as a bandwidth"#),
    .init(arguments: place(["--bandwidth", "0.1B/s"]), status: 64, message: "a bandwidth from 1B/s to 1PB/s"),
    .init(arguments: place(["--bandwidth", "1e300TB/s"]), status: 64, message: "a bandwidth from 1B/s to 1PB/s"),
    .init(arguments: place(["--latency=-1us"]), status: 64, message: #"cannot read "-1us" as a duration"#),
    .init(arguments: place(["--latency", "1e300s"]), status: 64, message: "at most 1e12us"),
    .init(arguments: place(["--sct-threshold", "0"]), status: 64, message: "--sct-threshold must be in (0, 1]"),
    .init(arguments: place(["--sct-threshold", "nan"]), status: 64, message: "--sct-threshold must be in (0, 1], not nan"),
    .init(arguments: place(["--repeat", "0"]), status: 64, message: "--repeat must be between 1 and 1000, not 0"),
    .init(arguments: place(["--repeat", "1000000000"]), status: 64, message: "--repeat must be between 1 and 1000"),
    .init(arguments: place(["--search=-1"]), status: 2, message: "--search must be between 0 and 100000, not -1"),
    .init(arguments: place(["--search", "200000"]), status: 2, message: "--search must be between 0 and 100000, not 200000"),
    .init(arguments: place(["--budget", "0s"]), status: 2, message: "--budget must be more than 0 and at most 1 hour"),
    .init(arguments: place(["--budget", "7200s"]), status: 2, message: "--budget must be more than 0 and at most 1 hour"),
    .init(arguments: place(["--budget", "soon"]), status: 2, message: #"cannot read "soon" as a duration"#),
    .init(arguments: place(["--seed", "x"]), status: 64, message: "The value 'x' is invalid for '--seed <seed>'"),
    .init(arguments: ["place", "synthetic:layered:0", "--devices", "2", "--memory", "1GiB"], status: 2,
          message: "expected synthetic:layered:NODES[:WIDTH[:SEED]]"),
    .init(arguments: ["place", "synthetic:layered:20000000", "--devices", "2", "--memory", "1GiB"], status: 2,
          message: "expected synthetic:layered:NODES[:WIDTH[:SEED]]"),
    .init(arguments: ["place", "synthetic:layered:100:0", "--devices", "2", "--memory", "1GiB"], status: 2,
          message: "expected synthetic:layered:NODES[:WIDTH[:SEED]]"),

    .init(arguments: ["train", "single", "--model", "mlp", "--epochs", "0"], status: 64, message: "--epochs must be between 1 and 1000000"),
    .init(arguments: ["train", "single", "--model", "mlp", "--epochs", "9223372036854775807"], status: 64,
          message: "--epochs must be between 1 and 1000000"),
    .init(arguments: ["train", "single", "--model", "mlp", "--batch-size", "0"], status: 64, message: "--batch-size must be at least 1"),
    .init(arguments: ["train", "single", "--model", "mlp", "--limit-train", "0"], status: 64, message: "--limit-train must be at least 1"),
    .init(arguments: ["train", "single", "--model", "mlp", "--limit-test", "0"], status: 64, message: "--limit-test must be at least 1"),
    .init(arguments: ["train", "single", "--model", "mlp", "--learning-rate", "0"], status: 64,
          message: "--learning-rate must be a positive number"),
    .init(arguments: ["train", "single", "--model", "mlp", "--learning-rate", "inf"], status: 64,
          message: "--learning-rate must be a positive number"),
    .init(arguments: ["train", "--model", "mlp", "--steps", "0"], status: 64, message: "--steps must be between 1 and 1000000000"),
    .init(arguments: ["train", "--model", "mlp", "--steps", "9223372036854775807"], status: 64,
          message: "--steps must be between 1 and 1000000000"),
    .init(arguments: ["train", "--model", "mlp", "--device-memory", "0B"], status: 64, message: "--device-memory must be more than 0 bytes"),
    .init(arguments: ["train", "--model", "mlp", "--device-memory", "2000000TB"], status: 64, message: "at most 1 EiB"),
    .init(arguments: ["train", "federated", "--rounds", "0"], status: 64, message: "--rounds must be between 1 and 100000"),
    .init(arguments: ["train", "federated", "--local-epochs", "0"], status: 64, message: "--local-epochs must be between 1 and 10000"),
    .init(arguments: ["train", "federated", "--iterations", "0"], status: 64, message: "--iterations must be between 1 and 400"),
    .init(arguments: ["train", "federated", "--partition", "shards:0"], status: 64, message: "is not iid, dirichlet:ALPHA"),

    .init(arguments: ["profile", "--model", "mlp", "--batch", "0"], status: 64, message: "--batch must be between 1 and 100000"),
    .init(arguments: ["profile", "--model", "mlp", "--batch", "8", "--repeats", "0"], status: 64, message: "--repeats must be between 1 and 1000"),
    .init(arguments: ["profile", "--model", "mlp", "--batch", "8", "--repeats", "1000000000"], status: 64,
          message: "--repeats must be between 1 and 1000"),
    .init(arguments: ["profile", "--model", "mlp", "--batch", "8", "--time-steps", "1000000000"], status: 64,
          message: "--time-steps must be between 0 and 100000"),
    .init(arguments: ["profile", "--model", "gru-lm", "--batch", "8", "--vocabulary", "2"], status: 64,
          message: "--vocabulary must be between 3 and 1000000"),

    .init(arguments: ["design", "--sites", "0"], status: 2, message: "--sites must be at least 3, got 0"),
    .init(arguments: ["design", "--sites", "151"], status: 2, message: "--sites must be at most 150"),
    .init(arguments: ["audit", "--sites", "2", "--iterations", "1"], status: 2, message: "--sites must be at least 3, got 2"),
    .init(arguments: ["audit", "--sites", "9", "--iterations", "0"], status: 2, message: "--iterations must be at least 1, got 0"),
    .init(arguments: ["audit", "--sites", "9", "--iterations", "401"], status: 2, message: "--iterations must be at most 400, got 401"),
    .init(arguments: ["audit", "--sites", "9", "--iterations", "4", "--coalition", "9"], status: 2,
          message: "--collusion must be between 1 and the number of sites less one (8), got 9"),
    .init(arguments: ["audit", "--sites", "45", "--iterations", "4", "--coalition", "6"], status: 2,
          message: "8145060 coalitions to check exceed the limit of 20000"),
]

@Suite struct ResourceCLITests {
    @Test(arguments: resourceCases)
    func badValueIsRefused(_ check: ResourceCase) throws {
        let result = try fedbaechi(check.arguments, timeout: 60)
        #expect(result.status == check.status, "stderr: \(result.stderr)")
        let lines = result.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        let first = lines.first.map(String.init) ?? ""
        #expect(first.contains(check.message), "stderr: \(result.stderr)")
        if check.status == 64 {
            #expect(first.hasPrefix("Error: "), "stderr: \(result.stderr)")
        } else {
            #expect(lines.count == 1 && first.hasPrefix("fedbaechi: error: "), "stderr: \(result.stderr)")
        }
    }

    /// ADMM needs three sites: a run on one rank (no mpirun) says so in one line, before any data is read.
    @Test func admmOnOneSiteIsRefused() throws {
        let result = try fedbaechi(["train", "federated", "--model", "lenet", "--data-directory", "/nonexistent"], timeout: 60)
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("ADMM aggregation needs at least 3 sites"), "stderr: \(result.stderr)")
    }
}
