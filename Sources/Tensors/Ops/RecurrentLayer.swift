import Foundation

/// ONNX's GRU and LSTM: a whole recurrent layer over a sequence, forward, reverse or both ways, with
/// every optional input (biases, per-example sequence lengths, initial states, LSTM peepholes) and
/// every output (all hidden states, the last hidden state, the last cell state).
///
/// Gate order and equations are ONNX's (GRU: z, r, h; LSTM: i, o, f, c), with its default activations
/// (sigmoid for gates, tanh otherwise). Steps past an example's length leave its state as it was and
/// output zeros. The activations of every step travel to backward as one extra output, so backward
/// (through time) needs no recomputation and runs wherever the plan puts it.
public struct RecurrentLayer: Operation {
    public enum Cell: Sendable, Equatable {
        /// `linearBeforeReset`: the reset gate multiplies (H Rh + Rbh), as PyTorch's GRU does.
        case gru(linearBeforeReset: Bool)
        case lstm
    }

    /// The op's optional inputs, in ONNX's order after X, W and R.
    public enum Optional: Int, Sendable, CaseIterable { case bias, sequenceLengths, initialH, initialC, peepholes }

    public var cell: Cell
    public var hidden: Int
    public var directions: Int
    /// Directions when 1: reverse instead of forward.
    public var reverse: Bool
    /// ONNX's `layout` 1: batch first ([B, T, I] input, [B, T, D, H] output, [B, D, H] states).
    public var batchFirst: Bool
    public var present: Set<Optional>

    public var kind: String { cell == .lstm ? "lstm" : "gru" }
    var gates: Int { cell == .lstm ? 4 : 3 }
    /// Saved floats per step and example: GRU z, r, h̃, H_prev, (H_prev Rh + Rbh); LSTM i, o, f, c̃, C_prev, C, H_prev.
    var savedWidth: Int { cell == .lstm ? 7 * hidden : 5 * hidden }
    var stateCount: Int { cell == .lstm ? 2 : 1 }

    public init(cell: Cell, hidden: Int, directions: Int = 1, reverse: Bool = false, batchFirst: Bool = false, present: Set<Optional> = []) {
        self.cell = cell
        self.hidden = hidden
        self.directions = directions
        self.reverse = reverse
        self.batchFirst = batchFirst
        self.present = present
    }

    /// The position of each present optional input among the op's inputs.
    func position(_ input: Optional) -> Int? {
        guard present.contains(input) else { return nil }
        return 3 + Optional.allCases.filter { $0.rawValue < input.rawValue && present.contains($0) }.count
    }

