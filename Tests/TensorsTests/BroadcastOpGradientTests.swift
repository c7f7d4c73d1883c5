import Testing
@testable import Tensors

/// The ops models read from ONNX files use, against finite differences (see `checkGradients`).
@Suite struct BroadcastOpGradientTests {
    var data = TestData(seed: 11)

    @Test(arguments: [BroadcastArithmetic.Operator.add, .sub, .mul, .div])
    func arithmeticWithBroadcasting(_ op: BroadcastArithmetic.Operator) {
        var data = TestData(seed: 12)
        // Divisors stay away from zero.
        func right(_ shape: [Int]) -> Tensor { op == .div ? data.uniform(shape, 0.5, 2) : data.uniform(shape) }
        checkGradients(BroadcastArithmetic(op), [data.uniform([2, 3]), right([2, 3])])
        checkGradients(BroadcastArithmetic(op), [data.uniform([2, 3, 4]), right([4])])
        checkGradients(BroadcastArithmetic(op), [data.uniform([2, 1, 4]), right([3, 1])])
        checkGradients(BroadcastArithmetic(op), [data.uniform([3]), right([])])
    }

    @Test func broadcastShapesFollowNumPy() {
        #expect(Broadcast.shape([2, 1, 4], [3, 1]) == [2, 3, 4])
        #expect(Broadcast.shape([5], []) == [5])
        #expect(Broadcast.shape([2, 3], [4]) == nil)
        // A sum over a stretched input's dimensions, checked by hand.
        let g = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        #expect(Broadcast.reduce(g, to: [3]).data == [5, 7, 9])
        #expect(Broadcast.reduce(g, to: [2, 1]).data == [6, 15])
    }

    @Test mutating func gemmInEveryTransposition() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = ta ? data.uniform([4, 3]) : data.uniform([3, 4])
            let b = tb ? data.uniform([5, 4]) : data.uniform([4, 5])
            checkGradients(Gemm(transposeA: ta, transposeB: tb, alpha: 0.7, beta: 1.3), [a, b, data.uniform([5])])
            checkGradients(Gemm(transposeA: ta, transposeB: tb, hasBias: false), [a, b])
        }
        checkGradients(Gemm(transposeB: true), [data.uniform([3, 4]), data.uniform([5, 4]), data.uniform([3, 1])])
    }

    @Test mutating func batchedMatMul() {
        checkGradients(BatchedMatMul(), [data.uniform([2, 3, 4]), data.uniform([4, 5])])
        checkGradients(BatchedMatMul(), [data.uniform([2, 3, 4]), data.uniform([2, 4, 5])])
        // Broadcast batches: the gradient of the shared side sums over them.
        checkGradients(BatchedMatMul(), [data.uniform([2, 2, 3, 4]), data.uniform([1, 2, 4, 2])])
        checkGradients(BatchedMatMul(), [data.uniform([1, 3, 4]), data.uniform([3, 4, 2])])
    }

    @Test mutating func batchNormalizationInTraining() {
        let running = [data.uniform([3]), data.uniform([3], 0.5, 1.5)]
        checkGradients(BatchNormalization(), [data.uniform([4, 3, 2, 2]), data.uniform([3], 0.5, 1.5), data.uniform([3])] + running,
                       epsilon: 1e-2, tolerance: 3e-3)
        checkGradients(BatchNormalization(), [data.uniform([5, 3]), data.uniform([3], 0.5, 1.5), data.uniform([3])] + running,
                       epsilon: 1e-2, tolerance: 3e-3)
    }

    @Test mutating func batchNormalizationStatistics() {
        let x = Tensor(shape: [2, 1, 2], data: [1, 2, 3, 6])
        let op = BatchNormalization(epsilon: 0)
        let outputs = op.forward([x, Tensor(shape: [1], data: [1]), Tensor(shape: [1], data: [0]),
                                  Tensor(shape: [1], data: [0]), Tensor(shape: [1], data: [1])], context: ExecutionContext(training: true))
        // Mean 3; squared deviations 4, 1, 0, 9: biased variance 3.5, unbiased 14/3.
        #expect(outputs[1].data == [3])
        #expect(abs(outputs[2].data[0] - 14.0 / 3) < 1e-6)
        #expect(abs(outputs[0].data[0] - (1 - 3) / Float(3.5).squareRoot()) < 1e-6)
        // In inference the running statistics normalise.
        let inference = op.forward([x, Tensor(shape: [1], data: [2]), Tensor(shape: [1], data: [1]),
                                    Tensor(shape: [1], data: [1]), Tensor(shape: [1], data: [4])], context: ExecutionContext(training: false))
        // 2 (x - 1) / sqrt(4) + 1 = x.
        let expected: [Float] = [1, 2, 3, 6]
        #expect(inference[0].data == expected)
    }

    @Test mutating func meanSquaredError() {
        checkGradients(MeanSquaredError(), [data.uniform([3, 2]), data.uniform([3, 2])])
        let loss = MeanSquaredError().forward([Tensor(shape: [2], data: [1, 2]), Tensor(shape: [2], data: [0, 0])], context: ExecutionContext())
        #expect(loss[0].data == [2.5])
    }
}

/// The transformer encoder's ops against finite differences.
@Suite struct AttentionOpGradientTests {
    var data = TestData(seed: 21)

    @Test mutating func transpose() {
        checkGradients(Transpose([0, 2, 1, 3]), [data.uniform([2, 3, 4, 2])])
        checkGradients(Transpose([2, 0, 1]), [data.uniform([2, 3, 4])])
        let x = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        #expect(Transpose([1, 0]).forward([x], context: ExecutionContext())[0].data == [1, 4, 2, 5, 3, 6])
    }

