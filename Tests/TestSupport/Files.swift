import Foundation

/// A path under the system's temporary folder that nothing uses yet: `fedbaechi-<label>-<UUID>[.<extension>]`.
/// Nothing is created.
public func temporaryPath(_ label: String, extension pathExtension: String? = nil) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("fedbaechi-\(label)-\(UUID().uuidString)")
    return pathExtension.map { url.appendingPathExtension($0) } ?? url
}

/// A fresh, empty folder under the system's temporary folder (`temporaryPath`); the caller removes it.
public func makeTemporaryFolder(_ label: String) throws -> URL {
    let url = temporaryPath(label)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
