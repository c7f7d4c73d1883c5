import Foundation
import TestSupport

/// `../shared` beside the package, which a user's clone does not have: tests that read it skip.
let sharedDirectory: URL? = {
    let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
}()
