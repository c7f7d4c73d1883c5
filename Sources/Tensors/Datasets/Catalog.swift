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

    /// Files that must be present for the dataset to be usable.
    public var requiredFiles: [String] {
        switch self {
        case .fashionMNIST:
            ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        case .fortunes: []
        }
    }

    /// The required files that are missing from `directory` (the whole folder, if it is missing).
    public func missingFiles(in directory: String? = nil) -> [String] {
        let folder = directory ?? defaultDirectory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [folder]
        }
        return requiredFiles.filter { !FileManager.default.fileExists(atPath: folder + "/" + $0) }
    }
}
