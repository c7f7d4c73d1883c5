import Foundation
import Tensors

/// Turns an ONNX graph into a trainable `Model`, node by node.
///
/// Every value is either a tensor the model computes at each step (`runtime`) or one known when the
/// model is read (`folded`): initializers, Constants, and shape arithmetic on them and on the shapes of
/// runtime values. Shapes depend on the batch, which the model leaves open, so the translation
/// follows two batch sizes at once: a folded value that differs between them is batch-dependent.
/// Reshape then gets a target that holds at every batch: the dimensions equal in both become
/// literal, the one that follows the batch becomes -1.
///
/// Float initializers that a computing op reads become parameters, initialised from the file;
/// BatchNormalization's mean and variance become running statistics. Integer initializers and
/// Constants stay constants.
struct ONNXTranslator {
    /// Two batch sizes, unlikely to coincide with a model's own dimensions.
    static let batches = [3, 7]

    enum Value {
        /// A model node's output, with its shape at each of the two batch sizes.
        case runtime(ValueRef, shapes: [[Int]])
        /// Known contents at each of the two batch sizes (equal unless batch-dependent).
        case folded([FoldedTensor])
    }

    let graph: Onnx_GraphProto
    let builder: GraphBuilder
    var values: [String: Value] = [:]
    var initializers: [String: Onnx_TensorProto] = [:]
    /// Where the bytes of the large float initializers are, left out of `initializers`.
    let stored: [String: StoredBytes]
    /// Parameters made so far, by initializer name.
    var parameters: [String: ValueRef] = [:]
    var constants: [String: ValueRef] = [:]
    var nodeNames: Set<String> = []
    /// The model's fed input: batch-sized fills read the batch's size from it.
    var dataInput: ValueRef?
    /// Computed values that hold whole numbers (integer ids fed from data, and what Cast keeps integer):
    /// casting them to another integer or float type changes no element.
    var integerValued: Set<String> = []
    /// The version of the standard ONNX operator set the model imports: some ops' rules changed.
    let opset: Int

    init(graph: Onnx_GraphProto, opset: Int = 13, stored: [String: StoredBytes] = [:], builder: GraphBuilder) {
        self.graph = graph
        self.opset = opset
        self.stored = stored
        self.builder = builder
        for tensor in graph.initializer { initializers[tensor.name] = tensor }
    }

    // MARK: values

    func shapes(_ name: String, _ node: String) throws(ONNXTrainingError) -> [[Int]] {
        switch values[name] {
        case .runtime(_, let shapes): return shapes
        case .folded(let tensors): return tensors.map(\.shape)
        case nil:
            if let initializer = initializers[name] { return Array(repeating: initializer.dims.map { Int(clamping: $0) }, count: 2) }
            throw ONNXTrainingError("\(node) reads \"\(name)\", which no node makes")
        }
    }

    /// Whether `name` is a float initializer of more than one value: a trainable parameter. Exporters
    /// write folded scalars (a scale, an epsilon, 1/sqrt(2)) as initializers too; those stay constants.
    func isParameter(_ name: String) -> Bool {
        guard let initializer = initializers[name], initializer.dataType == 1 || initializer.dataType == 11 else { return false }
        return initializer.dims.reduce(1, { $0 * Int(clamping: $1) }) != 1
    }

    /// A known value, or nil when it is computed at each step (a parameter is too: folding it into a
    /// constant would freeze it).
    mutating func folded(_ name: String) throws(ONNXTrainingError) -> [FoldedTensor]? {
        if name.isEmpty || isParameter(name) { return nil }
        switch values[name] {
        case .folded(let tensors): return tensors
        case .runtime: return nil
        case nil:
            guard let initializer = initializers[name] else { return nil }
            let tensor = try initializer.folded()
            values[name] = .folded([tensor, tensor])
            return [tensor, tensor]
        }
    }

