import Foundation

/// What shape inference derives for one node: its outputs and the work it does.
///
/// FLOPs count a multiply-add as 2. `bytes` is the memory traffic of one run: inputs (parameters
/// included) read and outputs written, zero for ops that are views in every framework (Reshape,
/// Flatten, Squeeze, Unsqueeze, Identity). The cost model turns both into time (`CostModel`).
struct InferredOp {
    var outputs: [TensorInfo]
    var flops: Double
    var bytes: Double
    /// Backward FLOPs as a multiple of the forward ones: 2 for ops with weights (the gradient of the
    /// input and of the weights are each a product as big as the forward one), 1 otherwise.
    var backwardFactor: Double = 1
    /// Forward inputs and outputs the backward op reads: they stay in memory until it has run.
    var savedInputs: [Int] = []
    var savedOutputs: [Int] = []
}

/// Why an op could not be inferred.
enum InferenceFailure: Error {
    /// The op type is not one shape inference knows.
    case unsupported
    /// The op is known but its inputs or attributes do not fit together.
    case invalid(String)
    /// The op is known but its output shape depends on the contents of an input that import does
    /// not know (one computed at run time rather than a constant or a shape): like an unknown op,
    /// it is rejected or given the fallback estimate (`UnknownOpPolicy`).
    case dataDependent(String)
}

/// How `--batch` changes the model: the leading dimension of its inputs, from `original` (nil when
/// symbolic) to `batch`. Reshape targets that spell the original batch follow it.
struct BatchRewrite {
    var original: Int?
    var batch: Int
}

