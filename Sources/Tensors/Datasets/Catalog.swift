import Foundation

/// The datasets fedbaechi trains on, where Debian installs them, and which package provides each.
public enum KnownDataset: String, CaseIterable, Sendable {
    case fashionMNIST = "fashion-mnist"
    case fortunes

    /// The Debian package that installs the dataset.
    public var debianPackage: String {
        switch self {
        case .fashionMNIST: "dataset-fashion-mnist"
        case .fortunes: "fortunes"
        }
    }

    /// The folder the Debian package installs into.
    public var defaultDirectory: String {
        switch self {
        case .fashionMNIST: "/usr/share/datasets/fashion-mnist"
        case .fortunes: "/usr/share/games/fortunes"
        }
    }

    /// Files that must be present for the dataset to be usable, by name without `.gz`: each may be
    /// gzip'd (as Debian ships them, `NAME.gz`) or not (`NAME`, as some mirrors unpack them).
    public var requiredFiles: [String] {
        switch self {
        case .fashionMNIST:
            ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        case .fortunes: []
        }
    }

    /// What a folder of this dataset holds, for messages.
    public var expectedContents: String {
        switch self {
        case .fashionMNIST: "the four IDX files " + requiredFiles.joined(separator: ", ") + " (each may end in .gz)"
        case .fortunes: "fortune files: text, one fortune after another, separated by lines holding only %"
        }
    }

    /// The path of required file `name` in `directory`: gzip'd if that is there, else plain; nil if neither.
    public func file(_ name: String, in directory: String) -> String? {
        [directory + "/" + name + ".gz", directory + "/" + name].first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The required files that are missing from `directory` (the whole folder, if it is missing).
    public func missingFiles(in directory: String? = nil) -> [String] {
        let folder = directory ?? defaultDirectory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [folder]
        }
        if self == .fortunes, Self.fortuneFiles(in: folder).isEmpty { return [folder + "/*"] }
        return requiredFiles.filter { file($0, in: folder) == nil }
    }

    /// The category files of a fortunes folder (index files *.dat and the *.u8 links left out).
    public static func fortuneFiles(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && !name.hasSuffix(".dat") && !name.hasSuffix(".u8")
                && FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }.sorted()
    }
}
