/// A model's trainable parameters by name, with each one's optimizer state.
///
/// Federated averaging and model-parallel ranks read and write parameters as flat Float arrays
/// through `values(of:)` and `set(_:_:)`.
public final class ParameterStore: @unchecked Sendable {
    /// Names in the order the model created them.
    public private(set) var names: [String] = []
    private var tensors: [String: Tensor] = [:]
    /// Optimizer state (momentum, moment estimates) per parameter, created on its first update.
    var optimizerState: [String: OptimizerState] = [:]

    public enum Failure: Error, CustomStringConvertible {
        case unknown(String)
        case sizeMismatch(String, expected: Int, got: Int)

        public var description: String {
            switch self {
            case .unknown(let name): "no parameter named \(name)"
            case .sizeMismatch(let name, let expected, let got): "parameter \(name) has \(expected) values, not \(got)"
            }
        }
    }

    func add(_ name: String, _ value: Tensor) {
        precondition(tensors[name] == nil, "parameter \(name) defined twice")
        names.append(name)
        tensors[name] = value
    }

    public func tensor(_ name: String) -> Tensor? { tensors[name] }

    public func values(of name: String) -> [Float]? { tensors[name]?.data }

    public func set(_ name: String, _ values: [Float]) throws {
        guard let current = tensors[name] else { throw Failure.unknown(name) }
        guard current.count == values.count else {
            throw Failure.sizeMismatch(name, expected: current.count, got: values.count)
        }
        tensors[name] = Tensor(shape: current.shape, data: values)
    }

    /// Drops a parameter this process does not hold: a model-parallel rank keeps only its own.
    public func remove(_ name: String) {
        guard tensors.removeValue(forKey: name) != nil else { return }
        names.removeAll { $0 == name }
        optimizerState[name] = nil
    }

    /// Total trainable values.
    public var count: Int { tensors.values.reduce(0) { $0 + $1.count } }

    /// Applies one optimizer step to a parameter in place.
    func update(_ name: String, gradient: Tensor, optimizer: any Optimizer) {
        guard var value = tensors[name] else { preconditionFailure("no parameter named \(name)") }
        precondition(value.count == gradient.count, "gradient of \(name) has the wrong size")
        // Taken out of the dictionaries so the arrays are uniquely referenced: updated in place, not copied.
        var state = optimizerState.removeValue(forKey: name) ?? OptimizerState(slots: optimizer.slotCount, count: value.count)
        tensors[name] = nil
        optimizer.update(&value.data, gradient: gradient.data, state: &state)
        tensors[name] = value
        optimizerState[name] = state
    }
}