/// Shape inference and FLOP counts for the ONNX ops common in vision and language models.
/// The rules follow the ONNX operator specification (opsets 7 to 21); attributes that moved to
/// inputs in later opsets (Split, Squeeze, Unsqueeze, Pad, Reduce*) are read from either.
enum ShapeInference {
    /// Unary element-wise ops and their FLOPs per element: 1 for simple arithmetic, 4 for ops
    /// that evaluate an exponential or similar.
    static let unary: [String: Double] = [
        "Relu": 1, "LeakyRelu": 2, "PRelu": 2, "Abs": 1, "Neg": 1, "Floor": 1, "Ceil": 1, "Round": 1, "Sign": 1,
        "Clip": 2, "Reciprocal": 1, "Sqrt": 4, "Not": 1, "ThresholdedRelu": 1, "HardSigmoid": 3, "HardSwish": 4,
        "Sigmoid": 4, "Tanh": 4, "Elu": 4, "Selu": 4, "Celu": 4, "Softplus": 4, "Softsign": 3, "Exp": 4, "Log": 4,
        "Erf": 4, "Gelu": 8, "Mish": 8, "Sin": 4, "Cos": 4, "IsNaN": 1, "IsInf": 1,
    ]
    /// Broadcasting element-wise ops with two or more inputs: (inputs - 1) FLOPs per output element.
    static let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean", "Pow", "And", "Or", "Xor",
                                      "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Mod", "BitShift"]
    /// Ops whose output is bool whatever their input.
    static let predicates: Set<String> = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not",
                                          "IsNaN", "IsInf"]
    /// Binary ops whose results on known integer (and bool) contents shape inference computes,
    /// for the shape arithmetic of exported models and of ONNX functions (Shape, Gather, Div,
    /// Where, Concat, Reshape). Predicates give 0 or 1.
    static let integerArithmetic: Set<String> = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Mod", "Equal", "Less", "Greater",
                                                 "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"]
    /// Ops that only reinterpret their input: views, no memory traffic.
    static let views: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"]

    static func infer(_ op: String, inputs: [TensorInfo?], outputCount: Int, attributes a: Attributes, rewrite: BatchRewrite?) throws(InferenceFailure) -> InferredOp {
        func input(_ i: Int) throws(InferenceFailure) -> TensorInfo {
            guard i < inputs.count, let info = inputs[i] else { throw .invalid("input \(i) is missing") }
            return info
        }
        let present = inputs.compactMap { $0 }
        let inBytes = present.reduce(0.0) { $0 + Double($1.bytes) }
        func tensor(_ shape: [Int], _ type: Int32, values: [Int64]? = nil) throws(InferenceFailure) -> TensorInfo {
            guard ShapeCheck.elements(shape) != nil, shape.count <= ShapeCheck.maximumRank else {
                throw .invalid("the output shape \(shape) is impossible or larger than 1 TiB")
            }
            return TensorInfo(shape: shape, elementType: type, values: values)
        }
        func result(_ outputs: [TensorInfo], flops: Double, view: Bool = false, backward: Double = 1,
                    savedInputs: [Int] = [], savedOutputs: [Int] = []) -> InferredOp {
            // Only the outputs the node declares are written (MaxPool without Indices, Dropout without mask).
            let outputs = outputCount > 0 ? Array(outputs.prefix(outputCount)) : outputs
            let outBytes = outputs.reduce(0.0) { $0 + Double($1.bytes) }
            return InferredOp(outputs: outputs, flops: flops, bytes: view ? 0 : inBytes + outBytes, backwardFactor: backward,
                              savedInputs: savedInputs, savedOutputs: savedOutputs)
        }
        /// An axis in [-rank, rank), made non-negative (a scalar has none).
        func axis(_ value: Int, rank: Int) throws(InferenceFailure) -> Int {
            guard value.magnitude <= UInt(ShapeCheck.maximumRank) else { throw .invalid("axis \(value) is out of range for rank \(rank)") }
            let resolved = value < 0 ? value + rank : value
            guard resolved >= 0 && resolved < rank else { throw .invalid("axis \(value) is out of range for rank \(rank)") }
            return resolved
        }
        /// An integer list from an attribute, or else from a constant input (later opsets); every
        /// value within +-2^40, so that sums and products of a few of them cannot overflow.
        func list(_ name: String, input index: Int) throws(InferenceFailure) -> [Int]? {
            var values: [Int]
            if let given = a.ints(name) {
                values = given
            } else {
                guard index < inputs.count, let info = inputs[index] else { return nil }
                guard let known = info.values else { throw .dataDependent("input \(index) (\(name)) is not a constant") }
                values = known.map { Int(clamping: $0) }
            }
            guard values.allSatisfy({ $0.magnitude <= UInt(ShapeCheck.maximumBytes) }) else { throw .invalid("\(name) has a value beyond 2^40") }
            return values
        }
        func int(_ name: String, default value: Int) throws(InferenceFailure) -> Int {
            let v = a.int(name, default: value)
            guard v.magnitude <= UInt(ShapeCheck.maximumBytes) else { throw .invalid("\(name) is beyond 2^40") }
            return v
        }

        if let perElement = unary[op] {
            let x = try input(0)
            let type = predicates.contains(op) ? ElementType.bool : x.elementType
            let values: [Int64]? = op == "Not" ? x.values.map { $0.map { $0 == 0 ? 1 : 0 } } : nil
            let saved: ([Int], [Int]) = op == "Relu" || op == "Sigmoid" || op == "Tanh" ? ([], [0]) : ([0], [])
            return result([try tensor(x.shape, type, values: values)], flops: perElement * Double(x.elements),
                          savedInputs: saved.0, savedOutputs: saved.1)
        }
        if binary.contains(op) {
            guard !present.isEmpty else { throw .invalid("no inputs") }
            var shape = present[0].shape
            for other in present.dropFirst() { shape = try broadcast(shape, other.shape) }
            let type = predicates.contains(op) ? ElementType.bool : present[0].elementType
            var values: [Int64]?
            if integerArithmetic.contains(op), present.count == 2,
               ElementType.isInteger(present[0].elementType) || present[0].elementType == ElementType.bool {
                let floorMod = a.int("fmod", default: 0) == 0
                values = elementwise(present, into: shape) { integer(op, $0[0], $0[1], floorMod: floorMod) }
            }
            let out = try tensor(shape, type, values: values)
            let factor = op == "Pow" ? 4.0 : op == "Div" ? 2.0 : 1.0
            let saved = op == "Mul" || op == "Div" || op == "Pow" ? Array(inputs.indices) : []
            return result([out], flops: factor * Double(max(present.count - 1, 1)) * Double(out.elements), savedInputs: saved)
        }

        switch op {
        case "Conv":
            let x = try input(0), w = try input(1)
            guard x.rank >= 3, w.rank == x.rank else { throw .invalid("expects input and weights of the same rank >= 3, got \(x.shape) and \(w.shape)") }
            let group = try int("group", default: 1)
            let spatial = x.rank - 2
            let kernel = try list("kernel_shape", input: Int.max) ?? Array(w.shape[2...])
            guard group >= 1, group <= max(x.shape[1], 1), kernel.count == spatial, w.shape[0] % group == 0,
                  x.shape[1] == w.shape[1] * group else {
                throw .invalid("input \(x.shape) does not fit weights \(w.shape) with group \(group)")
            }
            let out = try poolShape(x.shape, kernel: kernel, a, ceil: false)
            let shape = [x.shape[0], w.shape[0]] + out
            let outputs = [try tensor(shape, x.elementType)]
            let perOutput = 2 * Double(w.shape[1]) * kernel.reduce(1.0) { $0 * Double($1) } + (inputs.count > 2 && inputs[2] != nil ? 1 : 0)
            return result(outputs, flops: perOutput * Double(outputs[0].elements), backward: 2, savedInputs: [0])
        case "Gemm":
            let x = try input(0), w = try input(1)
            guard x.rank == 2, w.rank == 2 else { throw .invalid("expects matrices, got \(x.shape) and \(w.shape)") }
            let (m, k) = a.int("transA", default: 0) != 0 ? (x.shape[1], x.shape[0]) : (x.shape[0], x.shape[1])
            let (k2, n) = a.int("transB", default: 0) != 0 ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
            guard k == k2 else { throw .invalid("inner dimensions differ: \(x.shape) and \(w.shape)") }
            if inputs.count > 2, let c = inputs[2] { _ = try broadcast([m, n], c.shape) }
            let out = try tensor([m, n], x.elementType)
            let bias = inputs.count > 2 && inputs[2] != nil ? 1.0 : 0
            return result([out], flops: (2 * Double(k) + bias) * Double(m * n), backward: 2, savedInputs: [0, 1])
        case "MatMul":
            let x = try input(0), w = try input(1)
            guard x.rank >= 1, w.rank >= 1 else { throw .invalid("expects tensors of rank >= 1") }
            let a2 = x.rank == 1 ? [1] + x.shape : x.shape
            let b2 = w.rank == 1 ? w.shape + [1] : w.shape
            let (m, k) = (a2[a2.count - 2], a2[a2.count - 1])
            let (k2, n) = (b2[b2.count - 2], b2[b2.count - 1])
            guard k == k2 else { throw .invalid("inner dimensions differ: \(x.shape) and \(w.shape)") }
            let batch = try broadcast(Array(a2.dropLast(2)), Array(b2.dropLast(2)))
            var shape = batch + [m, n]
            if x.rank == 1 { shape.remove(at: shape.count - 2) }
            if w.rank == 1 { shape.removeLast() }
            let out = try tensor(shape, x.elementType)
            return result([out], flops: 2 * Double(k) * Double(batch.reduce(1, *)) * Double(m) * Double(n), backward: 2, savedInputs: [0, 1])
        case "MaxPool", "AveragePool", "LpPool":
            let x = try input(0)
            guard x.rank >= 3, let kernel = try list("kernel_shape", input: Int.max), kernel.count == x.rank - 2 else {
                throw .invalid("needs kernel_shape for the \(max(x.rank - 2, 0)) spatial dimensions of \(x.shape)")
            }
            let spatial = try poolShape(x.shape, kernel: kernel, a, ceil: a.int("ceil_mode", default: 0) != 0)
            let out = try tensor(Array(x.shape[0..<2]) + spatial, x.elementType)
            var outputs = [out]
            if op == "MaxPool" { outputs.append(try tensor(out.shape, ElementType.int64)) }
            return result(outputs, flops: kernel.reduce(1.0) { $0 * Double($1) } * Double(out.elements),
                          savedInputs: op == "MaxPool" ? [0] : [], savedOutputs: op == "MaxPool" ? [0] : [])
        case "GlobalAveragePool", "GlobalMaxPool":
            let x = try input(0)
            guard x.rank >= 3 else { throw .invalid("expects an input of rank >= 3, got \(x.shape)") }
            let out = try tensor(Array(x.shape[0..<2]) + Array(repeating: 1, count: x.rank - 2), x.elementType)
            return result([out], flops: Double(x.elements), savedInputs: op == "GlobalMaxPool" ? [0] : [])
        case "BatchNormalization", "InstanceNormalization", "LayerNormalization":
            let x = try input(0)
            guard x.rank >= 1 else { throw .invalid("expects an input of rank >= 1") }
            var outputs = [try tensor(x.shape, x.elementType)]
            if op == "LayerNormalization" {
                // Mean and InvStdDev: one value per normalized slice, x.shape[..<axis] + 1s, of stash_type.
                let k = try axis(a.int("axis", default: -1), rank: x.rank)
                let statistics = Array(x.shape[..<k]) + Array(repeating: 1, count: x.rank - k)
                let stash = Int32(clamping: a.int("stash_type", default: Int(ElementType.float)))
                for _ in 1..<max(1, outputCount) { outputs.append(try tensor(statistics, stash)) }
            } else {
                // Optional outputs (running and saved statistics): one value per channel.
                let channels = x.rank > 1 ? x.shape[1] : x.shape[0]
                for _ in 1..<max(1, outputCount) { outputs.append(try tensor([channels], x.elementType)) }
            }
            let perElement = op == "BatchNormalization" ? 2.0 : 5.0
            return result(outputs, flops: perElement * Double(x.elements), savedInputs: [0])
        case "LRN":
            let x = try input(0)
            let size = try int("size", default: 1)
            guard size >= 1 else { throw .invalid("size must be >= 1") }
            return result([try tensor(x.shape, x.elementType)], flops: Double(2 * size + 3) * Double(x.elements),
                          savedInputs: [0], savedOutputs: [0])
        case "Softmax", "LogSoftmax":
            let x = try input(0)
            _ = try axis(a.int("axis", default: -1), rank: x.rank)
            return result([try tensor(x.shape, x.elementType)], flops: 5 * Double(x.elements), savedOutputs: [0])
        case "Dropout":
            let x = try input(0)
            let out = try tensor(x.shape, x.elementType)
            return result([out, try tensor(x.shape, ElementType.bool)], flops: Double(x.elements), savedOutputs: [1])
        case "Concat":
            guard let first = present.first else { throw .invalid("no inputs") }
            let k = try axis(a.int("axis") ?? 0, rank: first.rank)
            var shape = first.shape
            for other in present.dropFirst() {
                guard other.rank == first.rank, (0..<first.rank).allSatisfy({ $0 == k || other.shape[$0] == first.shape[$0] }) else {
                    throw .invalid("inputs \(first.shape) and \(other.shape) do not concatenate on axis \(k)")
                }
                shape[k] += other.shape[k]
                guard shape[k] <= ShapeCheck.maximumBytes else { throw .invalid("the concatenation is larger than 2^40 elements") }
            }
            var values: [Int64]?
            if present.allSatisfy({ $0.values != nil }), first.rank == 1 { values = present.flatMap { $0.values! } }
            return result([try tensor(shape, first.elementType, values: values)], flops: 0)
        case "Split":
            let x = try input(0)
            let k = try axis(a.int("axis", default: 0), rank: x.rank)
            let count = max(1, outputCount)
            var sizes = try list("split", input: 1) ?? []
            if sizes.isEmpty {
                let parts = try int("num_outputs", default: count)
                guard parts >= 1 && parts <= 1 << 20 else { throw .invalid("num_outputs must be between 1 and 2^20") }
                let chunk = (x.shape[k] + parts - 1) / parts
                sizes = (0..<parts).map { max(0, min(chunk, x.shape[k] - $0 * chunk)) }
            }
            guard sizes.count <= 1 << 20, sizes.allSatisfy({ $0 >= 0 && $0 <= x.shape[k] }), sizes.reduce(0, +) == x.shape[k] else {
                throw .invalid("split sizes \(sizes) do not add up to \(x.shape[k]) on axis \(k)")
            }
            var outputs = [TensorInfo]()
            for size in sizes {
                var shape = x.shape
                shape[k] = size
                outputs.append(try tensor(shape, x.elementType))
            }
            return result(outputs, flops: 0)
        case "Flatten":
            let x = try input(0)
            let k = try int("axis", default: 1)
            let cut = k < 0 ? k + x.rank : k
            guard cut >= 0 && cut <= x.rank else { throw .invalid("axis \(k) is out of range for rank \(x.rank)") }
            return result([try tensor([x.shape[..<cut].reduce(1, *), x.shape[cut...].reduce(1, *)], x.elementType, values: x.values)],
                          flops: 0, view: true)
        case "Reshape":
            let x = try input(0)
            guard let target = try list("shape", input: 1) else { throw .invalid("the target shape is missing") }
            let shape = try reshape(x.shape, target, allowZero: a.int("allowzero", default: 0) != 0, rewrite: rewrite)
            return result([try tensor(shape, x.elementType, values: x.values)], flops: 0, view: true)
        case "Transpose":
            let x = try input(0)
            let perm = try list("perm", input: Int.max) ?? Array((0..<x.rank).reversed())
            guard perm.count == x.rank, Set(perm) == Set(0..<x.rank) else { throw .invalid("perm \(perm) is not a permutation of \(x.rank) axes") }
            return result([try tensor(perm.map { x.shape[$0] }, x.elementType)], flops: 0)
        case "Squeeze":
            let x = try input(0)
            var shape = x.shape
            if let axes = try list("axes", input: 1) {
                var drop = Set<Int>()
                for value in axes { drop.insert(try axis(value, rank: x.rank)) }
                guard drop.allSatisfy({ x.shape[$0] == 1 }) else { throw .invalid("axes \(axes) of \(x.shape) are not all 1") }
                shape = x.shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
            } else {
                shape = x.shape.filter { $0 != 1 }
            }
            return result([try tensor(shape, x.elementType, values: x.values)], flops: 0, view: true)
        case "Unsqueeze":
            let x = try input(0)
            guard let axes = try list("axes", input: 1) else { throw .invalid("axes are missing") }
            let rank = x.rank + axes.count
            guard rank <= ShapeCheck.maximumRank else { throw .invalid("the output would have rank \(rank)") }
            var inserted = Set<Int>()
            for value in axes { inserted.insert(try axis(value, rank: rank)) }
            guard inserted.count == axes.count else { throw .invalid("axes \(axes) repeat") }
            var rest = x.shape.makeIterator()
            let shape = (0..<rank).map { inserted.contains($0) ? 1 : (rest.next() ?? 1) }
            return result([try tensor(shape, x.elementType, values: x.values)], flops: 0, view: true)
        case "Identity":
            let x = try input(0)
            return result([try tensor(x.shape, x.elementType, values: x.values)], flops: 0, view: true)
        case "Pad":
            let x = try input(0)
            // Opset 18's `axes` input names the padded axes (all of them when absent).
            var axes = Array(0..<x.rank)
            if let given = try list("axes", input: 3) {
                axes = []
                for value in given { axes.append(try axis(value, rank: x.rank)) }
                guard Set(axes).count == axes.count else { throw .invalid("axes \(given) repeat") }
            }
            guard let pads = try list("pads", input: 1), pads.count == 2 * axes.count else {
                throw .invalid("needs \(2 * axes.count) pads for axes \(axes) of \(x.shape)")
            }
            var shape = x.shape
            for (j, k) in axes.enumerated() {
                shape[k] += pads[j] + pads[j + axes.count]
                guard shape[k] >= 0 else { throw .invalid("pads \(pads) leave axis \(k) of \(x.shape) negative") }
            }
            return result([try tensor(shape, x.elementType)], flops: 0)
        case "Cast":
            let x = try input(0)
            let to = Int32(clamping: a.int("to", default: Int(ElementType.float)))
            let values = to == ElementType.bool ? x.values.map { $0.map { $0 == 0 ? 0 : 1 } } : x.values
            return result([try tensor(x.shape, to, values: values)], flops: 0)
        case "Shape":
            let x = try input(0)
            // Opset 15's start and end: negative ones count from the back, both clamped to [0, rank].
            func bound(_ value: Int) -> Int { min(max(value < 0 ? value + x.rank : value, 0), x.rank) }
            let start = bound(a.int("start", default: 0)), end = bound(a.int("end", default: x.rank))
            let dims = start < end ? Array(x.shape[start..<end]) : []
            return result([try tensor([dims.count], ElementType.int64, values: dims.map(Int64.init))], flops: 0)
        case "Size":
            let x = try input(0)
            return result([try tensor([], ElementType.int64, values: [Int64(x.elements)])], flops: 0)
        case "Range":
            let start = try input(0), limit = try input(1), delta = try input(2)
            guard start.elements == 1, limit.elements == 1, delta.elements == 1 else { throw .invalid("start, limit and delta must be scalars") }
            guard let s = start.values?.first, let l = limit.values?.first, let d = delta.values?.first else {
                throw .dataDependent("start, limit and delta are not integer constants")
            }
            guard d != 0 else { throw .invalid("delta is 0") }
            guard [s, l, d].allSatisfy({ $0.magnitude <= UInt64(ShapeCheck.maximumBytes) }) else { throw .invalid("start, limit or delta is beyond 2^40") }
            let span = l - s
            let count = max(0, d > 0 ? (span + d - 1) / d : (span + d + 1) / d)
            let values = count <= 1 << 16 ? (0..<count).map { s + $0 * d } : nil
            return result([try tensor([Int(count)], start.elementType, values: values)], flops: 0)
        case "Constant":
            if let value = a.tensor("value") {
                do { return result([try value.info()], flops: 0) } catch { throw .invalid(error.description) }
            }
            // The other forms (opset 12): a scalar or a list of floats, integers or strings.
            if let value = a.int("value_int") { return result([try tensor([], ElementType.int64, values: [Int64(value)])], flops: 0) }
            if let values = a.ints("value_ints") { return result([try tensor([values.count], ElementType.int64, values: values.map(Int64.init))], flops: 0) }
            if a.has("value_float") { return result([try tensor([], ElementType.float)], flops: 0) }
            if let count = a.count("value_floats") { return result([try tensor([count], ElementType.float)], flops: 0) }
            if a.has("value_string") { return result([try tensor([], ElementType.string)], flops: 0) }
            if let count = a.count("value_strings") { return result([try tensor([count], ElementType.string)], flops: 0) }
            throw .invalid("has no value (a sparse_value is not supported)")
        case "ConstantOfShape":
            let shapeInput = try input(0)
            guard let dims = shapeInput.values else { throw .dataDependent("the shape input is not a constant") }
            let type = a.tensor("value").map { $0.dataType == 0 ? ElementType.float : $0.dataType } ?? ElementType.float
            return result([try tensor(dims.map { Int(clamping: $0) }, type)], flops: 0)
        case "Gather":
            let data = try input(0), indices = try input(1)
            let k = try axis(a.int("axis", default: 0), rank: data.rank)
            let shape = Array(data.shape[..<k]) + indices.shape + Array(data.shape[(k + 1)...])
            var values: [Int64]?
            if data.rank == 1, let table = data.values, let picks = indices.values {
                values = picks.compactMap { i in
                    let j = i < 0 ? Int(i) + table.count : Int(i)
                    return table.indices.contains(j) ? table[j] : nil
                }
                if values?.count != picks.count { values = nil }
            }
            let out = try tensor(shape, data.elementType, values: values)
            return result([out], flops: 0)
        case "Where":
            guard present.count == 3 else { throw .invalid("needs 3 inputs") }
            let shape = try broadcast(try broadcast(present[0].shape, present[1].shape), present[2].shape)
            let values = ElementType.isInteger(present[1].elementType) ? elementwise(present, into: shape) { $0[0] != 0 ? $0[1] : $0[2] } : nil
            let out = try tensor(shape, present[1].elementType, values: values)
            return result([out], flops: Double(out.elements), savedInputs: [0])
        case "Expand":
            let x = try input(0)
            guard let target = try list("shape", input: 1) else { throw .invalid("the target shape is missing") }
            return result([try tensor(try broadcast(x.shape, target), x.elementType)], flops: 0)
        case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2":
            let x = try input(0)
            let keep = a.int("keepdims", default: 1) != 0
            var axes = Set<Int>()
            if let given = try list("axes", input: 1), !given.isEmpty {
                for value in given { axes.insert(try axis(value, rank: x.rank)) }
            } else if a.int("noop_with_empty_axes", default: 0) == 0 {
                axes = Set(0..<x.rank)
            }
            var shape = [Int]()
            for (i, dim) in x.shape.enumerated() {
                if axes.contains(i) { if keep { shape.append(1) } } else { shape.append(dim) }
            }
            return result([try tensor(shape, x.elementType)], flops: Double(x.elements),
                          savedInputs: op == "ReduceMax" || op == "ReduceMin" || op == "ReduceProd" || op == "ReduceL2" ? [0] : [])
        case "Slice":
            let x = try input(0)
            let starts = try list("starts", input: 1), ends = try list("ends", input: 2)
            guard let starts, let ends, starts.count == ends.count else { throw .invalid("starts and ends are missing or differ in length") }
            let axes = try list("axes", input: 3) ?? Array(0..<starts.count)
            let steps = try list("steps", input: 4) ?? Array(repeating: 1, count: starts.count)
            guard axes.count == starts.count, steps.count == starts.count, steps.allSatisfy({ $0 != 0 }) else {
                throw .invalid("axes and steps do not match starts")
            }
            var shape = x.shape
            for j in starts.indices {
                let k = try axis(axes[j], rank: x.rank)
                let dim = x.shape[k]
                func clampIndex(_ v: Int, _ low: Int, _ high: Int) -> Int { min(max(v < 0 ? v + dim : v, low), high) }
                if steps[j] > 0 {
                    let s = clampIndex(starts[j], 0, dim), e = clampIndex(ends[j], 0, dim)
                    shape[k] = max(0, (e - s + steps[j] - 1) / steps[j])
                } else {
                    let s = clampIndex(starts[j], -1, dim - 1), e = clampIndex(ends[j], -1, dim - 1)
                    shape[k] = max(0, (s - e - steps[j] - 1) / -steps[j])
                }
            }
            var values: [Int64]?
            if x.rank == 1, let table = x.values, starts.count == 1, steps[0] == 1 {
                let dim = table.count
                let s = min(max(starts[0] < 0 ? starts[0] + dim : starts[0], 0), dim)
                let e = min(max(ends[0] < 0 ? ends[0] + dim : ends[0], 0), dim)
                values = s < e ? Array(table[s..<e]) : []
            }
            return result([try tensor(shape, x.elementType, values: values)], flops: 0)
        default:
            throw .unsupported
        }
    }

    /// One integer result of `op` (see `integerArithmetic`), nil on overflow, on division by 0,
    /// or when integer division rounding would matter (Div of operands of different signs). Mod
    /// takes the divisor's sign unless `floorMod` is false (the attribute fmod = 1: the dividend's).
    static func integer(_ op: String, _ a: Int64, _ b: Int64, floorMod: Bool = true) -> Int64? {
        switch op {
        case "Add": let (r, o) = a.addingReportingOverflow(b); return o ? nil : r
        case "Sub": let (r, o) = a.subtractingReportingOverflow(b); return o ? nil : r
        case "Mul": let (r, o) = a.multipliedReportingOverflow(by: b); return o ? nil : r
        case "Div":
            guard b != 0 else { return nil }
            let (quotient, overflow) = a.dividedReportingOverflow(by: b)
            return !overflow && (a.remainderReportingOverflow(dividingBy: b).partialValue == 0 || (a >= 0) == (b > 0)) ? quotient : nil
        case "Max": return max(a, b)
        case "Min": return min(a, b)
        case "Mod":
            guard b != 0 else { return nil }
            let r = a.remainderReportingOverflow(dividingBy: b).partialValue
            return floorMod && r != 0 && (r < 0) != (b < 0) ? r + b : r
        case "Equal": return a == b ? 1 : 0
        case "Less": return a < b ? 1 : 0
        case "Greater": return a > b ? 1 : 0
        case "LessOrEqual": return a <= b ? 1 : 0
        case "GreaterOrEqual": return a >= b ? 1 : 0
        case "And": return a != 0 && b != 0 ? 1 : 0
        case "Or": return a != 0 || b != 0 ? 1 : 0
        case "Xor": return (a != 0) != (b != 0) ? 1 : 0
        default: return nil
        }
    }

    /// `f` applied element by element to small tensors of known contents broadcast to `shape`
    /// (numpy's rule), or nil when a tensor's contents are unknown or any result is nil.
    static func elementwise(_ operands: [TensorInfo], into shape: [Int], _ f: ([Int64]) -> Int64?) -> [Int64]? {
        guard let count = ShapeCheck.elements(shape), count <= 1 << 16,
              operands.allSatisfy({ $0.values?.count == $0.elements && $0.rank <= shape.count }) else { return nil }
        /// Row-major strides of `inner` read as `shape`: 0 along the axes it broadcasts.
        func strides(_ inner: [Int]) -> [Int] {
            let padded = Array(repeating: 1, count: shape.count - inner.count) + inner
            var result = [Int](repeating: 0, count: shape.count)
            var step = 1
            for k in padded.indices.reversed() {
                result[k] = padded[k] == 1 ? 0 : step
                step *= padded[k]
            }
            return result
        }
        let steps = operands.map { strides($0.shape) }
        let contents = operands.map { $0.values! }
        var out = [Int64]()
        out.reserveCapacity(count)
        var offsets = [Int](repeating: 0, count: operands.count)
        var arguments = [Int64](repeating: 0, count: operands.count)
        for flat in 0..<count {
            for j in offsets.indices { offsets[j] = 0 }
            var rest = flat
            for k in shape.indices.reversed() {
                let i = rest % shape[k]
                rest /= shape[k]
                for j in offsets.indices { offsets[j] += i * steps[j][k] }
            }
            for j in arguments.indices { arguments[j] = contents[j][offsets[j]] }
            guard let value = f(arguments) else { return nil }
            out.append(value)
        }
        return out
    }

    /// Numpy's multidirectional broadcast.
    static func broadcast(_ a: [Int], _ b: [Int]) throws(InferenceFailure) -> [Int] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        var out = [Int]()
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else { throw .invalid("shapes \(a) and \(b) do not broadcast") }
            out.append(x == 1 ? y : x)
        }
        return out
    }

    /// Output spatial size of a convolution or pooling window (ONNX's formulas, with auto_pad).
    /// Every window op reads `dilations` (AveragePool since opset 19, LpPool since 18; 1 before).
    static func poolShape(_ input: [Int], kernel: [Int], _ a: Attributes, ceil: Bool) throws(InferenceFailure) -> [Int] {
        let spatial = input.count - 2
        let strides = a.ints("strides") ?? Array(repeating: 1, count: spatial)
        let dilations = a.ints("dilations") ?? Array(repeating: 1, count: spatial)
        var pads = a.ints("pads") ?? Array(repeating: 0, count: 2 * spatial)
        let autoPad = a.string("auto_pad") ?? "NOTSET"
        // Within 2^20 (dilations) and 2^40 (the rest), extents and spans cannot overflow.
        guard (strides + pads + kernel).allSatisfy({ $0.magnitude <= UInt(ShapeCheck.maximumBytes) }), dilations.allSatisfy({ $0.magnitude <= 1 << 20 }) else {
            throw .invalid("strides, dilations, pads or kernel_shape are absurdly large")
        }
        guard strides.count == spatial, dilations.count == spatial, pads.count == 2 * spatial,
              strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }), kernel.allSatisfy({ $0 >= 1 }), pads.allSatisfy({ $0 >= 0 }) else {
            throw .invalid("strides, dilations, pads or kernel_shape do not fit \(spatial) spatial dimensions")
        }
        var out = [Int]()
        for i in 0..<spatial {
            let size = input[i + 2]
            let extent = (kernel[i] - 1) * dilations[i] + 1
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                out.append((size + strides[i] - 1) / strides[i])
                continue
            case "VALID":
                pads[i] = 0
                pads[i + spatial] = 0
            case "NOTSET", "": break
            default: throw .invalid("unknown auto_pad \"\(autoPad)\"")
            }
            let span = size + pads[i] + pads[i + spatial] - extent
            guard span >= 0 else { throw .invalid("the window \(kernel) is larger than the padded input \(input)") }
            var count = (ceil ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1
            // A last window that would start inside the end padding is dropped (as in ONNX and PyTorch).
            if ceil && (count - 1) * strides[i] >= size + pads[i] { count -= 1 }
            out.append(count)
        }
        return out
    }

    /// ONNX Reshape: 0 copies the input's dimension (unless allowzero), -1 takes what is left.
    /// When `--batch` changed a batch the model fixed, a target that spells the old batch in front
    /// gets the new one there.
    static func reshape(_ input: [Int], _ target: [Int], allowZero: Bool, rewrite: BatchRewrite?) throws(InferenceFailure) -> [Int] {
        guard let total = ShapeCheck.elements(input) else { throw .invalid("the input shape \(input) is impossible") }
        func resolve(_ target: [Int]) -> [Int]? {
            var shape = [Int]()
            var unknown: Int?
            for (i, value) in target.enumerated() {
                if value == 0 && !allowZero {
                    guard i < input.count else { return nil }
                    shape.append(input[i])
                } else if value == -1 {
                    guard unknown == nil else { return nil }
                    unknown = i
                    shape.append(1)
                } else if value < 0 {
                    return nil
                } else {
                    shape.append(value)
                }
            }
            guard let known = ShapeCheck.elements(shape) else { return nil }
            if let unknown {
                guard known > 0, total % known == 0 else { return nil }
                shape[unknown] = total / known
            } else if known != total {
                return nil
            }
            return shape
        }
        if let shape = resolve(target) { return shape }
        if let rewrite, let original = rewrite.original, original != rewrite.batch, target.first == original,
           let shape = resolve([rewrite.batch] + target.dropFirst()) {
            return shape
        }
        throw .invalid("cannot reshape \(input) to \(target)")
    }
}
