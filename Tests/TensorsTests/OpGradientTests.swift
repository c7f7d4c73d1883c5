import Testing
@testable import Tensors

@Suite struct OpGradientTests {
    var data = TestData()

    @Test mutating func matmul() {
        checkGradients(MatMul(), [data.uniform([3, 4]), data.uniform([4, 5])])
        // Trailing dimensions of the input are flattened.
        checkGradients(MatMul(), [data.uniform([2, 1, 4]), data.uniform([4, 3])])
    }

    @Test mutating func biasAdd() {
        checkGradients(BiasAdd(), [data.uniform([3, 4]), data.uniform([4])])
        checkGradients(BiasAdd(), [data.uniform([2, 3, 2, 2]), data.uniform([3])])
    }

    @Test mutating func add() {
        checkGradients(Add(), [data.uniform([2, 3]), data.uniform([2, 3])])
    }

    @Test mutating func conv2d() {
        checkGradients(Conv2D(), [data.uniform([2, 2, 5, 5]), data.uniform([3, 2, 3, 3])])
        checkGradients(Conv2D(stride: 2, padding: 1), [data.uniform([1, 2, 5, 4]), data.uniform([2, 2, 3, 3])])
        checkGradients(Conv2D(padding: 2), [data.uniform([2, 1, 4, 4]), data.uniform([2, 1, 5, 5])])
    }

    @Test mutating func pooling() {
        checkGradients(MaxPool2D(kernel: 2), [data.distinct([2, 2, 4, 4])], epsilon: 1e-3)
        checkGradients(MaxPool2D(kernel: 3, stride: 1, padding: 1), [data.distinct([1, 2, 4, 5])], epsilon: 1e-3)
        checkGradients(AvgPool2D(kernel: 2), [data.uniform([2, 2, 4, 4])])
        checkGradients(AvgPool2D(kernel: 3, stride: 2, padding: 1), [data.uniform([1, 2, 5, 5])])
    }

    /// 2x2 windows at stride 2 on an odd-sized plane (the last row and column are left out) with
    /// ties: each window's first maximum wins and takes the gradient.
    @Test func halvingMaxPoolByHand() {
        let x = Tensor(shape: [1, 1, 3, 5], data: [1, 5, 5, 2, 9,
                                                   5, 0, 3, 5, 9,
                                                   7, 7, 7, 7, 7])
        let pool = MaxPool2D(kernel: 2)
        let y = pool.forward([x], context: ExecutionContext())[0]
        #expect(y.shape == [1, 1, 1, 2])
        #expect(y.data == [5, 5])
        let dx = pool.backward(Backprop(inputs: [x], outputs: [y], gradients: [Tensor(shape: [1, 1, 1, 2], data: [1, 10])],
                                        wanted: [true]))[0]
        #expect(dx?.data == [0, 1, 10, 0, 0,
                             0, 0, 0, 0, 0,
                             0, 0, 0, 0, 0])
    }

    @Test mutating func activations() {
        checkGradients(ReLU(), [data.awayFromZero([3, 5])])
        checkGradients(Sigmoid(), [data.uniform([3, 5], -3, 3)])
        checkGradients(Tanh(), [data.uniform([3, 5], -2, 2)])
    }

    @Test mutating func softmaxCrossEntropy() {
        checkGradients(SoftmaxCrossEntropy(), [data.uniform([4, 6], -2, 2), data.indices([4], below: 6)])
    }

    @Test mutating func embedding() {
        // Token 3 appears twice, so its row's gradient is a sum.
        checkGradients(Embedding(vocabulary: 7), [Tensor(shape: [2, 3], data: [3, 0, 6, 3, 1, 1]), data.uniform([7, 4])])
    }

    @Test mutating func gruCell() {
        let (batch, inputs, hidden) = (2, 3, 4)
        checkGradients(GRUCell(), [data.uniform([batch, inputs]), data.uniform([batch, hidden]),
                                   data.uniform([inputs, 3 * hidden]), data.uniform([hidden, 3 * hidden]),
                                   data.uniform([3 * hidden]), data.uniform([3 * hidden])])
    }

    @Test mutating func concatSplitReshape() {
        checkGradients(Concat(axis: 1, inputCount: 3), [data.uniform([2, 1, 3]), data.uniform([2, 2, 3]), data.uniform([2, 1, 3])])
        checkGradients(Concat(axis: 0, inputCount: 2), [data.uniform([1, 4]), data.uniform([2, 4])])
        checkGradients(Split(axis: 1, sizes: [1, 2, 1]), [data.uniform([2, 4, 3])])
        checkGradients(Reshape.flatten(), [data.uniform([2, 3, 2, 2])])
        checkGradients(Reshape([-1, 3]), [data.uniform([2, 2, 3])])
    }

    @Test mutating func dropout() {
        let context = ExecutionContext(training: true, step: 3, seed: 5, nodeName: "fwd/dropout")
        checkGradients(Dropout(rate: 0.5), [data.uniform([4, 6])], context: context)
        // The mask is a function of (seed, node, step): the same again, different at the next step.
        let x = data.uniform([64])
        let first = Dropout(rate: 0.5).forward([x], context: context)[1]
        #expect(Dropout(rate: 0.5).forward([x], context: context)[1] == first)
        var next = context
        next.step += 1
        #expect(Dropout(rate: 0.5).forward([x], context: next)[1] != first)
        // Kept elements are scaled by 1 / (1 - rate); inference leaves the input alone.
        #expect(Set(first.data) == [0, 2])
        #expect(Dropout(rate: 0.5).forward([x], context: ExecutionContext(training: false))[0] == x)
    }

    @Test func forwardValuesByHand() {
        // 2x2 input, 2x2 filter of ones, padding 1: every output sums the pixels its window covers.
        let x = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        let y = Conv2D(padding: 1).forward([x, Tensor(shape: [1, 1, 2, 2], data: [1, 1, 1, 1])], context: ExecutionContext())[0]
        #expect(y.shape == [1, 1, 3, 3])
        #expect(y.data == [1, 3, 2, 4, 10, 6, 3, 7, 4])
        #expect(MaxPool2D(kernel: 2).forward([x], context: ExecutionContext())[0].data == [4])
        #expect(AvgPool2D(kernel: 2).forward([x], context: ExecutionContext())[0].data == [2.5])
        // Uniform logits over 4 classes: the loss is log 4.
        let loss = SoftmaxCrossEntropy().forward([Tensor(zeros: [2, 4]), Tensor(shape: [2], data: [1, 3])], context: ExecutionContext())[0]
        #expect(abs(loss.data[0] - Float(1.3862944)) < 1e-6)
        let product = MatMul().forward([Tensor(shape: [1, 2], data: [1, 2]), Tensor(shape: [2, 2], data: [3, 4, 5, 6])], context: ExecutionContext())[0]
        #expect(product.data == [13, 16])
    }
}
