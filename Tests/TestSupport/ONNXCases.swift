import Foundation

/// Models and data from `Tests/Fixtures/onnx_training_cases.py`, made once per test process with the
/// onnx and onnxruntime packages; nil (the tests say they were skipped) when those are not installed.
public let onnxCases: URL? = {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fedbaechi-onnx-cases-\(getpid())")
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx_training_cases.py")
    guard let result = try? run("/usr/bin/env", ["python3", script.path, folder.path], timeout: 120), result.status == 0 else {
        print("skipped: the ONNX training cases need python3 with onnx, onnxruntime and numpy (scripts/install-deps.sh installs them)")
        return nil
    }
    return folder
}()
