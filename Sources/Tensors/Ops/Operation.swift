/// What an op may know about the step it runs in: dropout draws its mask from (seed, node, step),
/// so a node computes the same mask wherever and whenever it runs.
public struct ExecutionContext: Sendable {
    public var training: Bool
    public var step: UInt64
    public var seed: UInt64
    /// The graph node being run, which names the random stream of a seeded op.
    public var nodeName: String

    public init(training: Bool = true, step: UInt64 = 0, seed: UInt64 = 0, nodeName: String = "") {
        self.training = training
        self.step = step
        self.seed = seed
        self.nodeName = nodeName
    }
}

/// What a backward computation is given: the forward tensors it declared it reads, the gradient of
/// each differentiable output (nil when nothing downstream depends on it, meaning zero), and which
/// inputs want a gradient.
public struct Backprop {
    /// Forward inputs, nil unless listed in `backwardReadsInputs`.
    public var inputs: [Tensor?]
    /// Forward outputs, nil unless listed in `backwardReadsOutputs`.
    public var outputs: [Tensor?]
    /// One per differentiable output.
    public var gradients: [Tensor?]
    /// One per input: whether the graph needs its gradient.
    public var wanted: [Bool]

    public init(inputs: [Tensor?], outputs: [Tensor?], gradients: [Tensor?], wanted: [Bool]) {
        self.inputs = inputs
        self.outputs = outputs
        self.gradients = gradients
        self.wanted = wanted
    }

    func input(_ index: Int) -> Tensor {
        guard let tensor = inputs[index] else { fatalError("backward read input \(index) it did not declare") }
        return tensor
    }

    func output(_ index: Int) -> Tensor {
        guard let tensor = outputs[index] else { fatalError("backward read output \(index) it did not declare") }
        return tensor
    }
}

/// One kind of node in a model's graph: a forward computation and its vector-Jacobian product.
///
/// Everything that crosses from forward to backward is a declared input or output, never hidden
/// state, so forward and backward nodes can run on different ranks with the tensors sent between them.
public protocol Operation: Sendable {
    /// A short type name such as "conv2d".
    var kind: String { get }
    var inputCount: Int { get }
    /// Outputs, the first `differentiableOutputCount` of which carry gradients; the rest are saved
    /// values for backward (a dropout mask, GRU gate activations).
    var outputCount: Int { get }
    var differentiableOutputCount: Int { get }
    /// Inputs that never take a gradient (labels, token ids).
    var nonDifferentiableInputs: Set<Int> { get }
    var backwardReadsInputs: Set<Int> { get }
    var backwardReadsOutputs: Set<Int> { get }

    /// The shape of each output for inputs of these shapes, without running the op: how a plan sizes
    /// its receive buffers and a profile its tensors before any value exists.
    func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]]
    func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor]
    /// Gradients for the inputs, nil where not wanted.
    func backward(_ args: Backprop) -> [Tensor?]

    /// Scratch memory the kernels allocate and free within the call (im2col buffers and the like).
    func forwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int
    func backwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int
}

extension Operation {
    public var outputCount: Int { 1 }
    public var differentiableOutputCount: Int { outputCount }
    public var nonDifferentiableInputs: Set<Int> { [] }
    public var backwardReadsInputs: Set<Int> { Set(0..<inputCount) }
    public var backwardReadsOutputs: Set<Int> { [] }
    public func forwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int { 0 }
    public func backwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int { 0 }
}

/// Input shapes an op cannot take, found by shape inference: the op's kind and why.
public struct ShapeMismatch: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ kind: String, _ reason: String) { description = kind + ": " + reason }
}

/// Rows of a row-major matrix whose rows have `columns` elements.
@inline(__always) func rows(_ tensor: Tensor, columns: Int) -> Int {
    columns == 0 ? 0 : tensor.count / columns
}

/// Adds `other` into `target`, element by element (the sum of gradient contributions).
func accumulate(_ target: inout Tensor, _ other: Tensor) {
    precondition(target.count == other.count, "gradient sizes \(target.shape) and \(other.shape) differ")
    target.data.withUnsafeMutableBufferPointer { t in
        other.data.withUnsafeBufferPointer { o in
            for i in 0..<t.count { t[i] += o[i] }
        }
    }
}
