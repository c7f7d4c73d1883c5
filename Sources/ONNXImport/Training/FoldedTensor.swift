import Foundation

/// A tensor known when the model is read: an initializer, a Constant, or what shape arithmetic
/// computes from them and from the shapes of the model's values (Shape → Gather → Concat → Reshape).
/// Values are Doubles, which hold every int64 a shape can have and every float exactly.
struct FoldedTensor: Equatable {
    var shape: [Int]
    var values: [Double]
    /// An integer or boolean element type (shapes, indices, masks), not a float.
    var isInteger: Bool

    var count: Int { values.count }

    init(shape: [Int], values: [Double], isInteger: Bool) {
        self.shape = shape
        self.values = values
        self.isInteger = isInteger
    }

    init(integers: [Int], shape: [Int]? = nil) {
        self.init(shape: shape ?? [integers.count], values: integers.map(Double.init), isInteger: true)
    }

    /// The values as integers, saturated: exporters write INT64_MAX for "to the end" (a Slice's ends),
    /// which a Double rounds past Int.max.
    var integers: [Int] {
        values.map { value in
            if value.isNaN { return 0 }
            if value >= 9.2e18 { return Int.max }
            if value <= -9.2e18 { return Int.min }
            return Int(value)
        }
    }
    var floats: [Float] { values.map { Float($0) } }
}

/// Why an ONNX model cannot be trained as it is, in one line naming the node.
public struct ONNXTrainingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Onnx_TensorProto {
    /// The elements of a float or double initializer as Floats, decoded straight from the file's bytes:
    /// a parameter's initial value, made only by the rank that holds it. Nil when the data do not fit the shape.
    func floatValues() -> [Float]? {
        guard let count = ShapeCheck.elements(dims.map { Int(clamping: $0) }), dataLocation != .external else { return nil }
        switch dataType {
        case 1:
            if rawData.isEmpty { return floatData.count == count ? floatData : nil }
            guard rawData.count == count * 4 else { return nil }
            return rawData.withUnsafeBytes { bytes in
                (0..<count).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
        case 11:
            if rawData.isEmpty { return doubleData.count == count ? doubleData.map { Float($0) } : nil }
            guard rawData.count == count * 8 else { return nil }
            return rawData.withUnsafeBytes { bytes in
                (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) }
            }
        default:
            return nil
        }
    }

    /// Whether the tensor holds as many float or double values as its shape says, checked without decoding them.
    var holdsItsFloats: Bool {
        guard let count = ShapeCheck.elements(dims.map { Int(clamping: $0) }), dataLocation != .external else { return false }
        switch dataType {
        case 1: return rawData.isEmpty ? floatData.count == count : rawData.count == count * 4
        case 11: return rawData.isEmpty ? doubleData.count == count : rawData.count == count * 8
        default: return false
        }
    }

    /// The elements of a float, double, integer or boolean tensor of at most `limit` elements.
    func folded(limit: Int = 1 << 28) throws(ONNXTrainingError) -> FoldedTensor {
        let shape = dims.map { Int(clamping: $0) }
        guard let count = ShapeCheck.elements(shape), count <= limit else {
            throw ONNXTrainingError("tensor \"\(name)\" has an impossible or too large shape \(dims)")
        }
        guard dataLocation != .external else {
            throw ONNXTrainingError("tensor \"\(name)\" keeps its data in an external file: save the model with the weights inside (onnx.save(model, path, save_as_external_data=False))")
        }
        func raw<T>(_ type: T.Type, _ convert: (T) -> Double) throws(ONNXTrainingError) -> [Double]? {
            guard !rawData.isEmpty else { return nil }
            let size = MemoryLayout<T>.size
            guard rawData.count == count * size else {
                throw ONNXTrainingError("tensor \"\(name)\" holds \(rawData.count) bytes, not \(count * size) for shape \(shape)")
            }
            return rawData.withUnsafeBytes { bytes in (0..<count).map { convert(bytes.loadUnaligned(fromByteOffset: $0 * size, as: T.self)) } }
        }
        var values: [Double]?
        var isInteger = true
        switch dataType {
        case 1:  // float
            isInteger = false
            values = try raw(UInt32.self) { Double(Float(bitPattern: UInt32(littleEndian: $0))) } ?? floatData.map(Double.init)
        case 11:  // double
            isInteger = false
            values = try raw(UInt64.self) { Double(bitPattern: UInt64(littleEndian: $0)) } ?? doubleData
        case 7:  // int64
            values = try raw(Int64.self) { Double(Int64(littleEndian: $0)) } ?? int64Data.map(Double.init)
        case 6:  // int32
            values = try raw(Int32.self) { Double(Int32(littleEndian: $0)) } ?? int32Data.map(Double.init)
        case 2, 9:  // uint8, bool
            values = try raw(UInt8.self) { Double($0) } ?? int32Data.map(Double.init)
        case 3:  // int8
            values = try raw(Int8.self) { Double($0) } ?? int32Data.map(Double.init)
        default:
            throw ONNXTrainingError("tensor \"\(name)\" has ONNX element type \(dataType); float, double, int8, uint8, int32, int64 and bool are read")
        }
        guard let values, values.count == count else {
            throw ONNXTrainingError("tensor \"\(name)\" holds \(values?.count ?? 0) values, not \(count) for shape \(shape)")
        }
        return FoldedTensor(shape: shape, values: values, isInteger: isInteger)
    }
}
