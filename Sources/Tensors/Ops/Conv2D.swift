/// 2-D convolution of NCHW images with [out, in, kh, kw] filters, by im2col and sgemm.
///
/// im2col lays every receptive field of a group of images out as a column of a
/// [in*kh*kw, images*outH*outW] matrix, so the convolution is one large matrix product (efficient
/// in BLAS). Images go in groups so that matrix stays near `columnBudget` floats: bounded scratch
/// memory that the allocator reuses from step to step. Backward rebuilds it instead of keeping it.
public struct Conv2D: Operation {
    public var stride: Int
    public var padding: Int
    public var kind: String { "conv2d" }
    public var inputCount: Int { 2 }
    static let columnBudget = 1 << 20

    public init(stride: Int = 1, padding: Int = 0) {
        self.stride = stride
        self.padding = padding
    }

    struct Geometry {
        var batch, channels, height, width, filters, kh, kw, outH, outW: Int
        var patch: Int { channels * kh * kw }
        var positions: Int { outH * outW }

        /// Groups of images whose im2col matrix fits the budget.
        var groups: [Range<Int>] {
            let size = max(1, min(batch, Conv2D.columnBudget / max(1, patch * positions)))
            return Swift.stride(from: 0, to: batch, by: size).map { $0..<min($0 + size, batch) }
        }
    }

    func geometry(_ x: [Int], _ w: [Int]) -> Geometry {
        precondition(x.count == 4 && w.count == 4 && x[1] == w[1], "conv2d: input \(x) does not fit filters \(w)")
        let outH = (x[2] + 2 * padding - w[2]) / stride + 1
        let outW = (x[3] + 2 * padding - w[3]) / stride + 1
        precondition(outH > 0 && outW > 0, "conv2d: filters \(w) larger than padded input \(x)")
        return Geometry(batch: x[0], channels: x[1], height: x[2], width: x[3], filters: w[0],
                        kh: w[2], kw: w[3], outH: outH, outW: outW)
    }

    public func outputShapes(_ inputShapes: [[Int]]) throws(ShapeMismatch) -> [[Int]] {
        let (x, w) = (inputShapes[0], inputShapes[1])
        guard x.count == 4, w.count == 4, x[1] == w[1] else { throw ShapeMismatch(kind, "input \(x) does not fit filters \(w)") }
        let outH = (x[2] + 2 * padding - w[2]) / stride + 1
        let outW = (x[3] + 2 * padding - w[3]) / stride + 1
        guard outH > 0, outW > 0 else { throw ShapeMismatch(kind, "filters \(w) larger than padded input \(x)") }
        return [[x[0], w[0], outH, outW]]
    }

    public func forward(_ inputs: [Tensor], context: ExecutionContext) -> [Tensor] {
        let (x, w) = (inputs[0], inputs[1])
        let g = geometry(x.shape, w.shape)
        return [Tensor(shape: [g.batch, g.filters, g.outH, g.outW]) { out in
            for images in g.groups {
                let columns = im2col(x, g, images)
                let width = images.count * g.positions
                // [filters, images*positions], then each image's block moves to [image, filter, position].
                let product = [Float](unsafeUninitializedCapacity: g.filters * width) { buffer, initialized in
                    w.data.withUnsafeBufferPointer { wp in
                        columns.withUnsafeBufferPointer { cp in
                            BLAS.sgemm(m: g.filters, n: width, k: g.patch, wp.baseAddress!, cp.baseAddress!, buffer.baseAddress!)
                        }
                    }
                    initialized = g.filters * width
                }
                product.withUnsafeBufferPointer { pp in
                    for (i, n) in images.enumerated() {
                        for f in 0..<g.filters {
                            let source = pp.baseAddress! + f * width + i * g.positions
                            (out.baseAddress! + (n * g.filters + f) * g.positions).update(from: source, count: g.positions)
                        }
                    }
                }
            }
        }]
    }

