/// The optimizers by their command-line names: one vocabulary for what `train` runs, what
/// `profile` measures and what `place` reserves memory for.
public enum OptimizerKind: String, CaseIterable, Sendable {
    /// Plain stochastic gradient descent: p -= lr g, no state.
    case sgd
    /// SGD with heavy-ball momentum: one velocity per parameter element.
    case momentum
    /// Adam: first and second moment estimates per parameter element.
    case adam
    /// RMSprop: one running mean square per parameter element.
    case rmsprop

    /// Arrays the size of the parameter that the optimizer keeps between steps.
    public var stateSlots: Int {
        switch self {
        case .sgd: 0
        case .momentum, .rmsprop: 1
        case .adam: 2
        }
    }

    /// A learning rate that trains every zoo model with this optimizer.
    public var defaultLearningRate: Float {
        switch self {
        case .sgd, .momentum: 0.01
        case .adam, .rmsprop: 0.001
        }
    }
}

/// The memory one trained parameter takes: its weights, its gradient (the same size) and the
/// optimizer's state slots (each the size of the weights). Every place that counts a parameter's
/// memory (the training profile, the ranks of a model-parallel job, ONNX import) counts it with
/// this, each taking the parts it holds where it holds them.
public struct ParameterMemory: Sendable, Hashable {
    public var weightBytes: Int
    public var stateSlots: Int

    /// A parameter of `weightBytes` bytes trained by an optimizer keeping `stateSlots` arrays of its size.
    public init(weightBytes: Int, stateSlots: Int) {
        self.weightBytes = weightBytes
        self.stateSlots = stateSlots
    }

    public init(elements: Int, elementSize: Int, optimizer: OptimizerKind) {
        self.init(weightBytes: elements * elementSize, stateSlots: optimizer.stateSlots)
    }

    /// The gradient: one value per weight.
    public var gradientBytes: Int { weightBytes }
    /// The optimizer's state.
    public var stateBytes: Int { stateSlots * weightBytes }
    /// Weights, gradient and state.
    public var totalBytes: Int { weightBytes + gradientBytes + stateBytes }

    /// Weights, gradient and state of a parameter of `elements` elements of `elementSize` bytes.
    public static func bytes(elements: Int, elementSize: Int, optimizer: OptimizerKind) -> Int {
        ParameterMemory(elements: elements, elementSize: elementSize, optimizer: optimizer).totalBytes
    }
}
