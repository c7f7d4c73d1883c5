import Basics
/// Why a dataset could not be loaded, in words a user can act on.
public enum DatasetError: UserFacingError, Equatable {
    /// Not installed: names the Debian package that provides it.
    case missing(dataset: String, path: String, debianPackage: String)
    /// Present but unreadable or damaged.
    case corrupt(file: String, reason: String)
    /// Not damaged but not something fedbaechi reads (or not there): a NumPy array in Fortran order, an
    /// object array, a dtype it has no use for. The reason says what to do instead.
    case unreadable(file: String, reason: String)
    /// A file fedbaechi was asked to write could not be written.
    case unwritable(file: String, reason: String)

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
        case .unreadable(let file, let reason):
            "cannot read \(file): \(reason)"
        case .unwritable(let file, let reason):
            "cannot write \(file): \(reason)"
        }
    }

    /// Rejected input, except a dataset missing from where its package installs it (the machine lacks
    /// it) and a file that could not be written (the run failed).
    public var exitStatus: ExitStatus {
        if case .unwritable = self { return .runtime }
        if case .missing(let dataset, let path, _) = self, let kind = KnownDataset(rawValue: dataset),
           path.hasPrefix(kind.defaultDirectory) {
            return .runtime
        }
        return .badInput
    }
}