    public func backward(_ args: Backprop) -> [Tensor?] {
        guard let dy = args.gradients[0] else { return [nil, nil] }
        let (x, w) = (args.input(0), args.input(1))
        let g = geometry(x.shape, w.shape)
        var dw = args.wanted[1] ? Tensor(zeros: w.shape) : nil
        var dx = args.wanted[0] ? Tensor(zeros: x.shape) : nil
        for images in g.groups {
            let width = images.count * g.positions
            // This group's dY as [filters, images*positions], the layout of the forward product.
            let dyColumns = [Float](unsafeUninitializedCapacity: g.filters * width) { buffer, initialized in
                dy.data.withUnsafeBufferPointer { gp in
                    for (i, n) in images.enumerated() {
                        for f in 0..<g.filters {
                            (buffer.baseAddress! + f * width + i * g.positions)
                                .update(from: gp.baseAddress! + (n * g.filters + f) * g.positions, count: g.positions)
                        }
                    }
                }
                initialized = g.filters * width
            }
            if dw != nil {
                let columns = im2col(x, g, images)
                dyColumns.withUnsafeBufferPointer { dp in
                    columns.withUnsafeBufferPointer { cp in
                        dw!.data.withUnsafeMutableBufferPointer { out in  // dW += dY cols^T
                            BLAS.sgemm(transposeB: true, m: g.filters, n: g.patch, k: width,
                                       dp.baseAddress!, cp.baseAddress!, beta: 1, out.baseAddress!)
                        }
                    }
                }
            }
            if dx != nil {
                let dColumns = [Float](unsafeUninitializedCapacity: g.patch * width) { buffer, initialized in
                    w.data.withUnsafeBufferPointer { wp in
                        dyColumns.withUnsafeBufferPointer { dp in  // dcols = W^T dY
                            BLAS.sgemm(transposeA: true, m: g.patch, n: width, k: g.filters,
                                       wp.baseAddress!, dp.baseAddress!, buffer.baseAddress!)
                        }
                    }
                    initialized = g.patch * width
                }
                col2im(dColumns, g, images, into: &dx!)
            }
        }
        return [dx, dw]
    }

    /// Visits the columns matrix row by row (one row per channel and filter tap) and, within a row,
    /// each image's output rows: `body(columnStart, inputStart, validColumns)` covers the output
    /// columns that read inside the image; the rest of the output row reads padding.
    @inline(__always)
    private func forEachRowSegment(_ g: Geometry, _ images: Range<Int>,
                                   _ body: (_ column: Int, _ pixel: Int, _ valid: Range<Int>, _ rowInside: Bool) -> Void) {
        var column = 0
        for c in 0..<g.channels {
            for ki in 0..<g.kh {
                for kj in 0..<g.kw {
                    // Output columns ow with 0 <= ow*stride - padding + kj < width.
                    let first = max(0, (padding - kj + stride - 1) / stride)
                    let last = min(g.outW, (g.width - 1 + padding - kj) / stride + 1)
                    let valid = first..<max(first, last)
                    for n in images {
                        let plane = (n * g.channels + c) * g.height
                        for oh in 0..<g.outH {
                            let ih = oh * stride - padding + ki
                            let inside = ih >= 0 && ih < g.height
                            body(column, inside ? (plane + ih) * g.width - padding + kj : 0, valid, inside)
                            column += g.outW
                        }
                    }
                }
            }
        }
    }

    func im2col(_ x: Tensor, _ g: Geometry, _ images: Range<Int>) -> [Float] {
        let count = g.patch * images.count * g.positions
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            let out = buffer.baseAddress!
            x.data.withUnsafeBufferPointer { xp in
                let source = xp.baseAddress!
                forEachRowSegment(g, images) { column, pixel, valid, inside in
                    let row = out + column
                    guard inside else { row.update(repeating: 0, count: g.outW); return }
                    if valid.lowerBound > 0 { row.update(repeating: 0, count: valid.lowerBound) }
                    if stride == 1 {  // a run of the input row: one copy
                        (row + valid.lowerBound).update(from: source + pixel + valid.lowerBound, count: valid.count)
                    } else {
                        for ow in valid { row[ow] = source[pixel + ow * stride] }
                    }
                    if valid.upperBound < g.outW { (row + valid.upperBound).update(repeating: 0, count: g.outW - valid.upperBound) }
                }
            }
            initialized = count
        }
    }

    func col2im(_ columns: [Float], _ g: Geometry, _ images: Range<Int>, into dx: inout Tensor) {
        let stride = stride
        dx.data.withUnsafeMutableBufferPointer { out in
            columns.withUnsafeBufferPointer { cp in
                let (out, cp) = (out.baseAddress!, cp.baseAddress!)
                forEachRowSegment(g, images) { column, pixel, valid, inside in
                    guard inside else { return }
                    if stride == 1 {  // a run of the input row, added element by element (vectorised)
                        let (target, source) = (out + pixel, cp + column)
                        for ow in valid { target[ow] += source[ow] }
                    } else {
                        for ow in valid { out[pixel + ow * stride] += cp[column + ow] }
                    }
                }
            }
        }
    }

    public func forwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int {
        let g = geometry(inputShapes[0], inputShapes[1])
        let width = (g.groups.first?.count ?? 0) * g.positions
        return (g.patch + g.filters) * width * 4
    }

    public func backwardTemporaryBytes(_ inputShapes: [[Int]]) -> Int {
        let g = geometry(inputShapes[0], inputShapes[1])
        let width = (g.groups.first?.count ?? 0) * g.positions
        return (2 * g.patch + g.filters) * width * 4
    }
}
