// The cost of the ONNX route: lenet, a ResNet-style CNN and a transformer encoder read from ONNX
// (Benchmarks/onnx_route_models.py writes them), each timed beside its native twin in the same
// process, steps interleaved. Lenet's twin is the zoo's own; the other two are built here with
// GraphBuilder, the way the zoo builds its models.
//
// The twins start from the ONNX file's initializers, and the first training steps' losses of both
// routes are compared before any timing: the twin is the same network, not a look-alike.
//
//   fedbaechi-onnx-twins MODELS_DIR [steps] [batch]
//
// Benchmarks/onnx-route.sh runs it; not part of the test command.
import Foundation
import Basics
import ONNXImport
import Tensors

/// A network twice: read from ONNX, and built natively.
struct Twins {
    let name: String
    let onnx: Model
    let native: Model
    /// The same batch under each model's input names.
    let feeds: [[String: Tensor]]
}

/// The native twin of resnet.onnx: Conv2D without bias, BatchNormalization, ReLU, residual adds, a
/// global average pool and a linear classifier, named as the ONNX file names its initializers.
func nativeResNet(seed: UInt64, task: SupervisedTask) -> Model {
    let b = GraphBuilder(name: "resnet-native", seed: seed)
    func convBN(_ x: ValueRef, _ name: String, _ inputs: Int, _ outputs: Int, _ kernel: Int, stride: Int = 1, relu: Bool = true) -> ValueRef {
        let w = b.parameter(name + ".weight", shape: [outputs, inputs, kernel, kernel], .heUniform(fanIn: inputs * kernel * kernel))
        let convolved = b(Conv2D(stride: stride, padding: kernel / 2), x, w, name: name)
        let statistic = ParameterRole.runningAverage(momentum: 0.9)
        let y = b.apply(BatchNormalization(epsilon: 1e-5), [
            convolved, b.parameter(name + ".bn.weight", shape: [outputs], .zeros), b.parameter(name + ".bn.bias", shape: [outputs], .zeros),
            b.parameter(name + ".bn.running_mean", shape: [outputs], .zeros, role: statistic),
            b.parameter(name + ".bn.running_var", shape: [outputs], .zeros, role: statistic),
        ], name: name + "_bn")
        b.track(name + ".bn.running_mean", with: y[1])
        b.track(name + ".bn.running_var", with: y[2])
        return relu ? b(ReLU(), y[0], name: name + "_relu") : y[0]
    }
    func add(_ x: ValueRef, _ y: ValueRef, _ name: String) -> ValueRef {
        b(ReLU(), b(BroadcastArithmetic(.add), x, y, name: name + "_add"), name: name + "_out")
    }
    let images = b.input(task.input)
    var x = convBN(images, "stem", 1, 16, 3)
    x = add(convBN(convBN(x, "b1c1", 16, 16, 3), "b1c2", 16, 16, 3, relu: false), x, "b1")
    x = add(convBN(convBN(x, "b2c1", 16, 32, 3, stride: 2), "b2c2", 32, 32, 3, relu: false),
            convBN(x, "b2proj", 16, 32, 1, stride: 2, relu: false), "b2")
    let pooled = b(Reshape.flatten(), b(AvgPool2D(kernel: 14), x, name: "gap"), name: "flat")
    let logits = b.linear(pooled, 32, 10, name: "fc")
    let loss = b(SoftmaxCrossEntropy(), logits, b.input(task.target), name: "loss")
    return b.build(task: .supervised(task), loss: loss, prediction: logits)
}

/// The native twin of transformer.onnx: one embedding lookup, positions added from their table, rows
/// of [batch·tokens, width] through linear layers, attention as batched products, fused GELU.
func nativeTransformer(seed: UInt64, task: SupervisedTask, vocabulary: Int = 1000, steps: Int = 32, width: Int = 64,
                       heads: Int = 4, hidden: Int = 128, layers: Int = 2) -> Model {
    let b = GraphBuilder(name: "transformer-native", seed: seed)
    let head = width / heads
    let tokens = b.input(task.input)
    let table = b.parameter("tok.weight", shape: [vocabulary, width], .uniform(0.1))
    let positions = b.parameter("pos.weight", shape: [steps, width], .uniform(0.1))
    let embedded = b(BroadcastArithmetic(.add), b(Embedding(vocabulary: vocabulary), tokens, table, name: "tok"), positions, name: "embedded")
    var x = b(Reshape([-1, width]), embedded, name: "rows")
    let scale = b.constant(Tensor(scalar: 1 / Float(head).squareRoot()), name: "scale")
    for layer in 0..<layers {
        let p = "l\(layer)"
        func project(_ part: String, permutation: [Int]) -> ValueRef {
            let split = b(Reshape([-1, steps, heads, head]), b.linear(x, width, width, name: "\(p).\(part)"), name: "\(p)_\(part)_split")
            return b(Transpose(permutation), split, name: "\(p)_\(part)_heads")
        }
        let (q, kT, v) = (project("q", permutation: [0, 2, 1, 3]), project("k", permutation: [0, 2, 3, 1]), project("v", permutation: [0, 2, 1, 3]))
        let scores = b(BroadcastArithmetic(.mul), b(BatchedMatMul(), q, kT, name: "\(p)_scores"), scale, name: "\(p)_scaled")
        let context = b(BatchedMatMul(), b(Softmax(axis: -1), scores, name: "\(p)_attn"), v, name: "\(p)_context")
        let merged = b(Reshape([-1, width]), b(Transpose([0, 2, 1, 3]), context, name: "\(p)_context_t"), name: "\(p)_merged")
        func normalized(_ y: ValueRef, _ name: String) -> ValueRef {
            b(LayerNormalization(axis: -1, epsilon: 1e-5), b(BroadcastArithmetic(.add), x, y, name: "\(p)_res_\(name)"),
              b.parameter("\(p).\(name).weight", shape: [width], .zeros), b.parameter("\(p).\(name).bias", shape: [width], .zeros),
              name: "\(p)_\(name)")
        }
        x = normalized(b.linear(merged, width, width, name: "\(p).o"), "ln1")
        let gelu = b(GELU(), b.linear(x, width, hidden, name: "\(p).ff1"), name: "\(p)_gelu")
        x = normalized(b.linear(gelu, hidden, width, name: "\(p).ff2"), "ln2")
    }
    let pooled = b(ReduceMean(axes: [1], keepDimensions: false), b(Reshape([-1, steps, width]), x, name: "sequences"), name: "pooled")
    let logits = b.linear(pooled, width, 10, name: "head")
    let loss = b(SoftmaxCrossEntropy(), logits, b.input(task.target), name: "loss")
    return b.build(task: .supervised(task), loss: loss, prediction: logits)
}