    /// The model node that gives `name` at each step: a parameter for a float initializer, a constant
    /// node for other known values.
    mutating func runtime(_ name: String, _ node: String, role: ParameterRole = .trainable) throws(ONNXTrainingError) -> (ValueRef, [[Int]]) {
        if case .runtime(let ref, let shapes) = values[name] { return (ref, shapes) }
        if isParameter(name), let initializer = initializers[name] {
            if let ref = parameters[name] { return (ref, try shapes(name, node)) }
            let shape = initializer.dims.map { Int(clamping: $0) }
            guard ShapeCheck.elements(shape) != nil else { throw ONNXTrainingError("initializer \"\(name)\" has an impossible shape \(shape)") }
            let initialValues: Initializer
            if let bytes = stored[name] {
                let count = shape.reduce(1, *)
                guard bytes.length == count * (initializer.dataType == 11 ? 8 : 4) else {
                    throw ONNXTrainingError("initializer \"\(name)\" has \(bytes.length) bytes of data, not the \(count) values of its shape \(shape)")
                }
                // Read by the rank that holds the parameter, when it builds its part of the model. The
                // file was there, with these bytes, when the model was read.
                initialValues = .values {
                    do throws(ONNXTrainingError) {
                        var tensor = initializer
                        tensor.rawData = try bytes.read()
                        return tensor.floatValues() ?? []
                    } catch {
                        preconditionFailure("the weights of \(name) can no longer be read: \(error)")
                    }
                }
            } else {
                guard initializer.holdsItsFloats else {
                    throw ONNXTrainingError("initializer \"\(name)\" does not hold the \(shape.reduce(1, *)) values of its shape \(shape)")
                }
                initialValues = .values { initializer.floatValues() ?? [] }
            }
            let ref = builder.parameter(name, shape: shape, initialValues, role: role)
            parameters[name] = ref
            return (ref, [shape, shape])
        }
        guard let tensors = try folded(name) else { throw ONNXTrainingError("\(node) reads \"\(name)\", which no node makes") }
        guard tensors[0] == tensors[1] else {
            // One value filling a shape that has the batch's size in one dimension: made at each step.
            let (a, b) = (tensors[0], tensors[1])
            let differing = a.shape.indices.filter { $0 < b.shape.count && a.shape[$0] != b.shape[$0] }
            if a.shape.count == b.shape.count, differing.count == 1, let k = differing.first,
               a.shape[k] == Self.batches[0], b.shape[k] == Self.batches[1], let fill = a.values.first,
               (a.values + b.values).allSatisfy({ $0 == fill }), let data = dataInput {
                var template = a.shape
                template[k] = -1
                let ref = builder.apply(BatchSizedFill(value: Float(fill), shape: template), [data], name: "fill/" + name)[0]
                values[name] = .runtime(ref, shapes: [a.shape, b.shape])
                return (ref, [a.shape, b.shape])
            }
            throw ONNXTrainingError("\(node) reads \"\(name)\", a value computed from the batch size; only shapes and fills may depend on the batch")
        }
        if let ref = constants[name] { return (ref, [tensors[0].shape, tensors[0].shape]) }
        let ref = builder.constant(Tensor(shape: tensors[0].shape, data: tensors[0].floats), name: "const/" + name)
        constants[name] = ref
        return (ref, [tensors[0].shape, tensors[0].shape])
    }

    // MARK: nodes

    mutating func name(of node: Onnx_NodeProto, index: Int) -> String {
        var name = node.name.isEmpty ? "\(node.opType)_\(index)" : node.name
        while nodeNames.contains(name) { name += "_" }
        nodeNames.insert(name)
        return name
    }

    /// Adds `op` reading `inputs`, checks its shapes at both batch sizes, and names its outputs.
    mutating func apply(_ op: any Tensors.Operation, _ inputs: [(ValueRef, [[Int]])], outputs: [String], node: String) throws(ONNXTrainingError) {
        var shapes: [[[Int]]] = []
        for variant in 0..<2 {
            do { shapes.append(try op.outputShapes(inputs.map { $0.1[variant] })) } catch {
                throw ONNXTrainingError("\(node): \(error.description)")
            }
        }
        let refs = builder.apply(op, inputs.map(\.0), name: node)
        for (port, output) in outputs.enumerated() where !output.isEmpty {
            values[output] = .runtime(refs[port], shapes: [shapes[0][port], shapes[1][port]])
        }
    }

