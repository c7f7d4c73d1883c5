import Foundation

/// One step of a gated recurrent unit (Cho et al. 2014, PyTorch's gate order r, z, n):
///
///     r = sigmoid(x Wir + bir + h Whr + bhr)      z = sigmoid(x Wiz + biz + h Whz + bhz)
///     n = tanh(x Win + bin + r * (h Whn + bhn))   h' = (1 - z) * n + z * h
///
/// Inputs: x [batch, in] (trailing dimensions flattened), h [batch, hidden], Wih [in, 3 hidden],
/// Whh [hidden, 3 hidden], bih [3 hidden], bhh [3 hidden]. Outputs: h' and, for backward, the
/// activations [r, z, n, h Whn + bhn] as [batch, 4 hidden]. Fused: two sgemms per step forward.
public struct GRUCell: Operation {
    public var kind: String { "gru_cell" }
    public var inputCount: Int { 6 }
    public var outputCount: Int { 2 }
    public var differentiableOutputCount: Int { 1 }
    public var backwardReadsInputs: Set<Int> { [0, 1, 2, 3] }
    public var backwardReadsOutputs: Set<Int> { [1] }

    public init() {}

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (x, h, wih, whh) = (inputShapes[0], inputShapes[1], inputShapes[2], inputShapes[3])
        guard h.count == 2, wih.count == 2, whh == [h[1], 3 * h[1]], wih[1] == 3 * h[1],
              inputShapes[4] == [3 * h[1]], inputShapes[5] == [3 * h[1]],
              wih[0] > 0, x.reduce(1, *) == h[0] * wih[0] else {
            throw ShapeMismatch(kind, "input \(x), state \(h) and weights \(Array(inputShapes[2...])) do not fit")
        }
        return [h, [h[0], 4 * h[1]]]
    }

    /// [batch, 3 hidden] = a W + b.
    private func affine(_ a: Tensor, _ w: Tensor, _ b: Tensor) -> Tensor {
        let (k, n) = (w.shape[0], w.shape[1])
        let m = rows(a, columns: k)
        return a.data.withUnsafeBufferPointer { ap in
            w.data.withUnsafeBufferPointer { wp in
                b.data.withUnsafeBufferPointer { bp in
                    Tensor(shape: [m, n]) { out in
                        for r in 0..<m { for c in 0..<n { out[r * n + c] = bp[c] } }
                        BLAS.sgemm(m: m, n: n, k: k, ap.baseAddress!, wp.baseAddress!, beta: 1, out.baseAddress!)
                    }
                }
            }
        }
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (x, h) = (inputs[0], inputs[1])
        let hidden = h.shape[1]
        let batch = h.shape[0]
        let gi = affine(x, inputs[2], inputs[4])
        let gh = affine(h, inputs[3], inputs[5])
        precondition(gi.shape == [batch, 3 * hidden] && gh.shape == gi.shape, "gru_cell: shapes do not fit")
        var saved = Tensor(zeros: [batch, 4 * hidden])
        let next = gi.data.withUnsafeBufferPointer { ip in
            gh.data.withUnsafeBufferPointer { hp in
                h.data.withUnsafeBufferPointer { prev in
                    saved.data.withUnsafeMutableBufferPointer { s in
                        Tensor(shape: [batch, hidden]) { out in
                            for b in 0..<batch {
                                let g = b * 3 * hidden
                                let a = b * 4 * hidden
                                for j in 0..<hidden {
                                    let r = sigmoid(ip[g + j] + hp[g + j])
                                    let z = sigmoid(ip[g + hidden + j] + hp[g + hidden + j])
                                    let hn = hp[g + 2 * hidden + j]
                                    let n = tanhf(ip[g + 2 * hidden + j] + r * hn)
                                    s[a + j] = r
                                    s[a + hidden + j] = z
                                    s[a + 2 * hidden + j] = n
                                    s[a + 3 * hidden + j] = hn
                                    out[b * hidden + j] = (1 - z) * n + z * prev[b * hidden + j]
                                }
                            }
                        }
                    }
                }
            }
        }
        return [next, saved]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dnext = args.gradients[0] else { return Array(repeating: nil, count: 6) }
        let (x, h, wih, whh) = (args.input(0), args.input(1), args.input(2), args.input(3))
        let saved = args.output(1)
        let batch = h.shape[0]
        let hidden = h.shape[1]
        var dgi = Tensor(zeros: [batch, 3 * hidden])  // gradient at x Wih + bih
        var dgh = Tensor(zeros: [batch, 3 * hidden])  // gradient at h Whh + bhh
        var dh = Tensor(zeros: h.shape)
        dnext.data.withUnsafeBufferPointer { d in
            saved.data.withUnsafeBufferPointer { s in
                h.data.withUnsafeBufferPointer { prev in
                    dgi.data.withUnsafeMutableBufferPointer { gi in
                        dgh.data.withUnsafeMutableBufferPointer { gh in
                            dh.data.withUnsafeMutableBufferPointer { dhp in
                                for b in 0..<batch {
                                    let g = b * 3 * hidden
                                    let a = b * 4 * hidden
                                    for j in 0..<hidden {
                                        let (r, z, n, hn) = (s[a + j], s[a + hidden + j], s[a + 2 * hidden + j], s[a + 3 * hidden + j])
                                        let dy = d[b * hidden + j]
                                        let dnPre = dy * (1 - z) * (1 - n * n)
                                        let dzPre = dy * (prev[b * hidden + j] - n) * z * (1 - z)
                                        let drPre = dnPre * hn * r * (1 - r)
                                        dhp[b * hidden + j] = dy * z
                                        gi[g + j] = drPre; gh[g + j] = drPre
                                        gi[g + hidden + j] = dzPre; gh[g + hidden + j] = dzPre
                                        gi[g + 2 * hidden + j] = dnPre; gh[g + 2 * hidden + j] = dnPre * r
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let matmul = MatMul()
        let fromInput = matmul.backward(Backprop(inputs: [x, wih], outputs: [], gradients: [dgi], wanted: [args.wanted[0], args.wanted[2]]))
        let fromHidden = matmul.backward(Backprop(inputs: [h, whh], outputs: [], gradients: [dgh], wanted: [args.wanted[1], args.wanted[3]]))
        if args.wanted[1], let viaWeights = fromHidden[0] { accumulate(&dh, viaWeights) }
        let bias = BiasAdd()
        let dbih = args.wanted[4] ? bias.backward(Backprop(inputs: [nil, nil], outputs: [], gradients: [dgi], wanted: [false, true]))[1] : nil
        let dbhh = args.wanted[5] ? bias.backward(Backprop(inputs: [nil, nil], outputs: [], gradients: [dgh], wanted: [false, true]))[1] : nil
        return [fromInput[0]?.reshaped(x.shape), args.wanted[1] ? dh : nil, fromInput[1], fromHidden[1], dbih, dbhh]
    }

    public func backwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int {
        let (batch, hidden) = (inputShapes[1][0], inputShapes[1][1])
        return 6 * batch * hidden * 4
    }
}
