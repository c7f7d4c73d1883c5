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
        "Tan": 4, "Asin": 4, "Acos": 4, "Atan": 4, "Sinh": 4, "Cosh": 4, "Asinh": 4, "Acosh": 4, "Atanh": 4, "Swish": 5,
        "Shrink": 2, "BitwiseNot": 1, "Hardmax": 2, "LpNormalization": 3, "Trilu": 1, "CumSum": 1, "CumProd": 1,
    ]
    /// Broadcasting element-wise ops with two or more inputs: (inputs - 1) FLOPs per output element.
    static let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean", "Pow", "And", "Or", "Xor",
                                      "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Mod", "BitShift",
                                      "BitwiseAnd", "BitwiseOr", "BitwiseXor"]
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
            // Known integer contents follow Not, Neg and Abs (shape arithmetic: axis counts from the back).
            var values: [Int64]?
            if let known = x.values, known.allSatisfy({ $0 != .min }) {
                switch op {
                case "Not": values = known.map { $0 == 0 ? 1 : 0 }
                case "Neg" where ElementType.isInteger(x.elementType): values = known.map { -$0 }
                case "Abs" where ElementType.isInteger(x.elementType): values = known.map { Swift.abs($0) }
                default: break
                }
            }
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
        case "CastLike":
            let x = try input(0), like = try input(1)
            return result([try tensor(x.shape, like.elementType, values: x.values)], flops: 0)
        case "ArgMax", "ArgMin":
            let x = try input(0)
            let k = try axis(a.int("axis", default: 0), rank: x.rank)
            var shape = x.shape
            if a.int("keepdims", default: 1) != 0 { shape[k] = 1 } else { shape.remove(at: k) }
            return result([try tensor(shape, ElementType.int64)], flops: Double(x.elements))
        case "TopK":
            let x = try input(0)
            let k = try axis(a.int("axis", default: -1), rank: x.rank)
            guard let count = try list("k", input: 1)?.first else { throw .invalid("K is missing") }
            guard count >= 0 && count <= x.shape[k] else { throw .invalid("K = \(count) is out of range for axis \(k) of \(x.shape)") }
            var shape = x.shape
            shape[k] = count
            return result([try tensor(shape, x.elementType), try tensor(shape, ElementType.int64)],
                          flops: Double(x.elements) * log2(Double(max(count, 2))), savedOutputs: [1])
        case "Tile":
            let x = try input(0)
            guard let repeats = try list("repeats", input: 1), repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
                throw .invalid("needs \(x.rank) non-negative repeats for \(x.shape)")
            }
            let shape = try zip(x.shape, repeats).map { (dim, times) throws(InferenceFailure) -> Int in
                let (product, overflow) = dim.multipliedReportingOverflow(by: times)
                guard !overflow else { throw .invalid("repeats \(repeats) of \(x.shape) overflow") }
                return product
            }
            return result([try tensor(shape, x.elementType)], flops: 0)
        case "DepthToSpace", "SpaceToDepth":
            let x = try input(0)
            let block = try int("blocksize", default: 0)
            guard x.rank == 4, block >= 1, block <= 1 << 20 else { throw .invalid("expects a 4-dimensional input and a blocksize from 1 to 2^20, got \(x.shape) and \(block)") }
            let square = block * block
            let shape: [Int]
            if op == "DepthToSpace" {
                guard x.shape[1] % square == 0 else { throw .invalid("channels \(x.shape[1]) are not a multiple of \(square)") }
                shape = [x.shape[0], x.shape[1] / square, x.shape[2] * block, x.shape[3] * block]
            } else {
                guard x.shape[2] % block == 0, x.shape[3] % block == 0 else { throw .invalid("\(x.shape) is not a multiple of the blocksize \(block)") }
                shape = [x.shape[0], x.shape[1] * square, x.shape[2] / block, x.shape[3] / block]
            }
            return result([try tensor(shape, x.elementType)], flops: 0)
        case "GroupNormalization", "MeanVarianceNormalization", "RMSNormalization":
            let x = try input(0)
            return result([try tensor(x.shape, x.elementType)], flops: 5 * Double(x.elements), savedInputs: [0])
        case "QuantizeLinear", "DequantizeLinear":
            let x = try input(0), scale = try input(1)
            // The output type: output_dtype when set, else the zero point's (uint8 without one) or the scale's.
            var type = Int32(clamping: a.int("output_dtype", default: 0))
            if type == 0 {
                if op == "QuantizeLinear" {
                    type = inputs.count > 2 ? inputs[2]?.elementType ?? ElementType.uint8 : ElementType.uint8
                } else {
                    type = scale.elementType
                }
            }
            return result([try tensor(x.shape, type)], flops: 2 * Double(x.elements))
        case "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss":
            let scores = try input(0)
            guard scores.rank >= 2 else { throw .invalid("expects scores of rank >= 2, got \(scores.shape)") }
            // Per sample without a reduction: the scores' shape without the class axis; else a scalar.
            let reduction = a.string("reduction") ?? "mean"
            let loss = reduction == "none" ? [scores.shape[0]] + Array(scores.shape[2...]) : []
            var outputs = [try tensor(loss, scores.elementType)]
            if op == "SoftmaxCrossEntropyLoss" { outputs.append(try tensor(scores.shape, scores.elementType)) }
            return result(outputs, flops: (op == "SoftmaxCrossEntropyLoss" ? 6 : 1) * Double(scores.elements), savedInputs: [0, 1])
        case "ConvTranspose":
            let x = try input(0), w = try input(1)
            guard x.rank >= 3, w.rank == x.rank else { throw .invalid("expects input and weights of the same rank >= 3, got \(x.shape) and \(w.shape)") }
            let group = try int("group", default: 1)
            let spatial = x.rank - 2
            let kernel = try list("kernel_shape", input: Int.max) ?? Array(w.shape[2...])
            guard group >= 1, kernel.count == spatial, x.shape[1] == w.shape[0] else {
                throw .invalid("input \(x.shape) does not fit weights \(w.shape) with group \(group)")
            }
            let out = try transposedShape(x.shape, kernel: kernel, a)
            let (channels, overflow) = w.shape[1].multipliedReportingOverflow(by: group)
            guard !overflow else { throw .invalid("\(group) groups of \(w.shape[1]) channels overflow") }
            let outputs = [try tensor([x.shape[0], channels] + out, x.elementType)]
            // Every input element meets every kernel weight of its group's output channels once.
            let perInput = 2 * Double(w.shape[1]) * kernel.reduce(1.0) { $0 * Double($1) }
            return result(outputs, flops: perInput * Double(x.elements), backward: 2, savedInputs: [0])
        case "MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv":
            // Their float counterparts' shapes and FLOPs; int32 out, or the output zero point's type.
            let quantized = op.hasPrefix("QLinear")
            let operands = quantized ? [try input(0), try input(3)] + (op == "QLinearConv" && inputs.count > 8 ? [inputs[8]] : [])
                                     : [try input(0), try input(1)]
            let inner = try infer(op.contains("MatMul") ? "MatMul" : "Conv", inputs: operands, outputCount: 1, attributes: a, rewrite: rewrite)
            let type = quantized ? try input(7).elementType : ElementType.int32
            return result([try tensor(inner.outputs[0].shape, type)], flops: inner.flops, backward: inner.backwardFactor,
                          savedInputs: inner.savedInputs)
        case "GatherElements":
            let data = try input(0), indices = try input(1)
            _ = try axis(a.int("axis", default: 0), rank: data.rank)
            guard indices.rank == data.rank else { throw .invalid("indices \(indices.shape) and data \(data.shape) differ in rank") }
            return result([try tensor(indices.shape, data.elementType)], flops: 0)
        case "GatherND":
            let data = try input(0), indices = try input(1)
            let batchDims = try int("batch_dims", default: 0)
            guard indices.rank >= 1, let last = indices.shape.last, batchDims >= 0, batchDims < min(data.rank, indices.rank),
                  last >= 1, batchDims + last <= data.rank else {
                throw .invalid("indices \(indices.shape) do not fit data \(data.shape) with batch_dims \(batchDims)")
            }
            let shape = Array(indices.shape.dropLast()) + Array(data.shape[(batchDims + last)...])
            return result([try tensor(shape, data.elementType)], flops: 0)
        case "Scatter", "ScatterElements", "ScatterND", "TensorScatter", "ReverseSequence":
            let data = try input(0)
            return result([try tensor(data.shape, data.elementType)], flops: 0)
        case "EyeLike":
            let x = try input(0)
            guard x.rank == 2 else { throw .invalid("expects a matrix, got \(x.shape)") }
            let type = Int32(clamping: a.int("dtype", default: Int(x.elementType)))
            return result([try tensor(x.shape, type)], flops: 0)
        case "OneHot":
            let indices = try input(0), values = try input(2)
            // depth is a scalar of any numeric type (a float one counts its integer part).
            let depthInput = try input(1)
            guard let depth = depthInput.values?.first.map({ Int(clamping: $0) }) ?? depthInput.scales?.first.flatMap({ $0.isFinite ? Int(exactly: $0.rounded(.towardZero)) : nil }) else {
                throw .dataDependent("input 1 (depth) is not a constant")
            }
            guard depth >= 0 && depth <= ShapeCheck.maximumBytes else { throw .invalid("depth \(depth) is out of range") }
            let k = try axis(a.int("axis", default: -1), rank: indices.rank + 1)
            var shape = indices.shape
            shape.insert(depth, at: k)
            return result([try tensor(shape, values.elementType)], flops: 0)
        case "CenterCropPad":
            let x = try input(0)
            guard let sizes = try list("shape", input: 1) else { throw .invalid("the target shape is missing") }
            var axes = Array(0..<x.rank)
            if let given = a.ints("axes") {
                axes = []
                for value in given { axes.append(try axis(value, rank: x.rank)) }
            }
            guard sizes.count == axes.count, sizes.allSatisfy({ $0 >= 0 }) else { throw .invalid("shape \(sizes) does not fit axes \(axes)") }
            var shape = x.shape
            for (j, k) in axes.enumerated() { shape[k] = sizes[j] }
            return result([try tensor(shape, x.elementType)], flops: 0)
        case "RNN", "GRU", "LSTM":
            let x = try input(0), recurrence = try input(2)
            guard x.rank == 3, recurrence.rank == 3 else { throw .invalid("expects a 3-dimensional input and recurrence weights, got \(x.shape) and \(recurrence.shape)") }
            let directions = a.string("direction") == "bidirectional" ? 2 : 1
            let hidden = try int("hidden_size", default: recurrence.shape[2])
            let batchFirst = a.int("layout", default: 0) != 0
            let (sequence, batch, features) = batchFirst ? (x.shape[1], x.shape[0], x.shape[2]) : (x.shape[0], x.shape[1], x.shape[2])
            let y = batchFirst ? [batch, sequence, directions, hidden] : [sequence, directions, batch, hidden]
            let last = batchFirst ? [batch, directions, hidden] : [directions, batch, hidden]
            var outputs = [try tensor(y, x.elementType), try tensor(last, x.elementType)]
            if op == "LSTM" { outputs.append(try tensor(last, x.elementType)) }
            // Per step and direction: the gates' products with the input and the hidden state.
            let gates = op == "LSTM" ? 4.0 : op == "GRU" ? 3.0 : 1.0
            let flops = 2 * gates * Double(hidden) * (Double(features) + Double(hidden)) * Double(sequence) * Double(batch) * Double(directions)
            return result(outputs, flops: flops, backward: 2, savedInputs: [0], savedOutputs: [0])
        case "Resize", "Upsample":
            let x = try input(0)
            // Resize: X, roi, scales, sizes (opset 10: X, scales); Upsample: X, scales (opset 7: an attribute).
            let scalesSlot = op == "Upsample" || inputs.count == 2 ? 1 : 2
            var axes = Array(0..<x.rank)
            if let given = a.ints("axes") {
                axes = []
                for value in given { axes.append(try axis(value, rank: x.rank)) }
            }
            var shape = x.shape
            /// A computed size, rounded down; an absurd one (NaN, negative, beyond 2^40) is refused.
            func size(_ value: Double) throws(InferenceFailure) -> Int {
                guard value.isFinite, value >= 0, value <= Double(ShapeCheck.maximumBytes) else { throw .invalid("an output size of \(value) for \(x.shape)") }
                return Int(value.rounded(.down))
            }
            if inputs.count > 3, let sizesInput = inputs[3], sizesInput.elements > 0 {
                guard let sizes = try list("sizes", input: 3), sizes.count == axes.count, sizes.allSatisfy({ $0 >= 0 }) else {
                    throw .invalid("sizes do not fit axes \(axes) of \(x.shape)")
                }
                let policy = a.string("keep_aspect_ratio_policy") ?? "stretch"
                if policy == "stretch" {
                    for (j, k) in axes.enumerated() { shape[k] = sizes[j] }
                } else {
                    // One scale for all axes, the smallest (not_larger) or largest (not_smaller), rounded half up.
                    guard policy == "not_larger" || policy == "not_smaller", axes.allSatisfy({ x.shape[$0] > 0 }) else {
                        throw .invalid("keep_aspect_ratio_policy \"\(policy)\" does not fit \(x.shape)")
                    }
                    let ratios = axes.indices.map { Double(sizes[$0]) / Double(x.shape[axes[$0]]) }
                    let scale = policy == "not_larger" ? ratios.min()! : ratios.max()!
                    for k in axes { shape[k] = try size(scale * Double(x.shape[k]) + 0.5) }
                }
            } else {
                let factors: [Double]
                if op == "Upsample", let given = a.floats("scales") {
                    factors = given.map(Double.init)
                } else {
                    guard scalesSlot < inputs.count, let scalesInput = inputs[scalesSlot] else { throw .invalid("needs scales or sizes") }
                    guard let known = scalesInput.scales else { throw .dataDependent("input \(scalesSlot) (scales) is not a constant") }
                    factors = known
                }
                guard factors.count == axes.count, factors.allSatisfy({ $0 > 0 && $0 <= 1_048_576 }) else {
                    throw .invalid("scales \(factors) do not fit axes \(axes) of \(x.shape)")
                }
                // floor(input x scale), over the roi's extent with tf_crop_and_resize.
                var extents = [Double](repeating: 1, count: axes.count)
                if a.string("coordinate_transformation_mode") == "tf_crop_and_resize", inputs.count > 1, let roi = inputs[1]?.scales,
                   roi.count == 2 * axes.count {
                    extents = axes.indices.map { roi[$0 + axes.count] - roi[$0] }
                }
                for (j, k) in axes.enumerated() { shape[k] = try size(Double(x.shape[k]) * extents[j] * factors[j]) }
            }
            let out = try tensor(shape, x.elementType)
            return result([out], flops: 4 * Double(out.elements))
        case "Attention":
            let (shapes, types, flops) = try attention(inputs, a)
            var outputs = [TensorInfo]()
            for (shape, type) in zip(shapes, types) { outputs.append(try tensor(shape, type)) }
            return result(outputs, flops: flops, savedInputs: [0, 1, 2])
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
            let shape = dims.map { Int(clamping: $0) }
            // An integer fill of a small shape is known (ONNX functions build shapes with it).
            var values: [Int64]?
            if let fill = a.tensor("value")?.integerValues(), fill.count == 1, let count = ShapeCheck.elements(shape), count <= 1 << 16 {
                values = Array(repeating: fill[0], count: count)
            }
            return result([try tensor(shape, type, values: values)], flops: 0)
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
        case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1", "ReduceSumSquare",
             "ReduceLogSum", "ReduceLogSumExp":
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

    /// Output spatial size of ConvTranspose: output_shape when given, else
    /// stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - pads (in * stride with SAME_*).
    static func transposedShape(_ input: [Int], kernel: [Int], _ a: Attributes) throws(InferenceFailure) -> [Int] {
        let spatial = input.count - 2
        if let given = a.ints("output_shape") {
            // The spatial dimensions, or all of them.
            let dims = given.count == input.count ? Array(given[2...]) : given
            guard dims.count == spatial, dims.allSatisfy({ $0 >= 0 }) else { throw .invalid("output_shape \(given) does not fit \(input)") }
            return dims
        }
        let strides = a.ints("strides") ?? Array(repeating: 1, count: spatial)
        let dilations = a.ints("dilations") ?? Array(repeating: 1, count: spatial)
        let outputPadding = a.ints("output_padding") ?? Array(repeating: 0, count: spatial)
        var pads = a.ints("pads") ?? Array(repeating: 0, count: 2 * spatial)
        guard (strides + pads + kernel + outputPadding).allSatisfy({ $0.magnitude <= UInt(ShapeCheck.maximumBytes) }),
              dilations.allSatisfy({ $0.magnitude <= 1 << 20 }), strides.allSatisfy({ $0.magnitude <= 1 << 20 }) else {
            throw .invalid("strides, dilations, pads or kernel_shape are absurdly large")
        }
        guard strides.count == spatial, dilations.count == spatial, outputPadding.count == spatial, pads.count == 2 * spatial,
              strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }), kernel.allSatisfy({ $0 >= 1 }), pads.allSatisfy({ $0 >= 0 }) else {
            throw .invalid("strides, dilations, pads, output_padding or kernel_shape do not fit \(spatial) spatial dimensions")
        }
        let autoPad = a.string("auto_pad") ?? "NOTSET"
        var out = [Int]()
        for i in 0..<spatial {
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                out.append(input[i + 2] * strides[i])
                continue
            case "VALID":
                pads[i] = 0
                pads[i + spatial] = 0
            case "NOTSET", "": break
            default: throw .invalid("unknown auto_pad \"\(autoPad)\"")
            }
            let size = strides[i] * (input[i + 2] - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] - pads[i + spatial]
            guard size >= 0 else { throw .invalid("the padding \(pads) is larger than the output of \(input)") }
            out.append(size)
        }
        return out
    }

    /// Attention (opset 23): Q, K, V as [batch, heads, sequence, head size], or as
    /// [batch, sequence, heads x head size] with q_num_heads and kv_num_heads; past_key and
    /// past_value [batch, kv heads, past sequence, head size] are extended by K and V.
    /// Outputs Y (Q's layout, V's head size), present_key, present_value, and the scores
    /// [batch, q heads, q sequence, total sequence].
    static func attention(_ inputs: [TensorInfo?], _ a: Attributes) throws(InferenceFailure) -> (shapes: [[Int]], types: [Int32], flops: Double) {
        guard inputs.count >= 3, let q = inputs[0], let k = inputs[1], let v = inputs[2] else { throw .invalid("needs Q, K and V") }
        guard q.rank == k.rank, k.rank == v.rank, q.rank == 3 || q.rank == 4, q.shape[0] == k.shape[0], k.shape[0] == v.shape[0] else {
            throw .invalid("Q \(q.shape), K \(k.shape) and V \(v.shape) must all be 3- or all 4-dimensional, of one batch")
        }
        let batch = q.shape[0]
        let (qHeads, qSequence, headSize, kvHeads, kvSequence, vHeadSize): (Int, Int, Int, Int, Int, Int)
        if q.rank == 4 {
            (qHeads, qSequence, headSize) = (q.shape[1], q.shape[2], q.shape[3])
            (kvHeads, kvSequence, vHeadSize) = (k.shape[1], k.shape[2], v.shape[3])
            guard k.shape[3] == headSize, v.shape[1] == kvHeads, v.shape[2] == kvSequence else {
                throw .invalid("K \(k.shape) and V \(v.shape) do not fit Q \(q.shape)")
            }
        } else {
            let heads = a.int("q_num_heads") ?? 0, kvHeadsAttribute = a.int("kv_num_heads") ?? 0
            guard heads >= 1, kvHeadsAttribute >= 1, q.shape[2] % heads == 0, k.shape[2] % kvHeadsAttribute == 0,
                  v.shape[2] % kvHeadsAttribute == 0, k.shape[1] == v.shape[1] else {
                throw .invalid("3-dimensional Q \(q.shape), K \(k.shape) and V \(v.shape) need q_num_heads and kv_num_heads that divide them")
            }
            (qHeads, qSequence, headSize) = (heads, q.shape[1], q.shape[2] / heads)
            (kvHeads, kvSequence, vHeadSize) = (kvHeadsAttribute, k.shape[1], v.shape[2] / kvHeadsAttribute)
            guard k.shape[2] / kvHeads == headSize else { throw .invalid("K \(k.shape) does not fit Q \(q.shape)") }
        }
        guard kvHeads >= 1, qHeads % kvHeads == 0 else { throw .invalid("\(qHeads) query heads are not a multiple of \(kvHeads) key heads") }
        var past = 0
        if inputs.count > 4, let pastKey = inputs[4] {
            guard pastKey.rank == 4, pastKey.shape[0] == batch, pastKey.shape[1] == kvHeads, pastKey.shape[3] == headSize else {
                throw .invalid("past_key \(pastKey.shape) does not fit K")
            }
            past = pastKey.shape[2]
        }
        let total = past + kvSequence
        let (width, overflow) = qHeads.multipliedReportingOverflow(by: vHeadSize)
        guard !overflow else { throw .invalid("\(qHeads) heads of \(vHeadSize) overflow") }
        let y = q.rank == 4 ? [batch, qHeads, qSequence, vHeadSize] : [batch, qSequence, width]
        let shapes = [y, [batch, kvHeads, total, headSize], [batch, kvHeads, total, vHeadSize], [batch, qHeads, qSequence, total]]
        // Two products and a softmax over the scores.
        let scores = Double(batch) * Double(qHeads) * Double(qSequence) * Double(total)
        return (shapes, [q.elementType, k.elementType, v.elementType, q.elementType], scores * (2 * Double(headSize) + 2 * Double(vHeadSize) + 5))
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
