import Basics
/// A parameter as the model declares it: its shape and the seeded initializer that fills it.
///
/// The initial values come from a random stream of their own, named by the run's seed and the
/// parameter's name, so a parameter starts the same whichever process initialises it and whatever
/// else that process holds: a model-parallel rank initialises only what it owns.
public struct ParameterDeclaration: Sendable {
    public let name: String
    public let shape: [Int]
    let initializer: Initializer
    let seed: UInt64
    public var role: ParameterRole = .trainable

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * MemoryLayout<Float>.size }

    /// The parameter's first value.
    func initialValue() -> Tensor {
        var random = SplitMix64(seed: seed, stream: "init/" + name)
        return Tensor(shape: shape, data: initializer.values(count: count, random: &random))
    }
}

/// How a parameter's update node changes it.
public enum ParameterRole: Sendable, Equatable {
    /// The optimizer moves it against its gradient.
    case trainable
    /// A running statistic (batch normalization's mean and variance): each update folds the batch's
    /// value in, value = momentum value + (1 - momentum) batch, as ONNX defines `momentum`
    /// (PyTorch's momentum 0.1 is 0.9 here). No optimizer state.
    case runningAverage(momentum: Float)
}

/// Which declared parameters a freshly built model holds in memory.
public enum ParameterHolding: Sendable {
    /// Every parameter, initialised: single-process and federated training.
    case all
    /// None: shapes only, until `ParameterStore.hold(_:)` says which (a model-parallel rank's own).
    case none
}

/// A model's trainable parameters by name, with each one's optimizer state.
///
/// Every parameter is declared (name, shape, initializer); a process holds the values of all of them
/// or of some (`hold(_:)`). Federated averaging and model-parallel ranks read and write held
/// parameters as flat Float arrays through `values(of:)` and `set(_:_:)`.
public final class ParameterStore: @unchecked Sendable {
    /// Every parameter's name, in the order the model declared them.
    public private(set) var declaredNames: [String] = []
    private var declarations: [String: ParameterDeclaration] = [:]
    /// Names of the parameters this process holds, in declaration order.
    public private(set) var names: [String] = []
    private var tensors: [String: Tensor] = [:]
    /// Optimizer state (momentum, moment estimates) per parameter, created on its first update.
    var optimizerState: [String: OptimizerState] = [:]

    public enum Failure: UserFacingError {
        /// A saved state that does not fit the model: a checkpoint of another model or a damaged file.
        public var exitStatus: ExitStatus { .badInput }

        case unknown(String)
        case sizeMismatch(String, expected: Int, got: Int)
        case mismatch(missing: [String], extra: [String])

        public var description: String {
            switch self {
            case .unknown(let name): "no parameter named \(name)"
            case .sizeMismatch(let name, let expected, let got): "parameter \(name) has \(expected) values, not \(got)"
            case .mismatch(let missing, let extra):
                "the saved parameters do not match the model (missing: \(missing.joined(separator: ", ")); "
                    + "unexpected: \(extra.joined(separator: ", ")))"
            }
        }
    }

    func declare(_ declaration: ParameterDeclaration) {
        precondition(declarations[declaration.name] == nil, "parameter \(declaration.name) defined twice")
        declaredNames.append(declaration.name)
        declarations[declaration.name] = declaration
    }

    /// The declaration of parameter `name`, held or not.
    public func declaration(_ name: String) -> ParameterDeclaration? { declarations[name] }

    /// Holds exactly the parameters in `wanted`: those not held yet start from their initial values,
    /// those held and not wanted are dropped with their optimizer state.
    public func hold(_ wanted: Set<String>) {
        for name in declaredNames {
            if wanted.contains(name) {
                if tensors[name] == nil { tensors[name] = declarations[name]!.initialValue() }
            } else {
                tensors[name] = nil
                optimizerState[name] = nil
            }
        }
        names = declaredNames.filter { tensors[$0] != nil }
    }

