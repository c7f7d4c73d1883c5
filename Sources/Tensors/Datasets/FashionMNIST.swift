/// Which parts of labelled images a process holds: a model-parallel rank loads only what its nodes read.
public struct ImageParts: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let images = ImageParts(rawValue: 1)
    public static let labels = ImageParts(rawValue: 2)
    public static let all: ImageParts = [.images, .labels]
}

/// Labelled images as the models take them: `images` [count, 1, side, side] normalised, `labels` [count].
/// A part not held (`parts`) is an empty tensor; `count` is the number of examples all the same.
public struct LabeledImages: Sendable {
    public var images: Tensor
    public var labels: Tensor
    public let count: Int
    public let parts: ImageParts

    public init(images: Tensor, labels: Tensor) {
        self.images = images
        self.labels = labels
        count = labels.shape.first ?? 0
        parts = .all
    }

    /// `count` examples of which only `parts` are held.
    public init(count: Int, images: Tensor?, labels: Tensor?) {
        self.count = count
        self.images = images ?? Tensor(shape: [0], data: [])
        self.labels = labels ?? Tensor(shape: [0], data: [])
        parts = ImageParts().union(images == nil ? [] : .images).union(labels == nil ? [] : .labels)
    }

    /// Examples `indices` as one batch.
    public func batch<Indices: Collection<Int>>(_ indices: Indices) -> LabeledImages {
        LabeledImages(count: indices.count, images: parts.contains(.images) ? rows(images, indices) : nil,
                      labels: parts.contains(.labels) ? rows(labels, indices) : nil)
    }

    /// The examples `indices` of `tensor`, whose first dimension is the examples: an image, or one
    /// label (or several: a label per position of a sequence, a target vector) each.
    private func rows<Indices: Collection<Int>>(_ tensor: Tensor, _ indices: Indices) -> Tensor {
        let size = tensor.count / max(1, count)
        var shape = tensor.shape
        shape[0] = indices.count
        var data = [Float]()
        data.reserveCapacity(indices.count * size)
        tensor.data.withUnsafeBufferPointer { all in
            for i in indices { data.append(contentsOf: all[(i * size)..<((i + 1) * size)]) }
        }
        return Tensor(shape: shape, data: data)
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

    /// The training and test sets; `train` and `test` say which parts to read (the others' headers
    /// are still read and checked, for the count).
    public static func load(directory: String = KnownDataset.fashionMNIST.defaultDirectory,
                            trainLimit: Int? = nil, testLimit: Int? = nil,
                            train trainParts: ImageParts = .all, test testParts: ImageParts = .all) throws -> (train: LabeledImages, test: LabeledImages) {
        let dataset = KnownDataset.fashionMNIST
        if let missing = dataset.missingFiles(in: directory).first {
            let path = missing.hasPrefix("/") ? missing : directory + "/" + missing + "[.gz]"
            throw DatasetError.missing(dataset: dataset.rawValue, path: path, debianPackage: dataset.debianPackage)
        }
        func path(_ name: String) -> String { dataset.file(name, in: directory)! }  // present: checked above
        let train = try split(path("train-images-idx3-ubyte"), path("train-labels-idx1-ubyte"), limit: trainLimit, parts: trainParts)
        let test = try split(path("t10k-images-idx3-ubyte"), path("t10k-labels-idx1-ubyte"), limit: testLimit, parts: testParts)
        return (train, test)
    }

    /// One split: images and labels (those of `parts`), checked against each other.
    public static func split(_ imagesPath: String, _ labelsPath: String, limit: Int? = nil,
                             parts: ImageParts = .all) throws -> LabeledImages {
        let images = parts.contains(.images) ? try IDXArray.read(path: imagesPath) : nil
        let labels = parts.contains(.labels) ? try IDXArray.read(path: labelsPath) : nil
        let imageDimensions = try images?.dimensions ?? IDXArray.dimensions(path: imagesPath)
        let labelDimensions = try labels?.dimensions ?? IDXArray.dimensions(path: labelsPath)
        guard imageDimensions.count == 3, imageDimensions[1] == 28, imageDimensions[2] == 28 else {
            throw DatasetError.corrupt(file: imagesPath, reason: "expected 28x28 images, found dimensions \(imageDimensions)")
        }
        guard labelDimensions.count == 1 else {
            throw DatasetError.corrupt(file: labelsPath, reason: "expected a list of labels, found dimensions \(labelDimensions)")
        }
        guard labelDimensions[0] == imageDimensions[0] else {
            throw DatasetError.corrupt(file: labelsPath, reason: "\(labelDimensions[0]) labels for \(imageDimensions[0]) images")
        }
        if let labels, let bad = labels.bytes.firstIndex(where: { $0 >= 10 }) {
            throw DatasetError.corrupt(file: labelsPath, reason: "label \(labels.bytes[bad]) at position \(bad) is not a class 0-9")
        }
        let count = min(limit ?? Int.max, imageDimensions[0])
        let scale = 1 / (255 * pixelStandardDeviation)
        let shift = pixelMean / pixelStandardDeviation
        let pixels = images?.bytes.withUnsafeBufferPointer { source in
            Tensor(shape: [count, 1, 28, 28]) { out in
                for i in 0..<out.count { out[i] = Float(source[i]) * scale - shift }
            }
        }
        return LabeledImages(count: count, images: pixels, labels: labels.map { Tensor(shape: [count], data: $0.bytes[..<count].map { Float($0) }) })
    }
}
