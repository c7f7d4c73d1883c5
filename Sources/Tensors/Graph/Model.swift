import Basics

/// Output `port` of node `node` of a graph.
public struct ValueRef: Hashable, Codable, Sendable, CustomStringConvertible {
    public var node: Int
    public var port: Int

    public init(node: Int, port: Int = 0) {
        self.node = node
        self.port = port
    }

    public var description: String { "\(node):\(port)" }
}

/// What a node does when it runs.
public enum NodeAction: Sendable {
    /// A value the executor supplies (a batch of images, labels, tokens).
    case feed
    /// Reads a parameter's current value.
    case read(parameter: String)
    case forward(any Operation)
    /// The backward of a forward node; the layout says which of this node's inputs are which.
    case backward(any Operation, BackwardLayout)
    /// Sums gradient contributions for a value with several consumers.
    case sum
    /// Applies the optimizer to a parameter with its gradient (this node's only input).
    case update(parameter: String)
}

/// Where a backward node finds the forward values it reads among its inputs, and which forward
/// inputs its outputs are the gradients of.
public struct BackwardLayout: Sendable {
    public var forwardNode: Int
    /// Forward input index for each of the first inputs, then forward output index for the next.
    public var readInputs: [Int]
    public var readOutputs: [Int]
    /// Forward output index of each gradient input that follows.
    public var gradientOutputs: [Int]
    /// Forward input index of each output.
    public var gradientFor: [Int]
}

public enum NodeRole: String, Codable, Sendable {
    case input, variable, forward, backward, gradientSum = "gradient_sum", update
}

public struct Node: Sendable {
    public var name: String
    public var action: NodeAction
    public var inputs: [ValueRef]
    public var outputCount: Int
    /// Nodes sharing a colocation group must run on the same rank (a parameter and its update).
    public var colocation: String?

    /// What the node computes, for reports that add time up by kind: the op's kind ("conv2d",
    /// "conv2d backward"), "parameter read", "gradient sum", "optimizer update" or "input".
    public var kind: String {
        switch action {
        case .feed: "input"
        case .read: "parameter read"
        case .forward(let op): op.kind
        case .backward(let op, _): op.kind + " backward"
        case .sum: "gradient sum"
        case .update: "optimizer update"
        }
    }

    public var role: NodeRole {
        switch action {
        case .feed: .input
        case .read: .variable
        case .forward: .forward
        case .backward: .backward
        case .sum: .gradientSum
        case .update: .update
        }
    }
}

/// What a model predicts, which decides how it is fed and scored.
public enum Task: Sendable {
    /// Feeds "images" [batch, 1, 28, 28] and "labels" [batch]; scored by accuracy.
    case classification(classes: Int)
    /// Feeds "tokens" [batch, steps], "targets" [batch, predicted] (the next token for the last
    /// `predicted` steps) and "initial_state" [batch, stateSize] (zeros); scored by perplexity.
    case languageModel(vocabulary: Int, predicted: Int, stateSize: Int)
    /// A model read from a file, fed features and scored against labels or targets.
    case supervised(SupervisedTask)
}

/// The inputs and objective of a model read from a file: each example's features feed `input` and
/// its labels (or regression targets) feed `target`.
public struct SupervisedTask: Sendable, Equatable {
    public var input: String
    /// One example's features and target, without the batch dimension.
    public var inputShape: [Int]
    public var target: String
    public var targetShape: [Int]
    public var objective: Objective

    public init(input: String, inputShape: [Int], target: String, targetShape: [Int], objective: Objective) {
        self.input = input
        self.inputShape = inputShape
        self.target = target
        self.targetShape = targetShape
        self.objective = objective
    }
}

/// What a model read from a file is trained to minimise.
public enum Objective: Sendable, Equatable {
    /// Cross-entropy over the last axis of the output against integer labels of its other dimensions,
    /// averaged over the labels; scored by accuracy too.
    case crossEntropy(classes: Int)
    /// Mean squared error against float targets of the output's shape.
    case meanSquaredError
}

/// A network as a DAG of input, parameter and forward op nodes, with its parameters.
///
/// The nodes are stored in a topological order (each node after its inputs' producers).
public final class Model: @unchecked Sendable {
    public let name: String
    public let task: Task
    public let nodes: [Node]
    public let parameters: ParameterStore
    /// Node index of each fed input by name.
    public let feeds: [String: Int]
    public let loss: ValueRef
    /// The logits the task is scored on.
    public let prediction: ValueRef
    /// The value each running statistic folds in at a training step, by parameter name.
    public let statistics: [String: ValueRef]

    init(name: String, task: Task, nodes: [Node], parameters: ParameterStore, feeds: [String: Int],
         loss: ValueRef, prediction: ValueRef, statistics: [String: ValueRef] = [:]) {
        self.statistics = statistics
        self.name = name
        self.task = task
        self.nodes = nodes
        self.parameters = parameters
        self.feeds = feeds
        self.loss = loss
        self.prediction = prediction
    }
}

