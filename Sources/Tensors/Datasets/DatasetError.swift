import Basics
/// Why a dataset could not be loaded, in words a user can act on.
public enum DatasetError: UserFacingError, Equatable {
    /// Not installed: names the Debian package that provides it.
    case missing(dataset: String, path: String, debianPackage: String)
    /// Present but unreadable or damaged.
    case corrupt(file: String, reason: String)

    public var description: String {
        switch self {
        case .missing(let dataset, let path, let package):
            if let kind = KnownDataset(rawValue: dataset), !path.hasPrefix(kind.defaultDirectory) {
                // A folder the user chose: the package would not put the data there.
                "dataset \(dataset) is not in the folder given (\(path) is missing): it needs \(kind.expectedContents); "
                    + "or leave out --data-directory to read the copy `apt-get install \(package)` puts in \(kind.defaultDirectory)"
            } else {
                "dataset \(dataset) is not installed (\(path) is missing): install it with `apt-get install \(package)`"
            }
        case .corrupt(let file, let reason):
            "\(file) is damaged: \(reason)"
        }
    }

    /// Rejected input, except a dataset missing from where its package installs it: the machine lacks it.
    public var exitStatus: ExitStatus {
        if case .missing(let dataset, let path, _) = self, let kind = KnownDataset(rawValue: dataset),
           path.hasPrefix(kind.defaultDirectory) {
            return .runtime
        }
        return .badInput
    }
}