    /// Holds every declared parameter.
    public func holdAll() { hold(Set(declaredNames)) }

    public func tensor(_ name: String) -> Tensor? { tensors[name] }

    public func values(of name: String) -> [Float]? { tensors[name]?.data }

    public func set(_ name: String, _ values: [Float]) throws {
        guard let current = tensors[name] else { throw Failure.unknown(name) }
        guard current.count == values.count else {
            throw Failure.sizeMismatch(name, expected: current.count, got: values.count)
        }
        tensors[name] = Tensor(shape: current.shape, data: values)
    }

    /// Trainable values this process holds.
    public var count: Int { tensors.values.reduce(0) { $0 + $1.count } }

    /// Trainable values of the whole model, held here or not.
    public var declaredCount: Int { declarations.values.reduce(0) { $0 + $1.count } }

    /// The root mean square of every value: the scale federated aggregation's error is measured against.
    public var rootMeanSquare: Double {
        var sum = 0.0
        var count = 0
        for name in names { for value in tensors[name]!.data { sum += Double(value) * Double(value) }; count += tensors[name]!.count }
        return count > 0 ? (sum / Double(count)).squareRoot() : 0
    }

    /// Everything a checkpoint needs to continue training bit for bit: values and optimizer state
    /// of every parameter this store holds.
    public var state: ParameterState {
        var state = ParameterState()
        for name in names {
            state.values[name] = tensors[name]!.data
            if let optimizer = optimizerState[name] {
                state.slots[name] = optimizer.slots
                state.optimizerSteps[name] = optimizer.step
            }
        }
        return state
    }

    /// Puts a saved state back; it must hold exactly this store's parameters, with their sizes.
    public func restore(_ state: ParameterState) throws {
        guard Set(state.values.keys) == Set(names) else {
            let missing = Set(names).subtracting(state.values.keys).sorted()
            let extra = Set(state.values.keys).subtracting(names).sorted()
            throw Failure.mismatch(missing: missing, extra: extra)
        }
        for name in names {
            try set(name, state.values[name]!)
            if let slots = state.slots[name] {
                guard slots.allSatisfy({ $0.count == tensors[name]!.count }) else {
                    throw Failure.sizeMismatch(name, expected: tensors[name]!.count, got: slots.first?.count ?? 0)
                }
                var restored = OptimizerState(slots: 0, count: 0)
                restored.slots = slots
                restored.step = state.optimizerSteps[name] ?? 0
                optimizerState[name] = restored
            } else {
                optimizerState[name] = nil
            }
        }
    }

    /// Applies one optimizer step to a parameter in place.
    func update(_ name: String, gradient: Tensor, optimizer: any Optimizer) {
        guard var value = tensors[name] else { preconditionFailure("no parameter named \(name)") }
        precondition(value.count == gradient.count, "gradient of \(name) has the wrong size")
        if case .runningAverage(let momentum) = declarations[name]?.role {
            tensors[name] = nil
            value.data.withUnsafeMutableBufferPointer { v in
                for i in 0..<v.count { v[i] = momentum * v[i] + (1 - momentum) * gradient.data[i] }
            }
            tensors[name] = value
            return
        }
        // Taken out of the dictionaries so the arrays are uniquely referenced: updated in place, not copied.
        var state = optimizerState.removeValue(forKey: name) ?? OptimizerState(slots: optimizer.slotCount, count: value.count)
        tensors[name] = nil
        optimizer.update(&value.data, gradient: gradient.data, state: &state)
        tensors[name] = value
        optimizerState[name] = state
    }
}

/// A parameter store's values and optimizer state, as checkpoints save them.
public struct ParameterState: Sendable, Equatable {
    public var values: [String: [Float]] = [:]
    /// Optimizer arrays per parameter (absent before its first update).
    public var slots: [String: [[Float]]] = [:]
    public var optimizerSteps: [String: Int] = [:]

    public init() {}
}
