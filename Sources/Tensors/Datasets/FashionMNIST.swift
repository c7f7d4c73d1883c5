/// Labelled images as the models take them: `images` [count, 1, side, side] normalised, `labels` [count].
public struct LabeledImages: Sendable {
    public var images: Tensor
    public var labels: Tensor
    public var count: Int { labels.count }

    public init(images: Tensor, labels: Tensor) {
        self.images = images
        self.labels = labels
    }

    /// Examples `indices` as one batch.
    public func batch<Indices: Collection<Int>>(_ indices: Indices) -> LabeledImages {
        let size = images.count / max(1, count)
        var shape = images.shape
        shape[0] = indices.count
        var pixels = [Float]()
        pixels.reserveCapacity(indices.count * size)
        images.data.withUnsafeBufferPointer { all in
            for i in indices { pixels.append(contentsOf: all[(i * size)..<((i + 1) * size)]) }
        }
        return LabeledImages(images: Tensor(shape: shape, data: pixels),
                             labels: Tensor(shape: [indices.count], data: indices.map { labels.data[$0] }))
    }

    /// The first `limit` examples.
    public func prefix(_ limit: Int) -> LabeledImages {
        limit < count ? batch(0..<limit) : self
    }
}

/// Zalando's Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 28x28 grey images of clothing in 10 classes,
/// 60,000 for training and 10,000 for testing, as Debian's dataset-fashion-mnist installs them.
public enum FashionMNIST {
    /// Pixel mean and standard deviation of the training set (values in [0, 1]), used to standardise.
    public static let pixelMean: Float = 0.2860
    public static let pixelStandardDeviation: Float = 0.3530
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public static func load(directory: String = KnownDataset.fashionMNIST.defaultDirectory,
                            trainLimit: Int? = nil, testLimit: Int? = nil) throws -> (train: LabeledImages, test: LabeledImages) {
        let dataset = KnownDataset.fashionMNIST
        if let missing = dataset.missingFiles(in: directory).first {
            let path = missing.hasPrefix("/") ? missing : directory + "/" + missing + "[.gz]"
            throw DatasetError.missing(dataset: dataset.rawValue, path: path, debianPackage: dataset.debianPackage)
        }
        func path(_ name: String) -> String { dataset.file(name, in: directory)! }  // present: checked above
        let train = try split(path("train-images-idx3-ubyte"), path("train-labels-idx1-ubyte"), limit: trainLimit)
        let test = try split(path("t10k-images-idx3-ubyte"), path("t10k-labels-idx1-ubyte"), limit: testLimit)
        return (train, test)
    }

    /// One split: images and labels, checked against each other.
    public static func split(_ imagesPath: String, _ labelsPath: String, limit: Int? = nil) throws -> LabeledImages {
        let images = try IDXArray.read(path: imagesPath)
        let labels = try IDXArray.read(path: labelsPath)
        guard images.dimensions.count == 3, images.dimensions[1] == 28, images.dimensions[2] == 28 else {
            throw DatasetError.corrupt(file: imagesPath, reason: "expected 28x28 images, found dimensions \(images.dimensions)")
        }
        guard labels.dimensions.count == 1 else {
            throw DatasetError.corrupt(file: labelsPath, reason: "expected a list of labels, found dimensions \(labels.dimensions)")
        }
        guard labels.dimensions[0] == images.dimensions[0] else {
            throw DatasetError.corrupt(file: labelsPath, reason: "\(labels.dimensions[0]) labels for \(images.dimensions[0]) images")
        }
        if let bad = labels.bytes.firstIndex(where: { $0 >= 10 }) {
            throw DatasetError.corrupt(file: labelsPath, reason: "label \(labels.bytes[bad]) at position \(bad) is not a class 0-9")
        }
        let count = min(limit ?? Int.max, images.dimensions[0])
        let scale = 1 / (255 * pixelStandardDeviation)
        let shift = pixelMean / pixelStandardDeviation
        let pixels = images.bytes.withUnsafeBufferPointer { source in
            Tensor(shape: [count, 1, 28, 28]) { out in
                for i in 0..<out.count { out[i] = Float(source[i]) * scale - shift }
            }
        }
        return LabeledImages(images: pixels, labels: Tensor(shape: [count], data: labels.bytes[..<count].map { Float($0) }))
    }
}
