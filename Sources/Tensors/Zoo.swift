/// The networks `--model` names.
public enum ModelKind: String, CaseIterable, Sendable {
    case mlp
    case lenet
    case inceptionMini = "inception-mini"
    case gruLM = "gru-lm"
    case rnnStack = "rnn-stack"

    /// Examples per step when none is asked for: sizes that train every zoo model well on a CPU core.
    public var defaultBatchSize: Int {
        switch self {
        case .mlp: 128
        case .lenet, .inceptionMini: 64
        case .gruLM, .rnnStack: 32
        }
    }

    /// The dataset each model is made for.
    public var dataset: KnownDataset {
        switch self {
        case .mlp, .lenet, .inceptionMini: .fashionMNIST
        case .gruLM, .rnnStack: .fortunes
        }
    }
}

/// What makes a trainable model: a zoo model's sizes, or a model read from a file. Every process of
/// a job makes the same model from it, holding the parameters it is asked to.
public protocol ModelRecipe: Sendable {
    /// How runs and reports name the model.
    var name: String { get }
    /// Tokens per sequence of a language model (synthetic inputs are made this long); 1 otherwise.
    var steps: Int { get }
    func build(seed: UInt64, holding: ParameterHolding) -> Model
}

extension ModelRecipe {
    /// The model holding every parameter.
    public func build(seed: UInt64) -> Model { build(seed: seed, holding: .all) }
}

/// Sizes of a zoo model. The defaults are what `--model` trains; tests shrink them.
public struct ModelSpec: ModelRecipe {
    public var kind: ModelKind
    /// mlp: widths of the hidden layers (each followed by ReLU and dropout).
    public var hidden: [Int] = [1024, 1024]
    /// lenet: channels of the two convolutions and width of the dense layer.
    public var lenet: (conv1: Int, conv2: Int, dense: Int) = (32, 64, 512)
    /// inception-mini: the channel unit every layer is a multiple of.
    public var width = 8
    public var imageSize = 28
    public var classes = 10
    /// Recurrent models: vocabulary (training sets it from the corpus), embedding and state widths.
    public var vocabulary = 10_000
    public var embedding = 100
    public var recurrentHidden = 128
    /// Tokens per sequence (gru-lm); rnn-stack reads the first half and predicts the second.
    public var steps = 20
    /// rnn-stack: recurrent layers in the encoder and again in the decoder.
    public var layers = 4
    /// Dropout rate after the mlp's hidden layers and before inception-mini's classifier.
    public var dropout: Float = 0.2

    public var name: String { kind.rawValue }

    public init(kind: ModelKind, vocabulary: Int = 10_000) {
        self.kind = kind
        self.vocabulary = vocabulary
    }

    /// The model with initial values from `seed`; `holding: .none` declares the parameters without
    /// making their values (a model-parallel rank then holds only its own).
    public func build(seed: UInt64, holding: ParameterHolding = .all) -> Model {
        let b = GraphBuilder(name: kind.rawValue, seed: seed, holding: holding)
        switch kind {
        case .mlp: return mlp(b)
        case .lenet: return lenet(b)
        case .inceptionMini: return inceptionMini(b)
        case .gruLM: return gruLM(b)
        case .rnnStack: return rnnStack(b)
        }
    }

    /// The output layer starts small (PyTorch's default bound 1/sqrt(fan-in)), so the first losses are near log(classes).
    private func classifier(_ b: GraphBuilder, features: ValueRef, width: Int, labels: ValueRef) -> Model {
        let logits = b.linear(features, width, classes, name: "out", initializer: .uniform(1 / Float(width).squareRoot()))
        return b.build(task: .classification(classes: classes),
                       loss: b(SoftmaxCrossEntropy(), logits, labels, name: "loss"), prediction: logits)
    }

    /// Dense layers with ReLU and dropout on flattened images. Without dropout this net overfits
    /// Fashion-MNIST after three epochs and stalls below 0.88 test accuracy.
    private func mlp(_ b: GraphBuilder) -> Model {
        let images = b.input("images")
        let labels = b.input("labels")
        var x = b(Reshape.flatten(), images, name: "flatten")
        var width = imageSize * imageSize
        for (i, size) in hidden.enumerated() {
            x = b(ReLU(), b.linear(x, width, size, name: "fc\(i + 1)"), name: "relu\(i + 1)")
            if dropout > 0 { x = b(Dropout(rate: dropout), x, name: "dropout\(i + 1)") }
            width = size
        }
        return classifier(b, features: x, width: width, labels: labels)
    }

