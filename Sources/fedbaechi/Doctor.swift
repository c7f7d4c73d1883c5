import ArgumentParser
import Basics
import Foundation
import MPI
import Tensors

/// Checks a machine or a whole allocation: what runs where, and what is missing.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report ranks, hosts, the MPI and BLAS libraries and installed datasets, and what to install.",
        discussion: """
            Run it alone to check one machine, or under the launcher to check the whole job (rank 0 \
            reports for every rank). --data-directory checks a folder of your own for the datasets.

            Examples:
              mpirun -np 8 fedbaechi doctor
              fedbaechi doctor --data-directory ~/data/fashion-mnist
            """
    )

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: ArgumentHelp("Check this folder for the datasets (as `train --data-directory` reads it) instead of where Debian's packages install them.",
                               valueName: "folder"))
    var dataDirectory: String?

    struct RankReport: Codable {
        var rank: Int
        var host: String
        var pid: Int32
        var blasThreads: Int
    }

    struct DatasetReport: Codable {
        var name: String
        var directory: String
        var installed: Bool
        var missing: [String]
        var debianPackage: String
    }

    struct Report: Codable {
        var mpiLibrary: String
        var mpiStandard: String
        var threadLevel: String?
        var worldSize: Int
        var ranks: [RankReport]
        var blasConfiguration: String
        var blasCore: String
        var datasets: [DatasetReport]
        var missingPackages: [String]
        var advice: [String]
    }

    func run() throws {
        let underLauncher = MPIEnvironment.isUnderLauncher
        var report = Report(
            mpiLibrary: MPIEnvironment.libraryVersion,
            mpiStandard: "\(MPIEnvironment.standardVersion.major).\(MPIEnvironment.standardVersion.minor)",
            threadLevel: nil, worldSize: 1, ranks: [],
            blasConfiguration: BLAS.configuration, blasCore: BLAS.coreName,
            datasets: [], missingPackages: [], advice: [])
        let myself = RankReport(rank: 0, host: ProcessInfo.processInfo.hostName,
                                pid: ProcessInfo.processInfo.processIdentifier, blasThreads: BLAS.threadCount)

        if underLauncher {
            do {
                let level = try MPIEnvironment.initialize()
                let world = try MPIEnvironment.world()
                report.threadLevel = level.description
                report.worldSize = world.size
                var mine = myself
                mine.rank = world.rank
                let encoded = Array(try JSONEncoder().encode(mine))
                let gathered = try world.gatherv(encoded, root: 0)
                guard let gathered else { return }  // only rank 0 reports
                report.ranks = try gathered.map { try JSONDecoder().decode(RankReport.self, from: Data($0)) }
            } catch let error as MPIError {
                throw Refusal("MPI failed to start: \(error)", status: .runtime)
            }
        } else {
            report.ranks = [myself]
            if !Self.commandExists("mpirun") {
                report.missingPackages.append("openmpi-bin")
            }
        }

        for dataset in KnownDataset.allCases {
            let missing = dataset.missingFiles(in: dataDirectory)
            report.datasets.append(DatasetReport(
                name: dataset.rawValue, directory: dataDirectory ?? dataset.defaultDirectory, installed: missing.isEmpty,
                missing: missing, debianPackage: dataset.debianPackage))
            // A folder of the user's holds what they put there: no package installs into it.
            if !missing.isEmpty, dataDirectory == nil { report.missingPackages.append(dataset.debianPackage) }
        }
        report.advice = Self.advice(for: report)
        if let dataDirectory, !report.datasets.contains(where: \.installed) {
            report.advice.append("\(dataDirectory) holds no dataset fedbaechi reads: "
                                 + KnownDataset.allCases.map { "\($0.rawValue) needs \($0.expectedContents)" }.joined(separator: "; "))
        }

        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.render(report))
        }
    }

    static func advice(for report: Report) -> [String] {
        var advice: [String] = []
        if !report.missingPackages.isEmpty {
            advice.append("install the missing Debian packages: apt-get install \(report.missingPackages.joined(separator: " "))")
        }
        let hosts = Dictionary(grouping: report.ranks, by: \.host)
        if hosts.values.contains(where: { $0.count > 1 }) && report.ranks.contains(where: { $0.blasThreads > 1 }) {
            advice.append("several ranks share a host: set OPENBLAS_NUM_THREADS=1 (mpirun -x OPENBLAS_NUM_THREADS=1)")
        }
        if report.worldSize == 1 && report.ranks.count == 1 && !MPIEnvironment.isUnderLauncher {
            advice.append("not started by mpirun or srun: run `mpirun -np N fedbaechi doctor` to check every rank")
        }
        return advice
    }

    static func render(_ report: Report) -> String {
        var lines: [String] = []
        lines.append("MPI library     \(report.mpiLibrary)")
        lines.append("MPI standard    \(report.mpiStandard)")
        lines.append("thread level    \(report.threadLevel ?? "(MPI not started: run under mpirun or srun)")")
        lines.append("BLAS            \(report.blasConfiguration)")
        lines.append("BLAS kernels    \(report.blasCore)")
        lines.append("")
        lines.append("rank  host                            pid  BLAS threads")
        for rank in report.ranks.sorted(by: { $0.rank < $1.rank }) {
            lines.append(String(rank.rank).padding(5) + " " + rank.host.padding(28) + " " +
                         String(rank.pid).leftPadding(7) + "  " + String(rank.blasThreads))
        }
        let hostCount = Set(report.ranks.map(\.host)).count
        lines.append("\(report.ranks.count) rank(s) on \(hostCount) host(s)")
        lines.append("")
        lines.append("dataset         installed  location")
        for dataset in report.datasets {
            let state = dataset.installed ? "yes" : report.missingPackages.contains(dataset.debianPackage)
                ? "NO (apt-get install \(dataset.debianPackage))" : "NO (missing: \(dataset.missing.joined(separator: ", ")))"
            lines.append(dataset.name.padding(15) + " " + state.padding(10) + " " + dataset.directory)
        }
        if !report.advice.isEmpty {
            lines.append("")
            lines.append(contentsOf: report.advice.map { "advice: " + $0 })
        } else {
            lines.append("")
            lines.append("everything fedbaechi needs is in place")
        }
        return lines.joined(separator: "\n")
    }

    static func commandExists(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }
}

extension String {
    /// Left-aligned in a column of `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    /// Right-aligned in a column of `width` characters.
    func leftPadding(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
