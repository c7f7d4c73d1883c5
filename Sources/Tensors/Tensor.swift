/// A Float32 n-dimensional array: a shape and its elements in row-major order.
///
/// A value type: copying a tensor is cheap (copy-on-write storage) and nothing is shared by accident.
/// Integer data (labels, token ids) is stored as exact small whole numbers.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public init(scalar: Float) {
        self.init(shape: [], data: [scalar])
    }

    /// A tensor whose elements `fill` writes, every one of them (no zeroing first).
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(buffer)
            initialized = count
        }
    }

    public var count: Int { data.count }
    public var byteCount: Int { data.count * MemoryLayout<Float>.size }

    /// The same elements under another shape of equal size.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// Elements `f(a, b)` of two tensors of equal shape. Inlined so `f` is too: a call per element
    /// would cost more than the arithmetic.
    @inline(__always)
    public func zipped(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "shapes \(shape) and \(other.shape) differ")
        return data.withUnsafeBufferPointer { a in
            other.data.withUnsafeBufferPointer { b in
                Tensor(shape: shape) { out in
                    for i in 0..<out.count { out[i] = f(a[i], b[i]) }
                }
            }
        }
    }

    /// Elements `f(a)`.
    @inline(__always)
    public func mapped(_ f: (Float) -> Float) -> Tensor {
        data.withUnsafeBufferPointer { a in
            Tensor(shape: shape) { out in
                for i in 0..<out.count { out[i] = f(a[i]) }
            }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = data.prefix(6).map { String($0) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(preview)\(data.count > 6 ? ", ..." : "")])"
    }
}