    /// The CNN of McMahan et al. 2017 (FedAvg): 5x5 conv 32, 2x2 max pool, 5x5 conv 64, 2x2 max pool,
    /// dense 512, softmax.
    private func lenet(_ b: GraphBuilder) -> Model {
        let images = b.input("images")
        let labels = b.input("labels")
        var x = b(ReLU(), b.conv(images, 1, lenet.conv1, kernel: 5, padding: 2, name: "conv1"), name: "relu1")
        x = b(MaxPool2D(kernel: 2), x, name: "pool1")
        x = b(ReLU(), b.conv(x, lenet.conv1, lenet.conv2, kernel: 5, padding: 2, name: "conv2"), name: "relu2")
        x = b(MaxPool2D(kernel: 2), x, name: "pool2")
        x = b(Reshape.flatten(), x, name: "flatten")
        let side = imageSize / 4
        x = b(ReLU(), b.linear(x, lenet.conv2 * side * side, lenet.dense, name: "fc1"), name: "relu3")
        return classifier(b, features: x, width: lenet.dense, labels: labels)
    }

    /// An inception block (Szegedy et al. 2015): four parallel branches joined along channels.
    private func inception(_ b: GraphBuilder, _ x: ValueRef, _ inputs: Int, _ widths: [Int], name: String) -> ValueRef {
        func convRelu(_ x: ValueRef, _ i: Int, _ o: Int, _ k: Int, _ n: String) -> ValueRef {
            b(ReLU(), b.conv(x, i, o, kernel: k, padding: k / 2, name: name + "/" + n), name: name + "/" + n + "/relu")
        }
        let one = convRelu(x, inputs, widths[0], 1, "1x1")
        let three = convRelu(convRelu(x, inputs, widths[1], 1, "3x3_reduce"), widths[1], widths[2], 3, "3x3")
        let five = convRelu(convRelu(x, inputs, widths[3], 1, "5x5_reduce"), widths[3], widths[4], 5, "5x5")
        let pooled = b(MaxPool2D(kernel: 3, stride: 1, padding: 1), x, name: name + "/branch_pool")
        let projection = convRelu(pooled, inputs, widths[5], 1, "pool_proj")
        return b(Concat(axis: 1, inputCount: 4), one, three, five, projection, name: name + "/concat")
    }

    private func inceptionMini(_ b: GraphBuilder) -> Model {
        let images = b.input("images")
        let labels = b.input("labels")
        let w = width
        var x = b(ReLU(), b.conv(images, 1, 2 * w, kernel: 3, padding: 1, name: "stem"), name: "stem/relu")
        x = b(MaxPool2D(kernel: 2), x, name: "stem/pool")
        let a = [2 * w, 2 * w, 3 * w, w, w, w]
        x = inception(b, x, 2 * w, a, name: "mixed1")
        x = b(MaxPool2D(kernel: 2), x, name: "mixed1/pool")
        let aOut = a[0] + a[2] + a[4] + a[5]
        let c = [4 * w, 3 * w, 6 * w, w, 2 * w, 2 * w]
        x = inception(b, x, aOut, c, name: "mixed2")
        let cOut = c[0] + c[2] + c[4] + c[5]
        x = b(AvgPool2D(kernel: imageSize / 4), x, name: "global_pool")
        x = b(Reshape.flatten(), x, name: "flatten")
        x = b(Dropout(rate: dropout), x, name: "dropout")
        return classifier(b, features: x, width: cOut, labels: labels)
    }

    /// A GRU layer's parameters, shared by every step of the layer.
    private struct GRUWeights {
        var values: [ValueRef]

