import Foundation
import Tensors

/// The ONNX ops that compute shapes, evaluated on known tensors when the model is read. Exporters
/// spell `x.view(x.size(0), -1)` as Shape → Gather → Unsqueeze → Concat → Reshape; folding that
/// chain gives Reshape a target it can use at every batch size (see `ONNXTranslator`).
enum ShapeArithmetic {
    static let ops: Set<String> = [
        "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Add", "Sub", "Mul", "Div",
        "Equal", "Where", "Expand", "ConstantOfShape", "Range", "Reshape", "Identity", "Neg", "Not", "Less",
        "Greater", "Max", "Min", "Sqrt", "Floor", "Ceil", "Size", "Mod",
    ]

    /// Largest tensor folded: shape arithmetic works on a handful of numbers.
    static let maximumElements = 1 << 20

    static func normalize(_ axis: Int, rank: Int, _ node: String) throws(ONNXTrainingError) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < max(rank, 1) else { throw ONNXTrainingError("\(node): axis \(axis) outside a tensor of rank \(rank)") }
        return a
    }

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        return strides
    }

    /// The element-wise rule of a binary op. Integer Div truncates, as ONNX's does; Mod takes the
    /// divisor's sign for integers without `fmod` (as Python's %), the dividend's otherwise.
    static func arithmetic(_ op: String, integer: Bool, fmod dividendSign: Bool) -> (Double, Double) -> Double {
        switch op {
        case "Add": return { $0 + $1 }
        case "Sub": return { $0 - $1 }
        case "Mul": return { $0 * $1 }
        case "Div": return integer ? { $1 == 0 ? 0 : ($0 / $1).rounded(.towardZero) } : { $0 / $1 }
        case "Equal": return { $0 == $1 ? 1 : 0 }
        case "Less": return { $0 < $1 ? 1 : 0 }
        case "Greater": return { $0 > $1 ? 1 : 0 }
        case "Max": return { max($0, $1) }
        case "Mod":
            if dividendSign || !integer { return { Self.truncatedRemainder($0, $1) } }
            return { Self.flooredRemainder($0, $1) }
        default: return { min($0, $1) }
        }
    }

    /// Mod with `fmod` 1 (and for floats): the remainder takes the dividend's sign.
    static func truncatedRemainder(_ x: Double, _ y: Double) -> Double { y == 0 ? 0 : fmod(x, y) }

    /// Mod with `fmod` 0 on integers: the remainder takes the divisor's sign, as Python's %.
    static func flooredRemainder(_ x: Double, _ y: Double) -> Double {
        guard y != 0 else { return 0 }
        let quotient = (x / y).rounded(.down)
        return x - y * quotient
    }

    /// Position in a broadcast operand of shape `shape` of element `flat` of `output`.
    static func broadcastIndex(_ flat: Int, output: [Int], shape: [Int]) -> Int {
        var (remainder, index, step) = (flat, 0, 1)
        for d in stride(from: output.count - 1, through: 0, by: -1) {
            let position = remainder % output[d]
            remainder /= output[d]
            let s = d - (output.count - shape.count)
            guard s >= 0 else { continue }
            if shape[s] != 1 { index += position * step }
            step *= shape[s]
        }
        return index
    }

    /// The shape Squeeze or Unsqueeze gives `shape` (`axes` nil: Squeeze drops every 1).
    static func reshaped(_ op: String, shape: [Int], axes: [Int]?, node: String) throws(ONNXTrainingError) -> [Int] {
        if op == "Unsqueeze" {
            let rank = shape.count + (axes?.count ?? 0)
            var out = shape
            for axis in try (axes ?? []).map({ (x: Int) throws(ONNXTrainingError) -> Int in try normalize(x, rank: rank, node) }).sorted() {
                out.insert(1, at: axis)
            }
            return out
        }
        var dropped = Set<Int>()
        if let axes {
            for axis in axes { dropped.insert(try normalize(axis, rank: shape.count, node)) }
        } else {
            dropped = Set(shape.indices.filter { shape[$0] == 1 })
        }
        return shape.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// Evaluates node `op` on known inputs (nil where an optional input is absent). `shapeOf` gives the
    /// shape of a Shape node's input, which need not be known itself.
    static func evaluate(_ op: String, inputs: [FoldedTensor?], attributes a: Attributes, node: String) throws(ONNXTrainingError) -> FoldedTensor {
        func input(_ i: Int) throws(ONNXTrainingError) -> FoldedTensor {
            guard i < inputs.count, let t = inputs[i] else { throw ONNXTrainingError("\(node): \(op) needs input \(i)") }
            return t
        }
        func checked(_ t: FoldedTensor) throws(ONNXTrainingError) -> FoldedTensor {
            guard t.count <= maximumElements else { throw ONNXTrainingError("\(node): \(op) makes \(t.count) elements, too many to fold") }
            return t
        }
        switch op {
        case "Identity":
            return try input(0)
        case "Size":
            return FoldedTensor(shape: [], values: [Double(try input(0).count)], isInteger: true)
        case "Gather":
            let (data, indices) = (try input(0), try input(1))
            let axis = try normalize(a.int("axis", default: 0), rank: data.shape.count, node)
            let (outer, inner) = (data.shape.prefix(axis).reduce(1, *), data.shape.dropFirst(axis + 1).reduce(1, *))
            let size = data.shape[axis]
            var values: [Double] = []
            for o in 0..<outer {
                for raw in indices.integers {
                    let i = raw < 0 ? raw + size : raw
                    guard i >= 0, i < size else { throw ONNXTrainingError("\(node): Gather index \(raw) outside 0..<\(size)") }
                    values += data.values[((o * size + i) * inner)..<((o * size + i + 1) * inner)]
                }
            }
            var shape = Array(data.shape.prefix(axis)) + indices.shape + Array(data.shape.dropFirst(axis + 1))
            if shape.reduce(1, *) != values.count { shape = [values.count] }
            return try checked(FoldedTensor(shape: shape, values: values, isInteger: data.isInteger))
        case "Unsqueeze", "Squeeze":
            let data = try input(0)
            let axes = try (inputs.count > 1 && inputs[1] != nil ? input(1).integers : a.ints("axes"))
            let shape = try reshaped(op, shape: data.shape, axes: op == "Unsqueeze" ? (axes ?? []) : axes, node: node)
            return FoldedTensor(shape: shape, values: data.values, isInteger: data.isInteger)
        case "Concat":
            let parts = inputs.compactMap { $0 }
            guard let first = parts.first else { throw ONNXTrainingError("\(node): Concat of nothing") }
            let axis = try normalize(a.int("axis", default: 0), rank: first.shape.count, node)
            let outer = first.shape.prefix(axis).reduce(1, *)
            var values: [Double] = []
            var total = 0
            for part in parts {
                guard part.shape.count == first.shape.count else { throw ONNXTrainingError("\(node): Concat of ranks \(first.shape.count) and \(part.shape.count)") }
                total += part.shape[axis]
            }
            for o in 0..<outer {
                for part in parts {
                    let block = part.shape.dropFirst(axis).reduce(1, *)
                    values += part.values[(o * block)..<((o + 1) * block)]
                }
            }
            var shape = first.shape
            shape[axis] = total
            return try checked(FoldedTensor(shape: shape, values: values, isInteger: first.isInteger))
        case "Slice":
            let data = try input(0)
            let starts = try (inputs.count > 1 ? input(1).integers : a.ints("starts") ?? [])
            let ends = try (inputs.count > 2 ? input(2).integers : a.ints("ends") ?? [])
            let axes = try (inputs.count > 3 && inputs[3] != nil ? input(3).integers : a.ints("axes") ?? Array(0..<starts.count))
            let steps = try (inputs.count > 4 && inputs[4] != nil ? input(4).integers : Array(repeating: 1, count: starts.count))
            guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
                throw ONNXTrainingError("\(node): Slice's starts, ends, axes and steps differ in length")
            }
            var ranges = data.shape.map { (start: 0, end: $0, step: 1) }
            for (k, rawAxis) in axes.enumerated() {
                let axis = try normalize(rawAxis, rank: data.shape.count, node)
                let size = data.shape[axis]
                let step = steps[k]
                guard step != 0 else { throw ONNXTrainingError("\(node): Slice step 0") }
                func clamp(_ v: Int, _ low: Int, _ high: Int) -> Int { min(max(v, low), high) }
                var start = starts[k] < 0 ? starts[k] + size : starts[k]
                var end = ends[k] < 0 ? ends[k] + size : ends[k]
                if step > 0 { start = clamp(start, 0, size); end = clamp(end, 0, size) } else { start = clamp(start, 0, size - 1); end = clamp(end, -1, size - 1) }
                ranges[axis] = (start, end, step)
            }
            let shape = ranges.map { r in r.step > 0 ? max(0, (r.end - r.start + r.step - 1) / r.step) : max(0, (r.start - r.end - r.step - 1) / -r.step) }
            let inStrides = strides(data.shape)
            var values: [Double] = []
            let count = shape.reduce(1, *)
            values.reserveCapacity(count)
            let outStrides = strides(shape)
            for flat in 0..<count {
                var remainder = flat
                var source = 0
                for d in 0..<shape.count {
                    let i = remainder / outStrides[d]
                    remainder %= outStrides[d]
                    source += (ranges[d].start + i * ranges[d].step) * inStrides[d]
                }
                values.append(data.values[source])
            }
            return FoldedTensor(shape: shape, values: values, isInteger: data.isInteger)
        case "Cast":
            let data = try input(0)
            let to = a.int("to", default: 1)
            let integer = ![1, 10, 11, 16].contains(to)
            return FoldedTensor(shape: data.shape, values: integer ? data.values.map { to == 9 ? ($0 != 0 ? 1 : 0) : $0.rounded(.towardZero) } : data.values, isInteger: integer)
        case "Neg", "Not", "Sqrt", "Floor", "Ceil":
            let data = try input(0)
            let f: (Double) -> Double = switch op {
            case "Neg": { -$0 }
            case "Not": { $0 == 0 ? 1 : 0 }
            case "Sqrt": { $0.squareRoot() }
            case "Floor": { $0.rounded(.down) }
            default: { $0.rounded(.up) }
            }
            return FoldedTensor(shape: data.shape, values: data.values.map(f), isInteger: data.isInteger)
        case "Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "Max", "Min", "Mod":
            let (x, y) = (try input(0), try input(1))
            guard let shape = Broadcast.shape(x.shape, y.shape) else {
                throw ONNXTrainingError("\(node): \(op) of \(x.shape) and \(y.shape) does not broadcast")
            }
            let integer = x.isInteger && y.isInteger
            let f = arithmetic(op, integer: integer, fmod: a.int("fmod", default: 0) == 1)
            let count = shape.reduce(1, *)
            guard count <= maximumElements else { throw ONNXTrainingError("\(node): \(op) makes \(count) elements, too many to fold") }
            let values = (0..<count).map { f(x.values[broadcastIndex($0, output: shape, shape: x.shape)], y.values[broadcastIndex($0, output: shape, shape: y.shape)]) }
            let comparison = ["Equal", "Less", "Greater"].contains(op)
            return FoldedTensor(shape: shape, values: values, isInteger: integer || comparison)
        case "Where":
            let (c, x, y) = (try input(0), try input(1), try input(2))
            guard let s1 = Broadcast.shape(c.shape, x.shape), let shape = Broadcast.shape(s1, y.shape) else {
                throw ONNXTrainingError("\(node): Where of \(c.shape), \(x.shape) and \(y.shape) does not broadcast")
            }
            let count = shape.reduce(1, *)
            guard count <= maximumElements else { throw ONNXTrainingError("\(node): Where makes \(count) elements, too many to fold") }
            let values = (0..<count).map { i in
                c.values[broadcastIndex(i, output: shape, shape: c.shape)] != 0
                    ? x.values[broadcastIndex(i, output: shape, shape: x.shape)] : y.values[broadcastIndex(i, output: shape, shape: y.shape)]
            }
            return FoldedTensor(shape: shape, values: values, isInteger: x.isInteger && y.isInteger)
        case "Expand":
            let (data, target) = (try input(0), try input(1))
            guard ShapeCheck.elements(target.integers) != nil, let shape = Broadcast.shape(data.shape, target.integers) else {
                throw ONNXTrainingError("\(node): Expand of \(data.shape) to \(target.integers)")
            }
            let count = shape.reduce(1, *)
            guard count <= maximumElements else { throw ONNXTrainingError("\(node): Expand makes \(count) elements, too many to fold") }
            return FoldedTensor(shape: shape, values: (0..<count).map { data.values[broadcastIndex($0, output: shape, shape: data.shape)] }, isInteger: data.isInteger)
        case "ConstantOfShape":
            let shape = try input(0).integers
            guard let count = ShapeCheck.elements(shape), count <= maximumElements else {
                throw ONNXTrainingError("\(node): ConstantOfShape of \(shape)")
            }
            var fill = FoldedTensor(shape: [1], values: [0], isInteger: false)
            if let value = a.tensor("value") { fill = try value.folded(limit: 1) }
            return FoldedTensor(shape: shape, values: Array(repeating: fill.values.first ?? 0, count: count), isInteger: fill.isInteger)
        case "Range":
            let (start, limit, delta) = (try input(0).values[0], try input(1).values[0], try input(2).values[0])
            guard delta != 0 else { throw ONNXTrainingError("\(node): Range with delta 0") }
            let steps = ((limit - start) / delta).rounded(.up)
            guard steps.isFinite, steps <= Double(maximumElements) else { throw ONNXTrainingError("\(node): Range of \(steps) elements") }
            let count = max(0, Int(steps))
            return FoldedTensor(shape: [count], values: (0..<count).map { start + Double($0) * delta }, isInteger: try input(0).isInteger)
        case "Reshape":
            let (data, target) = (try input(0), try input(1))
            var shape = target.integers.enumerated().map { $0.element == 0 && $0.offset < data.shape.count ? data.shape[$0.offset] : $0.element }
            guard let known = ShapeCheck.elements(shape.filter { $0 != -1 }) else {
                throw ONNXTrainingError("\(node): Reshape of \(data.shape) to \(target.integers)")
            }
            if let free = shape.firstIndex(of: -1) { shape[free] = known == 0 ? 0 : data.count / known }
            guard shape.reduce(1, *) == data.count else { throw ONNXTrainingError("\(node): Reshape of \(data.shape) to \(target.integers)") }
            return FoldedTensor(shape: shape, values: data.values, isInteger: data.isInteger)
        default:
            throw ONNXTrainingError("\(node): \(op) is not folded")
        }
    }
}
