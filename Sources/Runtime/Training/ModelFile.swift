import Basics
import Foundation
import ONNXImport
import Tensors

/// A model read from an ONNX file and the user's data for it (`train --model model.onnx`).
public struct ModelFile: Sendable {
    public var model: ONNXTrainableModel
    public var path: String
    /// `.npz` files with arrays `x` (features) and `y` (labels or targets).
    public var trainData: String?
    public var testData: String?
    /// Federated: a folder of `site-<rank>.npz`, each site's private training data.
    public var siteData: String?
    /// Where the trained model is written (rank 0, or site 0).
    public var exportPath: String?

    public init(model: ONNXTrainableModel, path: String, trainData: String? = nil, testData: String? = nil,
                siteData: String? = nil, exportPath: String? = nil) {
        self.model = model
        self.path = path
        self.trainData = trainData
        self.testData = testData
        self.siteData = siteData
        self.exportPath = exportPath
    }

    /// Reads the examples of one `.npz` file, checked against the model's input and output.
    ///
    /// Conversion rules: float features are used as they are; uint8 features are divided by 255 (as
    /// torchvision's `ToTensor`); a model whose input is integer (token ids) takes integer arrays as
    /// they are. Cross-entropy labels must be integers in 0..<classes; mse targets are any numbers.
    public func examples(_ path: String, limit: Int?) throws -> LabeledImages {
        let arrays = try Self.arrays(path)
        let task = model.task
        func integers(_ array: NumPyArray, _ name: String) throws -> [Int] {
            do { return try array.integers() } catch { throw Refusal("\(path): array \(name): \(error)") }
        }
        guard let x = arrays["x"], let y = arrays["y"] else {
            throw Refusal("\(path) holds arrays \(arrays.keys.sorted().joined(separator: ", ")); it needs x (features) and y (labels or targets)")
        }
        let count = x.shape.first ?? 0
        func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        // Dimensions of size 1 may be missing or extra ([N, 28, 28] images feed a [N, 1, 28, 28] input).
        func withoutOnes(_ s: ArraySlice<Int>) -> [Int] { s.filter { $0 != 1 } }
        guard x.shape.count >= 1, withoutOnes(x.shape.dropFirst()) == withoutOnes(task.inputShape[...]) else {
            throw Refusal("\(path): array x has shape \(shape(x.shape)); input \"\(task.input)\" takes \(shape(task.inputShape)) per example (shape [N, \(task.inputShape.map(String.init).joined(separator: ", "))])")
        }
        let expectedY = [count] + task.targetShape
        guard y.shape == expectedY || (y.count == count * task.targetShape.reduce(1, *) && y.shape.first == count) else {
            throw Refusal("\(path): array y has shape \(shape(y.shape)); the output \"\(model.name)\" is scored against \(shape(expectedY))")
        }
        let limited = min(count, limit ?? count)
        var features: [Float]
        if model.inputIsInteger {
            guard x.dtype.isInteger else { throw Refusal("\(path): array x holds \(x.dtype); input \"\(task.input)\" takes integer ids") }
            let ids = try integers(x, "x")
            if let limit = model.idLimit, let bad = ids.first(where: { $0 < 0 || $0 >= limit }) {
                throw Refusal("\(path): array x holds id \(bad); input \"\(task.input)\" indexes an embedding of \(limit) rows (0 to \(limit - 1))")
            }
            features = ids.map(Float.init)
        } else if x.dtype == .uint8 {
            features = x.floats().map { $0 / 255 }
        } else {
            guard x.dtype.isFloatingPoint else {
                throw Refusal("\(path): array x holds \(x.dtype); features are float (used as they are) or uint8 (divided by 255)")
            }
            features = x.floats()
        }
        var labels: [Float]
        switch task.objective {
        case .crossEntropy(let classes):
            guard y.dtype.isInteger else { throw Refusal("\(path): array y holds \(y.dtype); cross-entropy labels are integers") }
            let labelValues = try integers(y, "y")
            if let bad = labelValues.first(where: { $0 < 0 || $0 >= classes }) {
                throw Refusal("\(path): array y holds label \(bad); the model scores \(classes) classes (0 to \(classes - 1))")
            }
            labels = labelValues.map(Float.init)
        case .meanSquaredError:
            labels = y.floats()
        }
        let perExample = features.count / max(1, count)
        let perLabel = labels.count / max(1, count)
        features = Array(features.prefix(limited * perExample))
        labels = Array(labels.prefix(limited * perLabel))
        return LabeledImages(images: Tensor(shape: [limited] + task.inputShape, data: features),
                             labels: Tensor(shape: [limited] + task.targetShape, data: labels))
    }

    /// The arrays `x` and `y` of an `.npz` file, or of a pair of IDX files given as
    /// `features.idx,labels.idx` (gzip'd or not, unsigned bytes, as MNIST's files).
    static func arrays(_ path: String) throws -> [String: NumPyArray] {
        let parts = path.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { return try NumPyArchive.read(path: path) }
        let (x, y) = (try IDXArray.read(path: parts[0]), try IDXArray.read(path: parts[1]))
        return ["x": NumPyArray(shape: x.dimensions, dtype: .uint8, bytes: x.bytes),
                "y": NumPyArray(shape: y.dimensions, dtype: .uint8, bytes: y.bytes)]
    }

    /// Writes the trained model through a temporary file renamed into place, so a reader never sees
    /// half a model.
    public func export(parameters: [String: [Float]]) throws {
        guard let exportPath else { return }
        let data: Data
        do { data = try model.exported(parameters: parameters) } catch { throw Refusal("--export: \(error)") }
        let temporary = exportPath + ".partial"
        do {
            try data.write(to: URL(fileURLWithPath: temporary))
            if FileManager.default.fileExists(atPath: exportPath) { try FileManager.default.removeItem(atPath: exportPath) }
            try FileManager.default.moveItem(atPath: temporary, toPath: exportPath)
        } catch {
            throw Refusal("--export: cannot write \(exportPath): \(error.localizedDescription)", status: .runtime)
        }
    }
}
