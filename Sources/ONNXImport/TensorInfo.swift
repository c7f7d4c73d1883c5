import Foundation
import Placement

/// What shape inference knows about one tensor of an ONNX graph.
struct TensorInfo: Sendable {
    var shape: [Int]
    /// ONNX `TensorProto.DataType` code.
    var elementType: Int32
    /// Known contents of a small integer tensor (shapes, axes, pads): what Reshape and friends need.
    var values: [Int64]?
    /// Known contents of a small float or double constant: Resize's and Upsample's scales.
    var scales: [Double]?
    /// Computed once, not per step: an initializer, a Constant, or an op whose inputs are all constant.
    var isConstant: Bool

    init(shape: [Int], elementType: Int32, values: [Int64]? = nil, scales: [Double]? = nil, isConstant: Bool = false) {
        self.shape = shape
        self.elementType = elementType
        self.values = values
        self.scales = scales
        self.isConstant = isConstant
    }

    /// Element count; shapes are checked on creation (see `ShapeCheck.elements`), so this cannot overflow.
    var elements: Int { shape.reduce(1, *) }
    /// Sub-byte types are packed: elements x bits / 8, rounded up (ONNX stores INT4 two to a byte).
    var bytes: Int { (elements * ElementType.bits(elementType) + 7) / 8 }
    var rank: Int { shape.count }
    var isFloatingPoint: Bool { ElementType.isFloatingPoint(elementType) }
}

/// ONNX element types: sizes in bytes, and which ones carry gradients.
enum ElementType {
    static let float: Int32 = 1
    static let uint8: Int32 = 2
    static let int32: Int32 = 6
    static let int64: Int32 = 7
    static let string: Int32 = 8
    static let bool: Int32 = 9

    /// Bits per element. Elements are at most 2^40 (`ShapeCheck`), so elements x bits cannot overflow.
    static func bits(_ type: Int32) -> Int {
        switch type {
        case 25, 26: return 2                                   // uint2, int2
        case 21, 22, 23: return 4                               // uint4, int4, float4e2m1
        case 27, 28: return 6                                   // float6e2m3, float6e3m2
        case 2, 3, 9, 17, 18, 19, 20, 24: return 8              // (u)int8, bool, the float8 kinds
        case 4, 5, 10, 16: return 16                            // (u)int16, float16, bfloat16
        case 1, 6, 12: return 32                                // float, int32, uint32
        case 7, 11, 13, 14: return 64                           // int64, double, uint64, complex64
        case 15: return 128                                     // complex128
        default: return 32                                      // undefined or string: a pointer-sized guess
        }
    }

    /// The integer types whose contents shape inference follows (shapes, axes, pads are int64 or int32).
    static func isInteger(_ type: Int32) -> Bool {
        [2, 3, 4, 5, 6, 7, 12, 13].contains(type)
    }

    static func isFloatingPoint(_ type: Int32) -> Bool {
        [1, 10, 11, 16, 17, 18, 19, 20, 23].contains(type)
    }
}

/// Bounds that keep a hostile or broken model from overflowing sizes: the same 1 TiB the graph
/// allows per tensor.
enum ShapeCheck {
    static let maximumBytes = Graph.maximumBytes
    static let maximumRank = 32

    /// The element count of `shape`, or nil when a dimension is negative or the tensor would be absurdly large.
    static func elements(_ shape: [Int]) -> Int? {
        guard shape.count <= maximumRank else { return nil }
        var count = 1
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= maximumBytes else { return nil }
            count = product
        }
        return count
    }
}

/// Typed access to a node's attributes.
struct Attributes {
    private var byName: [String: Onnx_AttributeProto] = [:]

    init(_ node: Onnx_NodeProto) {
        for attribute in node.attribute where byName[attribute.name] == nil { byName[attribute.name] = attribute }
    }

    func has(_ name: String) -> Bool { byName[name] != nil }

    func int(_ name: String) -> Int? {
        guard let attribute = byName[name] else { return nil }
        return Int(clamping: attribute.i)
    }

    func int(_ name: String, default value: Int) -> Int { int(name) ?? value }

    func ints(_ name: String) -> [Int]? {
        guard let attribute = byName[name] else { return nil }
        return attribute.ints.map { Int(clamping: $0) }
    }

    func float(_ name: String) -> Float? { byName[name]?.f }

    func floats(_ name: String) -> [Float]? { byName[name]?.floats }

    /// The length of a list attribute (floats, ints, strings, tensors).
    func count(_ name: String) -> Int? {
        guard let attribute = byName[name] else { return nil }
        return max(attribute.floats.count, attribute.ints.count, attribute.strings.count, attribute.tensors.count)
    }

    func string(_ name: String) -> String? {
        guard let attribute = byName[name] else { return nil }
        return String(decoding: attribute.s, as: UTF8.self)
    }

    func tensor(_ name: String) -> Onnx_TensorProto? {
        guard let attribute = byName[name], attribute.hasT else { return nil }
        return attribute.t
    }
}

extension Onnx_TensorProto {
    /// Integer contents when the tensor is an integer tensor of at most `limit` elements, else nil.
    func integerValues(limit: Int = 1 << 16) -> [Int64]? {
        guard dims.allSatisfy({ $0 >= 0 }), let count = ShapeCheck.elements(dims.map { Int(clamping: $0) }), count <= limit else { return nil }
        switch dataType {
        case ElementType.int64:
            if int64Data.count == count { return int64Data }
            if rawData.count == count * 8 {
                return rawData.withUnsafeBytes { raw in (0..<count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
            }
        case ElementType.int32, 5, 3, 4, 2, ElementType.bool:
            if int32Data.count == count { return int32Data.map(Int64.init) }
            if dataType == ElementType.int32, rawData.count == count * 4 {
                return rawData.withUnsafeBytes { raw in (0..<count).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) } }
            }
        default: break
        }
        return nil
    }

    /// Contents when the tensor is a float or double tensor of at most `limit` elements, else nil.
    func floatingValues(limit: Int = 1 << 10) -> [Double]? {
        guard dims.allSatisfy({ $0 >= 0 }), let count = ShapeCheck.elements(dims.map { Int(clamping: $0) }), count <= limit else { return nil }
        switch dataType {
        case ElementType.float:
            if floatData.count == count { return floatData.map(Double.init) }
            if rawData.count == count * 4 {
                return rawData.withUnsafeBytes { raw in
                    (0..<count).map { Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))) }
                }
            }
        case 11:
            if doubleData.count == count { return doubleData }
            if rawData.count == count * 8 {
                return rawData.withUnsafeBytes { raw in
                    (0..<count).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
                }
            }
        default: break
        }
        return nil
    }

    /// Shape and type of the tensor, with its integer values when small, as a constant.
    func info() throws(GraphError) -> TensorInfo {
        let shape = dims.map { Int(clamping: $0) }
        guard ShapeCheck.elements(shape) != nil else {
            throw .invalidValue("ONNX tensor \"\(name)\" has an impossible shape \(dims)")
        }
        return TensorInfo(shape: shape, elementType: dataType == 0 ? ElementType.float : dataType,
                          values: integerValues(), scales: floatingValues(), isConstant: true)
    }
}