/// Gives the twin the ONNX model's initial values. Gemm's weights are stored [out, in] (transB); the
/// native linear layer's are [in, out].
func copyParameters(from onnx: Model, to native: Model) throws {
    for name in native.parameters.declaredNames {
        guard let values = onnx.parameters.values(of: name), let target = native.parameters.declaration(name) else {
            throw Failure("the ONNX model has no initializer \(name)")
        }
        if let source = onnx.parameters.declaration(name)?.shape, source.count == 2, source != target.shape {
            let (rows, columns) = (source[0], source[1])
            try native.parameters.set(name, (0..<values.count).map { i in values[(i % rows) * columns + i / rows] })
        } else {
            try native.parameters.set(name, values)
        }
    }
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func read(_ path: String) throws -> ONNXTrainableModel {
    try ONNXTrainableModel.read(path: path)
}

func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: fedbaechi-onnx-twins MODELS_DIR [steps] [batch]\n".utf8))
    exit(2)
}
let directory = arguments[1]
let steps = arguments.count > 2 ? Int(arguments[2]) ?? 40 : 40
let batch = arguments.count > 3 ? Int(arguments[3]) ?? 32 : 32
let seed: UInt64 = 1

do {
    var random = SplitMix64(seed: seed, stream: "twins")
    var twins: [Twins] = []
    for file in ["lenet.onnx", "resnet.onnx", "transformer.onnx"] {
        let recipe = try read(directory + "/" + file)
        let onnx = recipe.build(seed: seed)
        let isTokens = recipe.inputIsInteger
        let native = switch recipe.name {
        case "lenet": ModelSpec(kind: .lenet).build(seed: seed)
        case "resnet": nativeResNet(seed: seed, task: recipe.task)
        default: nativeTransformer(seed: seed, task: recipe.task)
        }
        try copyParameters(from: onnx, to: native)
        let input = Tensor(shape: [batch] + recipe.task.inputShape) { out in
            for i in 0..<out.count { out[i] = isTokens ? Float(random.nextIndex(below: 1000)) : 2 * random.nextUnitFloat() - 1 }
        }
        let labels = Tensor(shape: [batch], data: (0..<batch).map { _ in Float(random.nextIndex(below: 10)) })
        twins.append(Twins(name: recipe.name, onnx: onnx, native: native,
                           feeds: [[recipe.task.input: input, recipe.task.target: labels], [recipe.task.input: input, native.targetFeed: labels]]))
    }
    print("| network, batch \(batch), one thread | ONNX route | native twin | ONNX / native (median of per-step ratios) | first 3 losses, ONNX vs native |")
    print("|---|---:|---:|---:|---|")
    for twin in twins {
        // The same network: three Adam steps from the same weights give the same losses.
        let check = [twin.onnx, twin.native].map { TrainingGraph(model: $0, optimizer: Adam(), seed: seed) }
        let losses = zip(check, twin.feeds).map { graph, feeds in (0..<3).map { graph.step(feeds, step: UInt64($0)) } }
        let worst = zip(losses[0], losses[1]).map { abs($0 - $1) / max(abs($0), 1e-6) }.max() ?? 0
        guard worst < 1e-4 else {
            throw Failure("\(twin.name): the twin's losses \(losses[1]) differ from the ONNX route's \(losses[0]): not the same network")
        }
        // Timing: fresh graphs, one warm-up step each, then steps interleaved, the order alternating.
        let graphs = [twin.onnx, twin.native].map { TrainingGraph(model: $0, optimizer: Adam(), seed: seed) }
        for (graph, feeds) in zip(graphs, twin.feeds) { graph.step(feeds, step: 0) }
        var samples: [[Double]] = [[], []]
        for step in 1...steps {
            for which in (step % 2 == 0 ? [0, 1] : [1, 0]) {
                samples[which].append(seconds { graphs[which].step(twin.feeds[which], step: UInt64(step)) })
            }
        }
        let ratio = median(zip(samples[0], samples[1]).map { $0 / $1 })
        print(String(format: "| %@ | %.2f ms | %.2f ms | %.3f | %@ |", twin.name, median(samples[0]) * 1000, median(samples[1]) * 1000, ratio,
                     zip(losses[0], losses[1]).map { String(format: "%.5f/%.5f", $0, $1) }.joined(separator: ", ")))
    }
} catch {
    FileHandle.standardError.write(Data("fedbaechi-onnx-twins: \(error)\n".utf8))
    exit(1)
}