        init(_ b: GraphBuilder, inputs: Int, hidden: Int, name: String) {
            let bound = 1 / Float(hidden).squareRoot()  // PyTorch's GRU initialisation
            values = [b.parameter(name + ".w_ih", shape: [inputs, 3 * hidden], .uniform(bound)),
                      b.parameter(name + ".w_hh", shape: [hidden, 3 * hidden], .uniform(bound)),
                      b.parameter(name + ".b_ih", shape: [3 * hidden], .uniform(bound)),
                      b.parameter(name + ".b_hh", shape: [3 * hidden], .uniform(bound))]
        }
    }

    /// Embeds `count` tokens starting at `from` of the "tokens" input, one value per step.
    private func embedSteps(_ b: GraphBuilder, _ tokens: ValueRef, table: ValueRef, count: Int) -> [ValueRef] {
        let embedded = b(Embedding(vocabulary: vocabulary), tokens, table, name: "embed")
        return b.apply(Split(axis: 1, sizes: Array(repeating: 1, count: count)), [embedded], name: "embed/split")
    }

    /// Scores every step's output against the next tokens: one projection over [batch * steps, hidden].
    private func languageModelHead(_ b: GraphBuilder, outputs: [ValueRef], targets: ValueRef) -> Model {
        let joined = b.apply(Concat(axis: 1, inputCount: outputs.count), outputs, name: "outputs/concat")[0]
        let rowsPerStep = b(Reshape([-1, recurrentHidden]), joined, name: "outputs/reshape")
        let logits = b.linear(rowsPerStep, recurrentHidden, vocabulary, name: "out",
                              initializer: .uniform(1 / Float(recurrentHidden).squareRoot()))
        return b.build(task: .languageModel(vocabulary: vocabulary, predicted: outputs.count, stateSize: recurrentHidden),
                       loss: b(SoftmaxCrossEntropy(), logits, targets, name: "loss"), prediction: logits)
    }

    /// Next-token model: embedding, one GRU unrolled over the sequence, a projection to the vocabulary.
    private func gruLM(_ b: GraphBuilder) -> Model {
        let tokens = b.input("tokens")
        let targets = b.input("targets")
        let initial = b.input("initial_state")
        let table = b.parameter("embedding", shape: [vocabulary, embedding], .uniform(0.1))
        let cell = GRUWeights(b, inputs: embedding, hidden: recurrentHidden, name: "gru")
        var h = initial
        var outputs: [ValueRef] = []
        for (t, x) in embedSteps(b, tokens, table: table, count: steps).enumerated() {
            h = b.apply(GRUCell(), [x, h] + cell.values, name: "gru/step\(t)")[0]
            outputs.append(h)
        }
        return languageModelHead(b, outputs: outputs, targets: targets)
    }

    /// A small GNMT-like encoder-decoder: stacked GRU layers with residual connections from the third
    /// layer up; the encoder reads the first half of the sequence, the decoder starts from the
    /// encoder's final states and predicts the second half. Long chains of dependent steps.
    private func rnnStack(_ b: GraphBuilder) -> Model {
        let tokens = b.input("tokens")
        let targets = b.input("targets")
        let initial = b.input("initial_state")
        let table = b.parameter("embedding", shape: [vocabulary, embedding], .uniform(0.1))
        let half = steps / 2
        let embedded = embedSteps(b, tokens, table: table, count: steps)

        func stack(_ inputs: [ValueRef], states: [ValueRef], name: String) -> (outputs: [ValueRef], final: [ValueRef]) {
            var sequence = inputs
            var finals: [ValueRef] = []
            for layer in 0..<layers {
                let cell = GRUWeights(b, inputs: layer == 0 ? embedding : recurrentHidden, hidden: recurrentHidden,
                                      name: "\(name)\(layer)")
                var h = states[layer]
                var next: [ValueRef] = []
                for (t, x) in sequence.enumerated() {
                    h = b.apply(GRUCell(), [x, h] + cell.values, name: "\(name)\(layer)/step\(t)")[0]
                    next.append(layer >= 2 ? b(Add(), h, x, name: "\(name)\(layer)/residual\(t)") : h)
                }
                finals.append(h)
                sequence = next
            }
            return (sequence, finals)
        }
        let encoder = stack(Array(embedded[..<half]), states: Array(repeating: initial, count: layers), name: "encoder")
        let decoder = stack(Array(embedded[half...]), states: encoder.final, name: "decoder")
        return languageModelHead(b, outputs: decoder.outputs, targets: targets)
    }
}
