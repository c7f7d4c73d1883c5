import Foundation

/// An elementwise function whose derivative is a function of its output.
public protocol ElementwiseActivation: Operation {
    func value(_ x: Float) -> Float
    func derivative(output y: Float) -> Float
}

extension ElementwiseActivation {
    public var inputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [] }
    public var backwardReadsOutputs: Set<Int> { [0] }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] { [inputShapes[0]] }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        [inputs[0].mapped(value)]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0], args.wanted[0] else { return [nil] }
        return [dy.zipped(args.output(0)) { g, y in g * derivative(output: y) }]
    }
}

public struct ReLU: ElementwiseActivation {
    public var kind: String { "relu" }
    public init() {}
    @inline(__always) public func value(_ x: Float) -> Float { x > 0 ? x : 0 }
    @inline(__always) public func derivative(output y: Float) -> Float { y > 0 ? 1 : 0 }
}

public struct Sigmoid: ElementwiseActivation {
    public var kind: String { "sigmoid" }
    public init() {}
    @inline(__always) public func value(_ x: Float) -> Float { sigmoid(x) }
    @inline(__always) public func derivative(output y: Float) -> Float { y * (1 - y) }
}

public struct Tanh: ElementwiseActivation {
    public var kind: String { "tanh" }
    public init() {}
    @inline(__always) public func value(_ x: Float) -> Float { tanhf(x) }
    @inline(__always) public func derivative(output y: Float) -> Float { 1 - y * y }
}

/// The logistic function, written so that exp never overflows.
@inline(__always) func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}