    mutating func translate(_ node: Onnx_NodeProto, index: Int) throws(ONNXTrainingError) {
        let label = name(of: node, index: index)
        let where_ = "node \"\(label)\" (\(node.opType))"
        let a = Attributes(node)
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ONNXTrainingError("\(where_) is in domain \"\(node.domain)\"; only the standard ONNX ops are trained")
        }
        // Identity of a parameter is the parameter (exporters share a weight between nodes this way).
        if node.opType == "Identity", let source = node.input.first, isParameter(source) || values[source].map({ if case .runtime = $0 { true } else { false } }) == true {
            let (ref, shapes) = try runtime(source, where_)
            values[node.output[0]] = .runtime(ref, shapes: shapes)
            return
        }
        if node.opType == "Constant" {
            values[node.output[0]] = .folded(Array(repeating: try Self.constant(a, where_), count: 2))
            return
        }
        // Shape arithmetic on known values is folded, as is Shape of any value.
        let inputTensors = try node.input.map { (name: String) throws(ONNXTrainingError) -> [FoldedTensor]? in try folded(name) }
        let allKnown = zip(node.input, inputTensors).allSatisfy { $0.0.isEmpty || $0.1 != nil }
        if node.opType == "Shape" {
            let shapes = try shapes(node.input[0], where_)
            let results = try shapes.map { (shape: [Int]) throws(ONNXTrainingError) -> FoldedTensor in
                let rank = shape.count
                func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
                let (start, end) = (clamp(a.int("start", default: 0)), clamp(a.int("end", default: rank)))
                return FoldedTensor(integers: Array(shape[start..<max(start, end)]))
            }
            values[node.output[0]] = .folded(results)
            return
        }
        if allKnown, ShapeArithmetic.ops.contains(node.opType), !node.input.isEmpty {
            var results: [FoldedTensor] = []
            for variant in 0..<2 {
                results.append(try ShapeArithmetic.evaluate(node.opType, inputs: inputTensors.map { $0?[variant] }, attributes: a, node: where_))
            }
            values[node.output[0]] = .folded(results)
            return
        }
        try translateComputation(node, a, label: label, where_: where_)
    }

    static func constant(_ a: Attributes, _ node: String) throws(ONNXTrainingError) -> FoldedTensor {
        if let t = a.tensor("value") { return try t.folded() }
        if let f = a.float("value_float") { return FoldedTensor(shape: [], values: [Double(f)], isInteger: false) }
        if let fs = a.floats("value_floats") { return FoldedTensor(shape: [fs.count], values: fs.map(Double.init), isInteger: false) }
        if let i = a.int("value_int") { return FoldedTensor(shape: [], values: [Double(i)], isInteger: true) }
        if let ints = a.ints("value_ints") { return FoldedTensor(integers: ints) }
        throw ONNXTrainingError("\(node) has no value, value_float(s) or value_int(s) attribute this reader knows")
    }

    /// The ops that compute at each step.
    mutating func translateComputation(_ node: Onnx_NodeProto, _ a: Attributes, label: String, where_: String) throws(ONNXTrainingError) {
        func input(_ i: Int, role: ParameterRole = .trainable) throws(ONNXTrainingError) -> (ValueRef, [[Int]]) {
            guard i < node.input.count, !node.input[i].isEmpty else { throw ONNXTrainingError("\(where_) needs input \(i)") }
            return try runtime(node.input[i], where_, role: role)
        }
        func present(_ i: Int) -> Bool { i < node.input.count && !node.input[i].isEmpty }
        func knownIntegers(_ i: Int) throws(ONNXTrainingError) -> [Int] {
            guard present(i), let tensors = try folded(node.input[i]), tensors[0] == tensors[1] else {
                throw ONNXTrainingError("\(where_): input \(i) must be known when the model is read")
            }
            return tensors[0].integers
        }
        func refuse(_ what: String) -> ONNXTrainingError { ONNXTrainingError("\(where_): \(what) is not supported yet") }
        let outputs = node.output
        switch node.opType {
        case "Identity":
            let x = try input(0)
            values[outputs[0]] = .runtime(x.0, shapes: x.1)
        case "Cast":
            // Every computed tensor is float here. A cast to a float type keeps the values; a cast of
            // whole numbers to an integer type does too (an exporter's Cast of token ids to int64).
            let x = try input(0)
            let to = a.int("to", default: 0)
            let integerTypes = [2, 3, 4, 5, 6, 7, 12, 13]  // uint8, int8, uint16, int16, int32, int64, uint32, uint64
            guard [1, 10, 11, 16].contains(to) || (integerTypes.contains(to) && integerValued.contains(node.input[0])) else {
                throw refuse("a cast of computed floats to ONNX type \(to)")
            }
            values[outputs[0]] = .runtime(x.0, shapes: x.1)
            if integerTypes.contains(to) || integerValued.contains(node.input[0]) { integerValued.insert(outputs[0]) }
        case "Relu":
            try apply(ReLU(), [try input(0)], outputs: outputs, node: label)
        case "Sigmoid":
            try apply(Sigmoid(), [try input(0)], outputs: outputs, node: label)
        case "Tanh":
            try apply(Tanh(), [try input(0)], outputs: outputs, node: label)
        case "Add", "Sub", "Mul", "Div":
            let op = BroadcastArithmetic.Operator(rawValue: node.opType.lowercased())!
            try apply(BroadcastArithmetic(op), [try input(0), try input(1)], outputs: [outputs[0]], node: label)
        case "Gemm":
            let op = Gemm(transposeA: a.int("transA", default: 0) != 0, transposeB: a.int("transB", default: 0) != 0,
                          alpha: a.float("alpha") ?? 1, beta: a.float("beta") ?? 1, hasBias: present(2))
            try apply(op, present(2) ? [try input(0), try input(1), try input(2)] : [try input(0), try input(1)], outputs: outputs, node: label)
        case "MatMul":
            try apply(BatchedMatMul(), [try input(0), try input(1)], outputs: outputs, node: label)
        case "Flatten":
            let x = try input(0)
            let axis = a.int("axis", default: 1)
            let rank = x.1[0].count
            let normalized = axis < 0 ? axis + rank : axis
            guard normalized >= 0, normalized <= rank else { throw ONNXTrainingError("\(where_): axis \(axis) outside rank \(rank)") }
            // The inner size never depends on the batch when the axis is past it.
            let target = normalized == 0 ? [1, -1] : [-1, x.1[0].dropFirst(normalized).reduce(1, *)]
            try apply(Reshape(target), [x], outputs: [outputs[0]], node: label)
        case "Reshape":
            let x = try input(0)
            guard present(1), let targets = try folded(node.input[1]) else {
                throw ONNXTrainingError("\(where_): the target shape must be computable when the model is read")
            }
            try apply(Reshape(try Self.batchFreeTarget(input: x.1, targets: targets.map(\.integers), where_)), [x], outputs: [outputs[0]], node: label)
        case "Conv":
            let (x, w) = (try input(0), try input(1))
            let kernel = w.1[0].dropFirst(2)
            guard x.1[0].count == 4, kernel.count == 2 else { throw refuse("a convolution that is not 2-D") }
            guard a.int("group", default: 1) == 1 else { throw refuse("grouped convolution (group \(a.int("group", default: 1)))") }
            guard (a.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else { throw refuse("dilated convolution") }
            let strides = a.ints("strides") ?? [1, 1]
            guard Set(strides).count == 1 else { throw refuse("unequal strides \(strides)") }
            let padding = try Self.symmetricPadding(a, kernel: Array(kernel), where_)
            // The bias is a node of its own (as the zoo builds convolutions), read from a value only it sees.
            let convolved = present(2) ? outputs[0] + "#without-bias" : outputs[0]
            try apply(Conv2D(stride: strides[0], padding: padding), [x, w], outputs: [convolved], node: present(2) ? label + "/conv" : label)
            if present(2) {
                try apply(BiasAdd(), [try runtime(convolved, where_), try input(2)], outputs: [outputs[0]], node: label)
            }
        case "MaxPool", "AveragePool":
            let x = try input(0)
            guard x.1[0].count == 4 else { throw refuse("pooling that is not 2-D") }
            guard outputs.count == 1 || outputs[1].isEmpty else { throw refuse("MaxPool's indices output") }
            let kernel = a.ints("kernel_shape") ?? []
            guard kernel.count == 2, kernel[0] == kernel[1] else { throw refuse("a pooling window that is not square (\(kernel))") }
            guard a.int("ceil_mode", default: 0) == 0 else { throw refuse("ceil_mode 1") }
            guard (a.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else { throw refuse("dilated pooling") }
            let strides = a.ints("strides") ?? [1, 1]
            guard Set(strides).count == 1 else { throw refuse("unequal strides \(strides)") }
            let padding = try Self.symmetricPadding(a, kernel: kernel, where_)
            if node.opType == "MaxPool" {
                try apply(MaxPool2D(kernel: kernel[0], stride: strides[0], padding: padding), [x], outputs: [outputs[0]], node: label)
            } else {
                guard padding == 0 || a.int("count_include_pad", default: 0) == 1 else {
                    throw refuse("padded average pooling that leaves the padding out of the count (count_include_pad 0)")
                }
                try apply(AvgPool2D(kernel: kernel[0], stride: strides[0], padding: padding), [x], outputs: [outputs[0]], node: label)
            }
        case "GlobalAveragePool":
            let x = try input(0)
            guard x.1[0].count == 4, x.1[0][2] == x.1[0][3] else { throw refuse("global pooling of non-square planes \(x.1[0])") }
            try apply(AvgPool2D(kernel: x.1[0][2]), [x], outputs: [outputs[0]], node: label)
        case "BatchNormalization":
            let momentum = a.float("momentum") ?? 0.9
            let x = try input(0)
            let inputs = [x, try input(1), try input(2), try input(3, role: .runningAverage(momentum: momentum)),
                          try input(4, role: .runningAverage(momentum: momentum))]
            for i in [3, 4] where initializers[node.input[i]] == nil {
                throw ONNXTrainingError("\(where_): the running \(i == 3 ? "mean" : "variance") must be an initializer")
            }
            try apply(BatchNormalization(epsilon: a.float("epsilon") ?? 1e-5), inputs, outputs: [outputs[0]], node: label)
            guard case .runtime(let y, _) = values[outputs[0]] else { return }
            builder.track(node.input[3], with: ValueRef(node: y.node, port: 1))
            builder.track(node.input[4], with: ValueRef(node: y.node, port: 2))
            // Exported in training mode, the node also outputs the updated statistics: they are the
            // parameters themselves, which nothing downstream computes with.
            for output in outputs.dropFirst() where !output.isEmpty {
                if Self.isRead(output, in: graph) { throw refuse("reading BatchNormalization's running-statistic outputs") }
            }
        case "Dropout":
            var rate = a.float("ratio") ?? 0.5
            if present(1) {
                guard let ratio = try folded(node.input[1]) else { throw ONNXTrainingError("\(where_): the ratio must be known when the model is read") }
                rate = ratio[0].floats.first ?? 0.5
            }
            if outputs.count > 1, !outputs[1].isEmpty, Self.isRead(outputs[1], in: graph) { throw refuse("reading Dropout's mask") }
            try apply(Dropout(rate: rate), [try input(0)], outputs: [outputs[0]], node: label)
        case "Transpose":
            let x = try input(0)
            let rank = x.1[0].count
            try apply(Transpose(a.ints("perm") ?? Array((0..<rank).reversed())), [x], outputs: outputs, node: label)
        case "Softmax":
            let x = try input(0)
            let rank = x.1[0].count
            guard opset < 13 else {
                try apply(Softmax(axis: a.int("axis", default: -1)), [x], outputs: outputs, node: label)
                return
            }
            // Before opset 13 the input is seen as a matrix: the dimensions before `axis` (default 1) are
            // its rows, the rest one row of scores. Along the last axis that is the same thing.
            let given = a.int("axis", default: 1)
            let axis = given < 0 ? given + rank : given
            guard (0...rank).contains(axis) else { throw ONNXTrainingError("\(where_): axis \(given) outside rank \(rank)") }
            guard axis < rank - 1 else {
                try apply(Softmax(axis: -1), [x], outputs: outputs, node: label)
                return
            }
            let rows = outputs[0] + "#rows", scores = outputs[0] + "#scores"
            let width = x.1[0].dropFirst(axis).reduce(1, *)
            guard x.1[1].dropFirst(axis).reduce(1, *) == width else { throw refuse("a softmax whose rows' width depends on the batch") }
            try apply(Reshape([-1, width]), [x], outputs: [rows], node: label + "/rows")
            try apply(Softmax(axis: -1), [try runtime(rows, where_)], outputs: [scores], node: label)
            try apply(Reshape(try Self.batchFreeTarget(input: try shapes(scores, where_), targets: x.1, where_)),
                      [try runtime(scores, where_)], outputs: [outputs[0]], node: label + "/shape")
        case "LayerNormalization":
            for output in outputs.dropFirst() where !output.isEmpty && Self.isRead(output, in: graph) {
                throw refuse("reading LayerNormalization's mean or inverse deviation")
            }
            let op = LayerNormalization(axis: a.int("axis", default: -1), epsilon: a.float("epsilon") ?? 1e-5, hasBias: present(2))
            try apply(op, present(2) ? [try input(0), try input(1), try input(2)] : [try input(0), try input(1)],
                      outputs: [outputs[0]], node: label)
        case "Gelu":
            try apply(GELU(tanhApproximation: a.string("approximate") == "tanh"), [try input(0)], outputs: outputs, node: label)
        case "Erf":
            try apply(Erf(), [try input(0)], outputs: outputs, node: label)
        case "ReduceMean":
            let axes = present(1) ? try knownIntegers(1) : (a.ints("axes") ?? [])
            guard !(axes.isEmpty && a.int("noop_with_empty_axes", default: 0) == 1) else {
                values[outputs[0]] = .runtime(try input(0).0, shapes: try input(0).1)
                return
            }
            try apply(ReduceMean(axes: axes, keepDimensions: a.int("keepdims", default: 1) != 0), [try input(0)],
                      outputs: [outputs[0]], node: label)
        case "Squeeze", "Unsqueeze":
            // Only the shape changes: a reshape to the shape ONNX gives, with the batch's dimension free.
            let x = try input(0)
            let given = present(1) ? try knownIntegers(1) : a.ints("axes")
            var shapes: [[Int]] = []
            for shape in x.1 { shapes.append(try ShapeArithmetic.reshaped(node.opType, shape: shape, axes: given, node: where_)) }
            try apply(Reshape(try Self.batchFreeTarget(input: x.1, targets: shapes, where_)), [x], outputs: [outputs[0]], node: label)
        case "GRU", "LSTM":
            let lstm = node.opType == "LSTM"
            guard !a.has("activations") else { throw refuse("activations other than the defaults") }
            guard !a.has("clip") else { throw refuse("clip") }
            guard a.int("input_forget", default: 0) == 0 else { throw refuse("input_forget 1") }
            let direction = a.string("direction") ?? "forward"
            guard ["forward", "reverse", "bidirectional"].contains(direction) else { throw refuse("direction \(direction)") }
            typealias Slot = RecurrentLayer.Optional
            // ONNX's input positions of the optional inputs.
            let positions: [(Slot, Int)] = [(.bias, 3), (.sequenceLengths, 4), (.initialH, 5)] + (lstm ? [(.initialC, 6), (.peepholes, 7)] : [])
            let present = Set(positions.filter { present($0.1) }.map(\.0))
            let hidden = a.int("hidden_size", default: 0)
            guard hidden > 0 else { throw ONNXTrainingError("\(where_): hidden_size is missing") }
            let op = RecurrentLayer(cell: lstm ? .lstm : .gru(linearBeforeReset: a.int("linear_before_reset", default: 0) != 0),
                                    hidden: hidden, directions: direction == "bidirectional" ? 2 : 1, reverse: direction == "reverse",
                                    batchFirst: a.int("layout", default: 0) == 1, present: present)
            var operands = [try input(0), try input(1), try input(2)]
            for (slot, index) in positions where present.contains(slot) { operands.append(try input(index)) }
            let named = (0..<(lstm ? 3 : 2)).map { $0 < outputs.count ? outputs[$0] : "" }
            try apply(op, operands, outputs: named + [""], node: label)
        case "Gather" where !isParameter(node.input[0]):
            // Fixed indices along an axis of a computed tensor (q, k and v out of one packed projection).
            guard present(1), let indices = try folded(node.input[1]), indices[0] == indices[1] else {
                throw refuse("Gather from a computed tensor at indices computed at each step")
            }
            try apply(Select(axis: a.int("axis", default: 0), indices: indices[0].integers, indicesShape: indices[0].shape),
                      [try input(0)], outputs: [outputs[0]], node: label)
        case "Concat":
            // Computed tensors (and constants) joined along an axis, counted from the end when negative.
            let parts = try node.input.filter { !$0.isEmpty }.map { (name: String) throws(ONNXTrainingError) -> (ValueRef, [[Int]]) in try runtime(name, where_) }
            guard let rank = parts.first?.1[0].count else { throw ONNXTrainingError("\(where_): Concat of nothing") }
            let axis = a.int("axis", default: 0)
            let resolved = axis < 0 ? axis + rank : axis
            guard (0..<rank).contains(resolved) else { throw ONNXTrainingError("\(where_): axis \(axis) outside rank \(rank)") }
            try apply(Concat(axis: resolved, inputCount: parts.count), parts, outputs: [outputs[0]], node: label)
        case "Slice":
            // Opset 10 and later take the bounds as inputs; earlier opsets as attributes.
            let starts = present(1) ? try knownIntegers(1) : (a.ints("starts") ?? [])
            let ends = present(2) ? try knownIntegers(2) : (a.ints("ends") ?? [])
            let axes = present(3) ? try knownIntegers(3) : (a.ints("axes") ?? Array(0..<starts.count))
            let steps = present(4) ? try knownIntegers(4) : Array(repeating: 1, count: starts.count)
            try apply(StridedSlice(starts: starts, ends: ends, axes: axes, steps: steps), [try input(0)], outputs: [outputs[0]], node: label)
        case "Gather":
            // An embedding: rows of a float table picked by the ids computed at each step.
            guard a.int("axis", default: 0) == 0 else { throw refuse("Gather along axis \(a.int("axis", default: 0)) of a computed tensor") }
            let (table, ids) = (try input(0), try input(1))
            guard table.1[0].count == 2 else { throw refuse("Gather from a tensor of rank \(table.1[0].count)") }
            try apply(Embedding(vocabulary: table.1[0][0]), [ids, table], outputs: outputs, node: label)
        default:
            let known = ["Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant", "Conv", "Div", "Dropout", "Erf", "Flatten", "Gather",
                         "Gelu", "Gemm", "GlobalAveragePool", "GRU", "LSTM", "Identity", "LayerNormalization", "MatMul", "MaxPool", "Mul",
                         "ReduceMean", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub", "Tanh", "Transpose",
                         "Unsqueeze"]
            throw ONNXTrainingError("\(where_): \(node.opType) cannot be trained yet (trained ops: \(known.joined(separator: ", ")), and shape arithmetic on known values)")
        }
    }

    /// Whether any node or graph output reads `name`.
    static func isRead(_ name: String, in graph: Onnx_GraphProto) -> Bool {
        graph.node.contains { $0.input.contains(name) } || graph.output.contains { $0.name == name }
    }

    /// The same padding on every side (auto_pad SAME_* resolved for stride 1 and odd kernels).
    static func symmetricPadding(_ a: Attributes, kernel: [Int], _ node: String) throws(ONNXTrainingError) -> Int {
        let autoPad = a.string("auto_pad") ?? "NOTSET"
        switch autoPad {
        case "NOTSET", "":
            let pads = a.ints("pads") ?? [0, 0, 0, 0]
            guard Set(pads).count <= 1 else { throw ONNXTrainingError("\(node): unequal padding \(pads) is not supported yet") }
            return pads.first ?? 0
        case "VALID":
            return 0
        default:
            guard kernel.allSatisfy({ $0 % 2 == 1 }), Set(kernel).count == 1, (a.ints("strides") ?? [1, 1]).allSatisfy({ $0 == 1 }) else {
                throw ONNXTrainingError("\(node): auto_pad \(autoPad) with kernel \(kernel) is not supported yet")
            }
            return kernel[0] / 2
        }
    }

    /// A Reshape target that holds at every batch size, from the targets computed at the two batch
    /// sizes: the output dimensions equal at both are literal, the one that differs is -1.
    static func batchFreeTarget(input: [[Int]], targets: [[Int]], _ node: String) throws(ONNXTrainingError) -> [Int] {
        var outputs: [[Int]] = []
        for variant in 0..<2 {
            do { outputs.append(try Reshape(targets[variant]).outputShapes([input[variant]])[0]) } catch {
                throw ONNXTrainingError("\(node): \(error.description)")
            }
        }
        guard outputs[0].count == outputs[1].count else { throw ONNXTrainingError("\(node): the target's rank depends on the batch size") }
        let differing = outputs[0].indices.filter { outputs[0][$0] != outputs[1][$0] }
        guard differing.count <= 1 else {
            throw ONNXTrainingError("\(node): the target \(targets[0]) has \(differing.count) dimensions that follow the batch size; one is supported")
        }
        var target = outputs[0]
        if let free = differing.first { target[free] = -1 }
        return target
    }
}