    public var inputCount: Int { 3 + present.count }
    public var outputCount: Int { 2 + stateCount }
    public var differentiableOutputCount: Int { 1 + stateCount }
    public var nonDifferentiableInputs: Set<Int> { position(.sequenceLengths).map { [$0] } ?? [] }
    public var backwardReadsInputs: Set<Int> { Set(0..<inputCount) }
    public var backwardReadsOutputs: Set<Int> { [outputCount - 1] }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (x, w, r) = (inputShapes[0], inputShapes[1], inputShapes[2])
        guard x.count == 3 else { throw ShapeMismatch(kind, "input \(x) is not a sequence [steps, batch, features]") }
        let (steps, batch, features) = batchFirst ? (x[1], x[0], x[2]) : (x[0], x[1], x[2])
        guard w == [directions, gates * hidden, features], r == [directions, gates * hidden, hidden] else {
            throw ShapeMismatch(kind, "weights \(w) and \(r) do not fit \(directions) direction(s) of \(hidden) units over \(features) features")
        }
        if let b = position(.bias), inputShapes[b] != [directions, 2 * gates * hidden] { throw ShapeMismatch(kind, "bias \(inputShapes[b])") }
        if let l = position(.sequenceLengths), inputShapes[l] != [batch] { throw ShapeMismatch(kind, "sequence lengths \(inputShapes[l])") }
        let state = batchFirst ? [batch, directions, hidden] : [directions, batch, hidden]
        for slot in [Optional.initialH, .initialC] {
            if let i = position(slot), inputShapes[i] != state { throw ShapeMismatch(kind, "initial state \(inputShapes[i]), not \(state)") }
        }
        if let p = position(.peepholes), inputShapes[p] != [directions, 3 * hidden] { throw ShapeMismatch(kind, "peepholes \(inputShapes[p])") }
        let y = batchFirst ? [batch, steps, directions, hidden] : [steps, directions, batch, hidden]
        return [y] + Array(repeating: state, count: stateCount) + [[directions, steps, batch, savedWidth]]
    }

    /// Sizes of an input of shape `x`.
    private func sizes(_ x: [Int]) -> (steps: Int, batch: Int, features: Int) {
        batchFirst ? (x[1], x[0], x[2]) : (x[0], x[1], x[2])
    }

    /// [D, B, H] state `d` from an input laid out [D, B, H] or [B, D, H], or zeros.
    private func state(_ tensor: Tensor?, direction d: Int, batch: Int) -> [Float] {
        guard let tensor else { return [Float](repeating: 0, count: batch * hidden) }
        if !batchFirst { return Array(tensor.data[(d * batch * hidden)..<((d + 1) * batch * hidden)]) }
        var values: [Float] = []
        values.reserveCapacity(batch * hidden)
        for b in 0..<batch {
            let start = (b * directions + d) * hidden
            values += tensor.data[start..<(start + hidden)]
        }
        return values
    }

    /// The steps direction `d` takes for an example of `length` steps, in order.
    private func steps(direction d: Int, length: Int) -> [Int] {
        let backward = directions == 2 ? d == 1 : reverse
        return backward ? Array((0..<length).reversed()) : Array(0..<length)
    }

    private func lengths(_ inputs: [Tensor?], steps: Int, batch: Int) -> [Int] {
        guard let l = position(.sequenceLengths), let tensor = inputs[l] else { return Array(repeating: steps, count: batch) }
        return tensor.data.map { min(steps, max(0, Int($0))) }
    }

    /// Input rows in step-major order, [T * B, I].
    private func stepMajor(_ x: Tensor) -> Tensor {
        batchFirst ? Transpose.permute(x, [1, 0, 2]) : x
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (steps, batch, features) = sizes(inputs[0].shape)
        let x = stepMajor(inputs[0])
        let (w, r) = (inputs[1].data, inputs[2].data)
        let g = gates * hidden
        let lengths = lengths(inputs, steps: steps, batch: batch)
        let shapes = try! outputShapes(inputs.map(\.shape))
        var y = [Float](repeating: 0, count: steps * directions * batch * hidden)
        var lastH = [Float](repeating: 0, count: directions * batch * hidden)
        var lastC = [Float](repeating: 0, count: directions * batch * hidden)
        var saved = [Float](repeating: 0, count: directions * steps * batch * savedWidth)
        for d in 0..<directions {
            let bias = position(.bias).map { Array(inputs[$0].data[(d * 2 * g)..<((d + 1) * 2 * g)]) } ?? [Float](repeating: 0, count: 2 * g)
            let peep = position(.peepholes).map { Array(inputs[$0].data[(d * 3 * hidden)..<((d + 1) * 3 * hidden)]) }
            // X W^T for every step at once: [T * B, G].
            var xw = [Float](repeating: 0, count: steps * batch * g)
            x.data.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    xw.withUnsafeMutableBufferPointer { out in
                        BLAS.sgemm(transposeB: true, m: steps * batch, n: g, k: features, xp.baseAddress!, wp.baseAddress! + d * g * features, out.baseAddress!)
                    }
                }
            }
            var h = state(position(.initialH).map { inputs[$0] }, direction: d, batch: batch)
            var c = state(position(.initialC).map { inputs[$0] }, direction: d, batch: batch)
            var hr = [Float](repeating: 0, count: batch * g)
            let order = self.steps(direction: d, length: steps)
            for t in order {
                r.withUnsafeBufferPointer { rp in
                    h.withUnsafeBufferPointer { hp in
                        hr.withUnsafeMutableBufferPointer { out in
                            BLAS.sgemm(transposeB: true, m: batch, n: g, k: hidden, hp.baseAddress!, rp.baseAddress! + d * g * hidden, out.baseAddress!)
                        }
                    }
                }
                for b in 0..<batch where t < lengths[b] {
                    let a = (t * batch + b) * g
                    let s = ((d * steps + t) * batch + b) * savedWidth
                    let o = ((t * directions + d) * batch + b) * hidden
                    for j in 0..<hidden {
                        let hPrev = h[b * hidden + j]
                        switch cell {
                        case .gru(let linearBeforeReset):
                            let z = sigmoid(xw[a + j] + hr[b * g + j] + bias[j] + bias[g + j])
                            let rg = sigmoid(xw[a + hidden + j] + hr[b * g + hidden + j] + bias[hidden + j] + bias[g + hidden + j])
                            let recurrent = hr[b * g + 2 * hidden + j] + bias[g + 2 * hidden + j]
                            let candidate: Float
                            if linearBeforeReset {
                                candidate = tanhf(xw[a + 2 * hidden + j] + bias[2 * hidden + j] + rg * recurrent)
                            } else {
                                candidate = 0  // needs (r ⊙ H) R: computed below for the whole row
                            }
                            saved[s + j] = z
                            saved[s + hidden + j] = rg
                            saved[s + 2 * hidden + j] = candidate
                            saved[s + 3 * hidden + j] = hPrev
                            saved[s + 4 * hidden + j] = recurrent
                        case .lstm:
                            let cPrev = c[b * hidden + j]
                            func pre(_ k: Int) -> Float { xw[a + k * hidden + j] + hr[b * g + k * hidden + j] + bias[k * hidden + j] + bias[g + k * hidden + j] }
                            let i = sigmoid(pre(0) + (peep?[j] ?? 0) * cPrev)
                            let f = sigmoid(pre(2) + (peep?[2 * hidden + j] ?? 0) * cPrev)
                            let candidate = tanhf(pre(3))
                            let cNew = f * cPrev + i * candidate
                            let out = sigmoid(pre(1) + (peep?[hidden + j] ?? 0) * cNew)
                            saved[s + j] = i
                            saved[s + hidden + j] = out
                            saved[s + 2 * hidden + j] = f
                            saved[s + 3 * hidden + j] = candidate
                            saved[s + 4 * hidden + j] = cPrev
                            saved[s + 5 * hidden + j] = cNew
                            saved[s + 6 * hidden + j] = hPrev
                            y[o + j] = out * tanhf(cNew)
                        }
                    }
                    if case .gru(false) = cell {
                        // h̃ = tanh(X Wh + (r ⊙ H_prev) Rh^T + Rbh + Wbh), one row at a time.
                        for j in 0..<hidden {
                            var sum = xw[a + 2 * hidden + j] + bias[2 * hidden + j] + bias[g + 2 * hidden + j]
                            let row = d * g * hidden + (2 * hidden + j) * hidden
                            for k in 0..<hidden { sum += saved[s + hidden + k] * h[b * hidden + k] * r[row + k] }
                            saved[s + 2 * hidden + j] = tanhf(sum)
                        }
                    }
                    if case .gru = cell {
                        for j in 0..<hidden {
                            let z = saved[s + j]
                            y[o + j] = (1 - z) * saved[s + 2 * hidden + j] + z * h[b * hidden + j]
                        }
                    }
                }
                // States move only for the examples still running.
                for b in 0..<batch where t < lengths[b] {
                    let o = ((t * directions + d) * batch + b) * hidden
                    let s = ((d * steps + t) * batch + b) * savedWidth
                    for j in 0..<hidden {
                        h[b * hidden + j] = y[o + j]
                        if cell == .lstm { c[b * hidden + j] = saved[s + 5 * hidden + j] }
                    }
                }
            }
            for b in 0..<batch {
                for j in 0..<hidden {
                    let index = batchFirst ? (b * directions + d) * hidden + j : (d * batch + b) * hidden + j
                    lastH[index] = h[b * hidden + j]
                    lastC[index] = c[b * hidden + j]
                }
            }
        }
        var yTensor = Tensor(shape: [steps, directions, batch, hidden], data: y)
        if batchFirst { yTensor = Transpose.permute(yTensor, [2, 0, 1, 3]) }
        var outputs = [yTensor, Tensor(shape: shapes[1], data: lastH)]
        if cell == .lstm { outputs.append(Tensor(shape: shapes[2], data: lastC)) }
        outputs.append(Tensor(shape: [directions, steps, batch, savedWidth], data: saved))
        return outputs
    }

    /// Backpropagation through time, step by step in the reverse of each direction's order.
    public func backward(_ args: Backprop) -> [Tensor?] {
        let xInput = args.input(0)
        let (steps, batch, features) = sizes(xInput.shape)
        let x = stepMajor(xInput).data
        let (w, r) = (args.input(1).data, args.input(2).data)
        let g = gates * hidden
        let inputs = (0..<inputCount).map { args.inputs[$0] }
        let lengths = lengths(inputs, steps: steps, batch: batch)
        let saved = args.output(outputCount - 1).data
        // Gradients arriving at Y in [T, D, B, H] order, and at the last states in [D, B, H] order.
        let dy = args.gradients[0].map { batchFirst ? Transpose.permute($0, [1, 2, 0, 3]).data : $0.data }
        func stateGradient(_ index: Int) -> [Float]? {
            guard let t = args.gradients[index] else { return nil }
            return batchFirst ? Transpose.permute(t, [1, 0, 2]).data : t.data
        }
        let dLastH = stateGradient(1)
        let dLastC = cell == .lstm ? stateGradient(2) : nil
        var dx = [Float](repeating: 0, count: steps * batch * features)
        var dw = [Float](repeating: 0, count: w.count)
        var dr = [Float](repeating: 0, count: r.count)
        var dbias = [Float](repeating: 0, count: directions * 2 * g)
        var dpeep = [Float](repeating: 0, count: directions * 3 * hidden)
        var dInitialH = [Float](repeating: 0, count: directions * batch * hidden)
        var dInitialC = [Float](repeating: 0, count: directions * batch * hidden)
        for d in 0..<directions {
            let peep = position(.peepholes).map { Array(args.input($0).data[(d * 3 * hidden)..<((d + 1) * 3 * hidden)]) }
            var dh = dLastH.map { Array($0[(d * batch * hidden)..<((d + 1) * batch * hidden)]) } ?? [Float](repeating: 0, count: batch * hidden)
            var dc = dLastC.map { Array($0[(d * batch * hidden)..<((d + 1) * batch * hidden)]) } ?? [Float](repeating: 0, count: batch * hidden)
            // Per step: the pre-activation gradients of every gate [B, G], and the previous states.
            var da = [Float](repeating: 0, count: steps * batch * g)
            var previous = [Float](repeating: 0, count: steps * batch * hidden)
            for t in self.steps(direction: d, length: steps).reversed() {
                var daStep = [Float](repeating: 0, count: batch * g)
                var dRecurrentH = [Float](repeating: 0, count: batch * g)  // GRU with linear-before-reset: d(H Rh + Rbh)
                var dhPrevDirect = [Float](repeating: 0, count: batch * hidden)
                for b in 0..<batch {
                    guard t < lengths[b] else { continue }
                    let s = ((d * steps + t) * batch + b) * savedWidth
                    let o = ((t * directions + d) * batch + b) * hidden
                    for j in 0..<hidden {
                        let dH = dh[b * hidden + j] + (dy?[o + j] ?? 0)
                        switch cell {
                        case .gru(let linearBeforeReset):
                            let (z, rg, candidate, hPrev, recurrent) = (saved[s + j], saved[s + hidden + j], saved[s + 2 * hidden + j],
                                                                        saved[s + 3 * hidden + j], saved[s + 4 * hidden + j])
                            let dCandidate = dH * (1 - z) * (1 - candidate * candidate)
                            daStep[b * g + j] = dH * (hPrev - candidate) * z * (1 - z)
                            daStep[b * g + 2 * hidden + j] = dCandidate
                            dhPrevDirect[b * hidden + j] = dH * z
                            if linearBeforeReset {
                                daStep[b * g + hidden + j] = dCandidate * recurrent * rg * (1 - rg)
                                dRecurrentH[b * g + 2 * hidden + j] = dCandidate * rg
                            }
                            previous[(t * batch + b) * hidden + j] = hPrev
                        case .lstm:
                            let (i, out, f, candidate) = (saved[s + j], saved[s + hidden + j], saved[s + 2 * hidden + j], saved[s + 3 * hidden + j])
                            let (cPrev, cNew, hPrev) = (saved[s + 4 * hidden + j], saved[s + 5 * hidden + j], saved[s + 6 * hidden + j])
                            let tanhC = tanhf(cNew)
                            let daO = dH * tanhC * out * (1 - out)
                            var dC = dc[b * hidden + j] + dH * out * (1 - tanhC * tanhC) + daO * (peep?[hidden + j] ?? 0)
                            let daI = dC * candidate * i * (1 - i)
                            let daF = dC * cPrev * f * (1 - f)
                            let daC = dC * i * (1 - candidate * candidate)
                            dC = dC * f + daI * (peep?[j] ?? 0) + daF * (peep?[2 * hidden + j] ?? 0)
                            dc[b * hidden + j] = dC
                            daStep[b * g + j] = daI
                            daStep[b * g + hidden + j] = daO
                            daStep[b * g + 2 * hidden + j] = daF
                            daStep[b * g + 3 * hidden + j] = daC
                            if peep != nil {
                                dpeep[d * 3 * hidden + j] += daI * cPrev
                                dpeep[d * 3 * hidden + hidden + j] += daO * cNew
                                dpeep[d * 3 * hidden + 2 * hidden + j] += daF * cPrev
                            }
                            previous[(t * batch + b) * hidden + j] = hPrev
                        }
                    }
                }
                if case .gru(false) = cell {
                    // h̃'s pre-activation reads (r ⊙ H_prev) Rh^T: its gradient reaches r and H_prev through Rh.
                    for b in 0..<batch where t < lengths[b] {
                        let s = ((d * steps + t) * batch + b) * savedWidth
                        for k in 0..<hidden {
                            var sum: Float = 0
                            for j in 0..<hidden { sum += daStep[b * g + 2 * hidden + j] * r[d * g * hidden + (2 * hidden + j) * hidden + k] }
                            let (rg, hPrev) = (saved[s + hidden + k], saved[s + 3 * hidden + k])
                            daStep[b * g + hidden + k] = sum * hPrev * rg * (1 - rg)
                            dhPrevDirect[b * hidden + k] += sum * rg
                            for j in 0..<hidden { dr[d * g * hidden + (2 * hidden + j) * hidden + k] += daStep[b * g + 2 * hidden + j] * rg * hPrev }
                        }
                    }
                }
                // The previous hidden state's gradient: direct terms plus every gate's recurrent product.
                var dhPrev = dhPrevDirect
                var recurrentGates = daStep
                if case .gru(let linearBeforeReset) = cell {
                    for b in 0..<batch {
                        for j in 0..<hidden { recurrentGates[b * g + 2 * hidden + j] = linearBeforeReset ? dRecurrentH[b * g + 2 * hidden + j] : 0 }
                    }
                }
                recurrentGates.withUnsafeBufferPointer { ap in
                    r.withUnsafeBufferPointer { rp in
                        dhPrev.withUnsafeMutableBufferPointer { out in
                            BLAS.sgemm(m: batch, n: hidden, k: g, ap.baseAddress!, rp.baseAddress! + d * g * hidden, beta: 1, out.baseAddress!)
                        }
                    }
                }
                for b in 0..<batch where t < lengths[b] {
                    for j in 0..<hidden { dh[b * hidden + j] = dhPrev[b * hidden + j] }
                }
                // Recurrent weights see the recurrent part of each gate; the recurrent bias sits outside the
                // reset gate's product in a plain GRU, so it takes the candidate's whole gradient there.
                let plainGRU = cell == .gru(linearBeforeReset: false)
                for b in 0..<batch where t < lengths[b] {
                    for k in 0..<g {
                        let gradient = recurrentGates[b * g + k]
                        dbias[d * 2 * g + k] += daStep[b * g + k]
                        dbias[d * 2 * g + g + k] += plainGRU && k >= 2 * hidden ? daStep[b * g + k] : gradient
                        guard gradient != 0 else { continue }
                        let row = d * g * hidden + k * hidden
                        for j in 0..<hidden { dr[row + j] += gradient * previous[(t * batch + b) * hidden + j] }
                    }
                }
                da.replaceSubrange((t * batch * g)..<((t + 1) * batch * g), with: daStep)
            }
            for b in 0..<batch {
                for j in 0..<hidden {
                    dInitialH[(d * batch + b) * hidden + j] = dh[b * hidden + j]
                    dInitialC[(d * batch + b) * hidden + j] = dc[b * hidden + j]
                }
            }
            // Input weights and the input, for every step at once.
            da.withUnsafeBufferPointer { ap in
                x.withUnsafeBufferPointer { xp in
                    dw.withUnsafeMutableBufferPointer { out in
                        BLAS.sgemm(transposeA: true, m: g, n: features, k: steps * batch, ap.baseAddress!, xp.baseAddress!, out.baseAddress! + d * g * features)
                    }
                    w.withUnsafeBufferPointer { wp in
                        dx.withUnsafeMutableBufferPointer { out in
                            BLAS.sgemm(m: steps * batch, n: features, k: g, ap.baseAddress!, wp.baseAddress! + d * g * features, beta: 1, out.baseAddress!)
                        }
                    }
                }
            }
        }
        var gradients: [Tensor?] = Array(repeating: nil, count: inputCount)
        if args.wanted[0] {
            let t = Tensor(shape: [steps, batch, features], data: dx)
            gradients[0] = batchFirst ? Transpose.permute(t, [1, 0, 2]) : t
        }
        if args.wanted[1] { gradients[1] = Tensor(shape: args.input(1).shape, data: dw) }
        if args.wanted[2] { gradients[2] = Tensor(shape: args.input(2).shape, data: dr) }
        if let i = position(.bias), args.wanted[i] { gradients[i] = Tensor(shape: args.input(i).shape, data: dbias) }
        if let i = position(.peepholes), args.wanted[i] { gradients[i] = Tensor(shape: args.input(i).shape, data: dpeep) }
        for (slot, values) in [(Optional.initialH, dInitialH), (.initialC, dInitialC)] {
            guard let i = position(slot), args.wanted[i] else { continue }
            let t = Tensor(shape: [directions, batch, hidden], data: values)
            gradients[i] = batchFirst ? Transpose.permute(t, [1, 0, 2]) : t
        }
        return gradients
    }
}