/// Builds a model node by node: `let h = b.apply(ReLU(), [b.linear(x, 784, 1024, "fc1")])`.
public final class GraphBuilder {
    public let name: String
    public let seed: UInt64
    /// Which parameters the built model holds.
    public let holding: ParameterHolding
    private(set) var nodes: [Node] = []
    private var feeds: [String: Int] = [:]
    private let parameters = ParameterStore()
    private var usedNames: Set<String> = []
    private var statistics: [String: ValueRef] = [:]

    public init(name: String, seed: UInt64, holding: ParameterHolding = .all) {
        self.name = name
        self.seed = seed
        self.holding = holding
    }

    private func add(_ node: Node) -> Int {
        precondition(usedNames.insert(node.name).inserted, "node name \(node.name) used twice")
        nodes.append(node)
        return nodes.count - 1
    }

    public func input(_ feed: String) -> ValueRef {
        let index = add(Node(name: "input/" + feed, action: .feed, inputs: [], outputCount: 1))
        feeds[feed] = index
        return ValueRef(node: index)
    }

    /// A trainable parameter, initialised from (seed, name) so that adding a layer does not change
    /// the others' initial values, and so that whoever holds it starts from the same values.
    public func parameter(_ name: String, shape: [Int], _ initializer: Initializer, role: ParameterRole = .trainable) -> ValueRef {
        var declaration = ParameterDeclaration(name: name, shape: shape, initializer: initializer, seed: seed)
        declaration.role = role
        parameters.declare(declaration)
        return ValueRef(node: add(Node(name: "var/" + name, action: .read(parameter: name), inputs: [],
                                       outputCount: 1, colocation: "param/" + name)))
    }

    /// Makes `value` the running statistic `parameter` (declared with `.runningAverage`) folds in at
    /// every training step.
    public func track(_ parameter: String, with value: ValueRef) {
        statistics[parameter] = value
    }

    /// A value fixed when the model is made.
    public func constant(_ value: Tensor, name: String) -> ValueRef {
        self(ConstantValue(value), name: name)
    }

    /// Adds a forward op node and returns its outputs.
    @discardableResult
    public func apply(_ op: any Operation, _ inputs: [ValueRef], name: String) -> [ValueRef] {
        precondition(inputs.count == op.inputCount, "\(op.kind) takes \(op.inputCount) inputs")
        let index = add(Node(name: "fwd/" + name, action: .forward(op), inputs: inputs, outputCount: op.outputCount))
        return (0..<op.outputCount).map { ValueRef(node: index, port: $0) }
    }

    /// Applies a single-output op (the first output of ops with saved extras).
    public func callAsFunction(_ op: any Operation, _ inputs: ValueRef..., name: String) -> ValueRef {
        apply(op, inputs, name: name)[0]
    }

    /// x W + b with W [inputs, outputs].
    public func linear(_ x: ValueRef, _ inputs: Int, _ outputs: Int, name: String,
                       initializer: Initializer? = nil) -> ValueRef {
        let w = parameter(name + ".weight", shape: [inputs, outputs], initializer ?? .heUniform(fanIn: inputs))
        let b = parameter(name + ".bias", shape: [outputs], .zeros)
        return self(BiasAdd(), self(MatMul(), x, w, name: name + "/matmul"), b, name: name + "/bias")
    }

    /// Convolution with bias over NCHW input.
    public func conv(_ x: ValueRef, _ inputs: Int, _ outputs: Int, kernel: Int, stride: Int = 1,
                     padding: Int = 0, name: String) -> ValueRef {
        let w = parameter(name + ".weight", shape: [outputs, inputs, kernel, kernel],
                          .heUniform(fanIn: inputs * kernel * kernel))
        let b = parameter(name + ".bias", shape: [outputs], .zeros)
        return self(BiasAdd(), self(Conv2D(stride: stride, padding: padding), x, w, name: name + "/conv"), b,
                    name: name + "/bias")
    }

    /// The model, holding the parameters the builder was asked to (their values are made now).
    public func build(task: Task, loss: ValueRef, prediction: ValueRef) -> Model {
        if case .all = holding { parameters.holdAll() }
        return Model(name: name, task: task, nodes: nodes, parameters: parameters, feeds: feeds, loss: loss,
                     prediction: prediction, statistics: statistics)
    }
}

/// How a parameter starts.
public enum Initializer: Sendable {
    case zeros
    /// Uniform in ±sqrt(6 / fanIn): keeps activation variance through ReLU layers (He et al. 2015).
    case heUniform(fanIn: Int)
    /// Uniform in ±bound.
    case uniform(Float)
    /// Given values (a model file's initializers), in row-major order, made only by the process that
    /// holds the parameter.
    case values(@Sendable () -> [Float])

    func values(count: Int, random: inout SplitMix64) -> [Float] {
        let bound: Float
        switch self {
        case .zeros: return [Float](repeating: 0, count: count)
        case .heUniform(let fanIn): bound = (6 / Float(max(1, fanIn))).squareRoot()
        case .uniform(let b): bound = b
        case .values(let make):
            let values = make()
            precondition(values.count == count, "\(values.count) initial values for \(count) elements")
            return values
        }
        return (0..<count).map { _ in (2 * random.nextUnitFloat() - 1) * bound }
    }
}
