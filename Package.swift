// swift-tools-version:6.0
import PackageDescription

// System libraries come from Debian through pkg-config; no unsafe flags are needed.
let package = Package(
    name: "fedbaechi",
    products: [
        .executable(name: "fedbaechi", targets: ["fedbaechi"]),
        .library(name: "MPI", targets: ["MPI"]),
        .library(name: "Placement", targets: ["Placement"]),
        .library(name: "Federated", targets: ["Federated"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Runtime", targets: ["Runtime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Reads ONNX models; the message types are generated once and committed (Sources/ONNXImport/Generated).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // Federated secrets: X25519 key agreement, HKDF, and the ChaCha20 keystream masks and duals come from.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // The only code that includes <mpi.h>: handle getters and thin wrappers.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // COIN-OR CLP: the linear program behind m-SCT.
        .systemLibrary(
            name: "CClp",
            pkgConfig: "clp",
            providers: [.apt(["coinor-libclp-dev"])]
        ),
        // zlib: the datasets Debian ships are gzip'd.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // What several modules need, defined once: exit statuses and the user-facing error protocol,
        // the seeded generator, medians, byte sizes and durations, union-find, the min-heap, the
        // optimizer vocabulary and a parameter's memory, JSON lines.
        .target(name: "Basics"),
        .target(name: "MPI", dependencies: ["Basics", "CMPI"]),
        .target(name: "Tensors", dependencies: ["Basics", "COpenBLAS", "CZlib"]),
        .target(name: "Placement", dependencies: ["Basics", "CClp"]),
        // ONNX import apart from Placement, so that only what reads ONNX links SwiftProtobuf.
        .target(
            name: "ONNXImport",
            dependencies: ["Basics", "Placement", "Tensors", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Generated/README.md"]
        ),
        .target(
            name: "Federated",
            dependencies: [
                "Basics",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(name: "Runtime", dependencies: ["Basics", "MPI", "Tensors", "Placement", "ONNXImport", "Federated", "CZlib"]),
        .executableTarget(
            name: "fedbaechi",
            dependencies: [
                "Basics", "MPI", "Tensors", "Placement", "ONNXImport", "Federated", "Runtime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // TensorBoard event files (`report --tensorboard`).
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // Point-to-point benchmark of the Swift layer (Benchmarks/run-pingpong.sh runs it beside C).
        .executableTarget(name: "fedbaechi-pingpong", dependencies: ["MPI"], path: "Benchmarks/PingPong"),
        // The ONNX route timed beside native twins of the same networks (Benchmarks/onnx-route.sh runs it).
        .executableTarget(name: "fedbaechi-onnx-twins", dependencies: ["Basics", "Tensors", "ONNXImport"], path: "Benchmarks/ONNXTwins"),
        // What several test targets need: the fedbaechi binary, mpirun and datasets looked up, commands
        // run in the foreground or background, temporary folders, the rank suites' skip trait.
        .target(name: "TestSupport", dependencies: ["MPI", "Tensors"], path: "Tests/TestSupport"),
        .testTarget(name: "MPITests", dependencies: ["Basics", "MPI", "TestSupport"]),
        .testTarget(name: "BasicsTests", dependencies: ["Basics"]),
        .testTarget(name: "PlacementTests", dependencies: ["Basics", "Placement", "ONNXImport"]),
        .testTarget(
            name: "FederatedTests",
            dependencies: [
                "Basics",
                "Federated",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "TensorsTests", dependencies: ["Basics", "Tensors", "TestSupport"]),
        .testTarget(name: "ONNXTrainingTests", dependencies: ["Basics", "ONNXImport", "Runtime", "Tensors", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["fedbaechi", "MPI", "TestSupport"]),
        // Seeded mutation fuzzing of every reader of untrusted files and of the flags' values.
        .testTarget(name: "FuzzTests", dependencies: ["Basics", "fedbaechi", "Placement", "ONNXImport", "Tensors", "CZlib", "TestSupport"]),
        .testTarget(name: "ModelParallelTests", dependencies: ["Basics", "Runtime", "MPI", "Tensors", "Placement", "TestSupport"]),
        .testTarget(name: "FederatedMPITests", dependencies: ["Basics", "Runtime", "MPI", "Tensors", "Federated", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