    @Test mutating func softmax() {
        checkGradients(Softmax(axis: -1), [data.uniform([2, 3, 5], -2, 2)])
        checkGradients(Softmax(axis: 1), [data.uniform([2, 4, 3], -2, 2)])
    }

    @Test mutating func layerNormalization() {
        checkGradients(LayerNormalization(), [data.uniform([3, 4, 6]), data.uniform([6], 0.5, 1.5), data.uniform([6])],
                       tolerance: 3e-3)
        checkGradients(LayerNormalization(axis: 1, hasBias: false), [data.uniform([3, 2, 4]), data.uniform([2, 4], 0.5, 1.5)],
                       tolerance: 3e-3)
    }

    @Test mutating func geluAndErf() {
        checkGradients(GELU(), [data.uniform([4, 5], -3, 3)])
        checkGradients(GELU(tanhApproximation: true), [data.uniform([4, 5], -3, 3)])
        checkGradients(Erf(), [data.uniform([4, 5], -2, 2)])
    }

    @Test mutating func selectAndSlice() {
        checkGradients(Select(axis: 0, indices: [1], indicesShape: []), [data.uniform([3, 2, 4])])
        checkGradients(Select(axis: -1, indices: [2, 0, 2], indicesShape: [3]), [data.uniform([2, 3, 4])])
        checkGradients(StridedSlice(starts: [1], ends: [Int.max], axes: [1], steps: [1]), [data.uniform([2, 4, 3])])
        checkGradients(StridedSlice(starts: [-1, 0], ends: [Int.min, 3], axes: [0, 2], steps: [-2, 2]), [data.uniform([5, 2, 4])])
        let x = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        #expect(StridedSlice(starts: [2], ends: [0], axes: [1], steps: [-1]).forward([x], context: ExecutionContext())[0].data == [3, 2, 6, 5])
    }

    @Test mutating func reduceMean() {
        checkGradients(ReduceMean(axes: [1]), [data.uniform([2, 3, 4])])
        checkGradients(ReduceMean(axes: [1, -1], keepDimensions: false), [data.uniform([2, 3, 4])])
        let x = Tensor(shape: [2, 2], data: [1, 2, 3, 5])
        #expect(ReduceMean(axes: [1], keepDimensions: false).forward([x], context: ExecutionContext())[0].data == [1.5, 4])
    }
}

/// ONNX's GRU and LSTM layers against finite differences, with every optional input.
@Suite struct RecurrentLayerGradientTests {
    typealias Slot = RecurrentLayer.Optional

    func inputs(_ op: RecurrentLayer, steps: Int, batch: Int, features: Int, lengths: [Int]? = nil, data: inout TestData) -> [Tensor] {
        let (h, d, g) = (op.hidden, op.directions, op.gates * op.hidden)
        var inputs = [data.uniform(op.batchFirst ? [batch, steps, features] : [steps, batch, features]),
                      data.uniform([d, g, features], -0.6, 0.6), data.uniform([d, g, h], -0.6, 0.6)]
        for slot in Slot.allCases where op.present.contains(slot) {
            switch slot {
            case .bias: inputs.append(data.uniform([d, 2 * g], -0.3, 0.3))
            case .sequenceLengths: inputs.append(Tensor(shape: [batch], data: (lengths ?? Array(repeating: steps, count: batch)).map(Float.init)))
            case .initialH, .initialC: inputs.append(data.uniform(op.batchFirst ? [batch, d, h] : [d, batch, h], -0.5, 0.5))
            case .peepholes: inputs.append(data.uniform([d, 3 * h], -0.5, 0.5))
            }
        }
        return inputs
    }

    @Test(arguments: [false, true])
    func gru(_ linearBeforeReset: Bool) {
        var data = TestData(seed: 31)
        let plain = RecurrentLayer(cell: .gru(linearBeforeReset: linearBeforeReset), hidden: 3)
        checkGradients(plain, inputs(plain, steps: 3, batch: 2, features: 2, data: &data), tolerance: 3e-3)
        let full = RecurrentLayer(cell: .gru(linearBeforeReset: linearBeforeReset), hidden: 3, directions: 2,
                                  present: [.bias, .sequenceLengths, .initialH])
        checkGradients(full, inputs(full, steps: 4, batch: 3, features: 2, lengths: [4, 2, 1], data: &data), tolerance: 3e-3)
        let reversed = RecurrentLayer(cell: .gru(linearBeforeReset: linearBeforeReset), hidden: 2, reverse: true, batchFirst: true,
                                      present: [.bias, .initialH])
        checkGradients(reversed, inputs(reversed, steps: 3, batch: 2, features: 3, data: &data), tolerance: 3e-3)
    }

    @Test func lstm() {
        var data = TestData(seed: 32)
        let plain = RecurrentLayer(cell: .lstm, hidden: 3)
        checkGradients(plain, inputs(plain, steps: 3, batch: 2, features: 2, data: &data), tolerance: 3e-3)
        let full = RecurrentLayer(cell: .lstm, hidden: 2, directions: 2, present: [.bias, .sequenceLengths, .initialH, .initialC, .peepholes])
        checkGradients(full, inputs(full, steps: 4, batch: 3, features: 2, lengths: [3, 4, 2], data: &data), tolerance: 3e-3)
        let batchFirst = RecurrentLayer(cell: .lstm, hidden: 2, reverse: true, batchFirst: true, present: [.bias, .initialC])
        checkGradients(batchFirst, inputs(batchFirst, steps: 3, batch: 2, features: 2, data: &data), tolerance: 3e-3)
    }
}
