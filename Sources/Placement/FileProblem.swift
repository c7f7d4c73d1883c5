import Foundation

/// File errors in words a user can act on: the path, what is wrong with it, and what was expected there.
/// Foundation's own texts ("The file doesn't exist.", "NSCocoaErrorDomain error 512", "The data is
/// missing.") name neither the file nor what it should have held.
public enum FileProblem {
    /// Why `path` cannot be read as a file, or nil when it can.
    public static func unreadable(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return path.isEmpty ? "no file name given" : "no such file"
        }
        if isDirectory.boolValue { return "it is a directory, not a file" }
        if access(path, R_OK) != 0 { return "permission denied" }
        return nil
    }

    /// Why `path` cannot be written, or nil when it (probably) can: its folder is missing, is a file or is
    /// not writable, or the path is a directory.
    public static func unwritable(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return "it is a directory, not a file" }
            return access(path, W_OK) == 0 ? nil : "permission denied"
        }
        var folder = (path as NSString).deletingLastPathComponent
        if folder.isEmpty { folder = "." }
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else { return "the folder \(folder) does not exist" }
        if !isDirectory.boolValue { return "\(folder) is a file, not a folder" }
        return access(folder, W_OK) == 0 ? nil : "the folder \(folder) is not writable"
    }

    /// "cannot write PATH: REASON" for an error met writing `path`.
    public static func writeFailure(_ error: any Error, path: String) -> String {
        "cannot write \(path): \(unwritable(path) ?? reason(error, path: path))"
    }

    /// "PATH: REASON (expected WHAT)" for an error met reading or writing `path`.
    public static func describe(_ error: any Error, path: String, expected: String) -> String {
        "\(path): \(reason(error, path: path)) (expected \(expected))"
    }

    /// The reason alone, checked against the file system first, then taken from the error.
    public static func reason(_ error: any Error, path: String) -> String {
        if let problem = unreadable(path) { return problem }
        if let error = error as? GraphFile.ReadError { return error.description }
        if error is DecodingError { return "the contents are not what fedbaechi reads" }
        let error = error as NSError
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
        switch error.code {
        case NSFileReadNoPermissionError, NSFileWriteNoPermissionError: return "permission denied"
        case NSFileWriteOutOfSpaceError: return "no space left on the device"
        case NSFileReadCorruptFileError, NSPropertyListReadCorruptError: return "the contents are not valid JSON"
        case NSFileReadInapplicableStringEncodingError: return "the contents are not UTF-8 text"
        default: return "it could not be read or written (error \(error.code))"
        }
    }
}
