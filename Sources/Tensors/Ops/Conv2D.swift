/// 2-D convolution of NCHW images with [out, in, kh, kw] filters, by im2col and one sgemm per call.
///
/// im2col lays every receptive field of the whole batch out as a column of a
/// [in*kh*kw, batch*outH*outW] matrix, so the convolution is one large matrix product (efficient
/// in BLAS), at the price of that matrix as scratch memory. Backward rebuilds it instead of keeping it.
public struct Conv2D: Operation {
    public var stride: Int
    public var padding: Int
    public var kind: String { "conv2d" }
    public var inputCount: Int { 2 }

    public init(stride: Int = 1, padding: Int = 0) {
        self.stride = stride
        self.padding = padding
    }

    struct Geometry {
        var batch, channels, height, width, filters, kh, kw, outH, outW: Int
        var patch: Int { channels * kh * kw }
        var positions: Int { outH * outW }
        var columns: Int { batch * positions }
    }

    func geometry(_ x: [Int], _ w: [Int]) -> Geometry {
        precondition(x.count == 4 && w.count == 4 && x[1] == w[1], "conv2d: input \(x) does not fit filters \(w)")
        let outH = (x[2] + 2 * padding - w[2]) / stride + 1
        let outW = (x[3] + 2 * padding - w[3]) / stride + 1
        precondition(outH > 0 && outW > 0, "conv2d: filters \(w) larger than padded input \(x)")
        return Geometry(batch: x[0], channels: x[1], height: x[2], width: x[3], filters: w[0],
                        kh: w[2], kw: w[3], outH: outH, outW: outW)
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (x, w) = (inputs[0], inputs[1])
        let g = geometry(x.shape, w.shape)
        let columns = im2col(x, g)
        var product = [Float](repeating: 0, count: g.filters * g.columns)  // [filters, batch*positions]
        w.data.withUnsafeBufferPointer { wp in
            columns.withUnsafeBufferPointer { cp in
                product.withUnsafeMutableBufferPointer { pp in
                    BLAS.sgemm(m: g.filters, n: g.columns, k: g.patch, wp.baseAddress!, cp.baseAddress!, pp.baseAddress!)
                }
            }
        }
        return [product.withUnsafeBufferPointer { pp in
            Tensor(shape: [g.batch, g.filters, g.outH, g.outW]) { out in  // [f, n, p] -> [n, f, p]
                for n in 0..<g.batch {
                    for f in 0..<g.filters {
                        let src = (f * g.batch + n) * g.positions
                        let dst = (n * g.filters + f) * g.positions
                        for p in 0..<g.positions { out[dst + p] = pp[src + p] }
                    }
                }
            }
        }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return [nil, nil] }
        let (x, w) = (args.input(0), args.input(1))
        let g = geometry(x.shape, w.shape)
        // dY as [filters, batch*positions], the layout of the forward product.
        let dyColumns = [Float](unsafeUninitializedCapacity: dy.count) { buffer, initialized in
            dy.data.withUnsafeBufferPointer { gp in
                for n in 0..<g.batch {
                    for f in 0..<g.filters {
                        let src = (n * g.filters + f) * g.positions
                        let dst = (f * g.batch + n) * g.positions
                        for p in 0..<g.positions { buffer[dst + p] = gp[src + p] }
                    }
                }
            }
            initialized = dy.count
        }
        var dw: Tensor?
        var dx: Tensor?
        if args.wanted[1] {
            let columns = im2col(x, g)
            dw = dyColumns.withUnsafeBufferPointer { dp in
                columns.withUnsafeBufferPointer { cp in
                    Tensor(shape: w.shape) { out in  // dW = dY cols^T
                        BLAS.sgemm(transposeB: true, m: g.filters, n: g.patch, k: g.columns,
                                   dp.baseAddress!, cp.baseAddress!, out.baseAddress!)
                    }
                }
            }
        }
        if args.wanted[0] {
            var dColumns = [Float](repeating: 0, count: g.patch * g.columns)
            w.data.withUnsafeBufferPointer { wp in
                dyColumns.withUnsafeBufferPointer { dp in
                    dColumns.withUnsafeMutableBufferPointer { dcp in  // dcols = W^T dY
                        BLAS.sgemm(transposeA: true, m: g.patch, n: g.columns, k: g.filters,
                                   wp.baseAddress!, dp.baseAddress!, dcp.baseAddress!)
                    }
                }
            }
            dx = col2im(dColumns, g)
        }
        return [dx, dw]
    }

    /// Walks every (patch row, image, output row, output column) with the input pixel it reads, or
    /// nil in the padding.
    @inline(__always)
    private func forEachTap(_ g: Geometry, _ body: (_ column: Int, _ pixel: Int?) -> Void) {
        var column = 0
        for c in 0..<g.channels {
            for ki in 0..<g.kh {
                for kj in 0..<g.kw {
                    for n in 0..<g.batch {
                        let plane = (n * g.channels + c) * g.height
                        for oh in 0..<g.outH {
                            let ih = oh * stride - padding + ki
                            let rowInside = ih >= 0 && ih < g.height
                            for ow in 0..<g.outW {
                                let iw = ow * stride - padding + kj
                                body(column, rowInside && iw >= 0 && iw < g.width ? (plane + ih) * g.width + iw : nil)
                                column += 1
                            }
                        }
                    }
                }
            }
        }
    }

    func im2col(_ x: Tensor, _ g: Geometry) -> [Float] {
        [Float](unsafeUninitializedCapacity: g.patch * g.columns) { buffer, initialized in
            x.data.withUnsafeBufferPointer { xp in
                forEachTap(g) { column, pixel in buffer[column] = pixel.map { xp[$0] } ?? 0 }
            }
            initialized = g.patch * g.columns
        }
    }

    func col2im(_ columns: [Float], _ g: Geometry) -> Tensor {
        var dx = Tensor(zeros: [g.batch, g.channels, g.height, g.width])
        dx.data.withUnsafeMutableBufferPointer { out in
            columns.withUnsafeBufferPointer { cp in
                forEachTap(g) { column, pixel in
                    if let pixel { out[pixel] += cp[column] }
                }
            }
        }
        return dx
    }

    public func forwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int {
        let g = geometry(inputShapes[0], inputShapes[1])
        return (g.patch + g.filters) * g.columns * 4
    }

    public func backwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int {
        let g = geometry(inputShapes[0], inputShapes[1])
        return (2 * g.patch + g.filters) * g.columns * 4
    }
}
