import Basics
import Foundation

/// Per-parameter optimizer memory: `slots` arrays the size of the parameter, and the step count.
public struct OptimizerState: Sendable {
    public var slots: [[Float]]
    public var step = 0

    init(slots: Int, count: Int) {
        self.slots = Array(repeating: [Float](repeating: 0, count: count), count: slots)
    }
}

/// A rule that moves a parameter against its gradient, keeping its own per-parameter state.
public protocol Optimizer: Sendable {
    var name: String { get }
    /// Arrays of state per parameter element (momentum 1, Adam 2).
    var slotCount: Int { get }
    func update(_ parameter: inout [Float], gradient: [Float], state: inout OptimizerState)
}

/// Stochastic gradient descent with heavy-ball momentum, as PyTorch defines it: v = m v + g; p -= lr v.
public struct SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    public var name: String { "sgd" }
    public var slotCount: Int { momentum == 0 ? 0 : 1 }

    public init(learningRate: Float, momentum: Float = 0.9) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    public func update(_ parameter: inout [Float], gradient: [Float], state: inout OptimizerState) {
        state.step += 1
        let (lr, mu) = (learningRate, momentum)
        parameter.withUnsafeMutableBufferPointer { p in
            gradient.withUnsafeBufferPointer { g in
                if state.slots.isEmpty {
                    for i in 0..<p.count { p[i] -= lr * g[i] }
                    return
                }
                state.slots[0].withUnsafeMutableBufferPointer { v in
                    let count = p.count
                    let (p, g, v) = (p.baseAddress!, g.baseAddress!, v.baseAddress!)
                    forEachVector(count) { i in
                        let velocity = mu * v.vector(i) + g.vector(i)
                        v.setVector(velocity, i)
                        p.setVector(p.vector(i) - lr * velocity, i)
                    } scalar: { i in
                        v[i] = mu * v[i] + g[i]
                        p[i] -= lr * v[i]
                    }
                }
            }
        }
    }
}

/// Adam (Kingma and Ba 2015) with bias-corrected moment estimates.
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var name: String { "adam" }
    public var slotCount: Int { 2 }

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func update(_ parameter: inout [Float], gradient: [Float], state: inout OptimizerState) {
        state.step += 1
        let t = Double(state.step)
        let stepSize = Float(Double(learningRate) / (1 - pow(Double(beta1), t)))
        let secondCorrection = Float(1 / (1 - pow(Double(beta2), t)).squareRoot())
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        var (first, second) = (state.slots[0], state.slots[1])
        state.slots = []  // leaves the moments uniquely referenced, updated in place
        defer { state.slots = [first, second] }
        parameter.withUnsafeMutableBufferPointer { p in
            gradient.withUnsafeBufferPointer { g in
                first.withUnsafeMutableBufferPointer { m in
                    second.withUnsafeMutableBufferPointer { v in
                        let count = p.count
                        let (p, g, m, v) = (p.baseAddress!, g.baseAddress!, m.baseAddress!, v.baseAddress!)
                        forEachVector(count) { i in
                            let gi = g.vector(i)
                            let mi = b1 * m.vector(i) + (1 - b1) * gi
                            let vi = b2 * v.vector(i) + (1 - b2) * gi * gi
                            m.setVector(mi, i)
                            v.setVector(vi, i)
                            p.setVector(p.vector(i) - stepSize * mi / (squareRoot(vi) * secondCorrection + eps), i)
                        } scalar: { i in
                            m[i] = b1 * m[i] + (1 - b1) * g[i]
                            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                            p[i] -= stepSize * m[i] / (v[i].squareRoot() * secondCorrection + eps)
                        }
                    }
                }
            }
        }
    }
}

/// RMSprop (Tieleman and Hinton 2012): divides by a running root mean square of the gradient.
public struct RMSprop: Optimizer {
    public var learningRate: Float
    public var decay: Float
    public var epsilon: Float
    public var name: String { "rmsprop" }
    public var slotCount: Int { 1 }

    public init(learningRate: Float = 1e-3, decay: Float = 0.99, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.decay = decay
        self.epsilon = epsilon
    }

    public func update(_ parameter: inout [Float], gradient: [Float], state: inout OptimizerState) {
        state.step += 1
        let (lr, rho, eps) = (learningRate, decay, epsilon)
        parameter.withUnsafeMutableBufferPointer { p in
            gradient.withUnsafeBufferPointer { g in
                state.slots[0].withUnsafeMutableBufferPointer { s in
                    let count = p.count
                    let (p, g, s) = (p.baseAddress!, g.baseAddress!, s.baseAddress!)
                    forEachVector(count) { i in
                        let gi = g.vector(i)
                        let si = rho * s.vector(i) + (1 - rho) * gi * gi
                        s.setVector(si, i)
                        p.setVector(p.vector(i) - lr * gi / (squareRoot(si) + eps), i)
                    } scalar: { i in
                        s[i] = rho * s[i] + (1 - rho) * g[i] * g[i]
                        p[i] -= lr * g[i] / (s[i].squareRoot() + eps)
                    }
                }
            }
        }
    }
}

extension OptimizerKind {
    /// The update rule of this kind. `momentum` is SGD with momentum 0.9, `sgd` is SGD without.
    public func make(learningRate: Float) -> any Optimizer {
        switch self {
        case .sgd: SGD(learningRate: learningRate, momentum: 0)
        case .momentum: SGD(learningRate: learningRate)
        case .adam: Adam(learningRate: learningRate)
        case .rmsprop: RMSprop(learningRate: learningRate)
        }
    }
}

/// The vector type the update rules run on: Swift does not vectorise these loops by itself (it
/// cannot rule out that the arrays overlap). Eight lanes measured as fast as four and faster than
/// sixteen on the baseline x86-64 target (SSE registers, no AVX).
typealias Lanes = SIMD8<Float>

/// Calls `vector` for each full group of `Lanes.scalarCount` elements, then `scalar` for the rest.
@inline(__always)
func forEachVector(_ count: Int, _ vector: (Int) -> Void, scalar: (Int) -> Void) {
    let whole = count - count % Lanes.scalarCount
    var i = 0
    while i < whole {
        vector(i)
        i += Lanes.scalarCount
    }
    while i < count {
        scalar(i)
        i += 1
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func vector(_ i: Int) -> Lanes {
        UnsafeRawPointer(self + i).loadUnaligned(as: Lanes.self)
    }

    @inline(__always) func setVector(_ value: Lanes, _ i: Int) {
        UnsafeMutableRawPointer(self + i).storeBytes(of: value, as: Lanes.self)
    }
}

extension UnsafePointer where Pointee == Float {
    @inline(__always) func vector(_ i: Int) -> Lanes {
        UnsafeRawPointer(self + i).loadUnaligned(as: Lanes.self)
    }
}

/// Square roots of non-negative lanes, vectorised: x * (1 / sqrt x) with the reciprocal from the
/// classic bit-level estimate refined by three Newton steps: within a few units of Float's rounding
/// for normal numbers and exact at 0 (subnormals come out too small, but Adam and RMSprop add an
/// epsilon far above them).
/// Swift on Linux lowers `squareRoot()` to libm's `sqrtf` one element at a time (it keeps errno),
/// which made the Adam update a sixth of the mlp's step.
@inline(__always)
func squareRoot(_ x: Lanes) -> Lanes {
    let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
    var estimate = unsafeBitCast(0x5f37_59df &- (bits &>> 1), to: Lanes.self)
    for _ in 0..<3 { estimate = estimate * (1.5 - 0.5 * x * estimate * estimate) }
    return x * estimate
}
