// swift-tools-version:6.0
import PackageDescription

let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "lstm-gpu",
    // Supported: Linux (built and tested on Debian 12, x86_64, Swift 6). SwiftPM has no way to
    // declare "Linux only"; `platforms` sets minimum versions for Apple platforms alone, and
    // macOS is deliberately not listed: it has never been built there (it cannot be checked on
    // the development machine; the OpenCL and Open MPI targets expect pkg-config packages as
    // Debian ships them, and OpenBLAS is loaded at run time as libopenblas.so.0).
    products: [
        .library(name: "LSTMKit", targets: ["LSTMKit"]),
        .library(name: "LSTMONNX", targets: ["LSTMONNX"]),
        .library(name: "LSTMApplications", targets: ["LSTMApplications"]),
        .executable(name: "lstm-gpu", targets: ["lstm-gpu"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenCL", path: "Sources/COpenCL", pkgConfig: "OpenCL",
            providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CLSTMKernels", path: "Sources/CLSTMKernels", linkerSettings: [.linkedLibrary("m")]),
        // The CPU path's BLAS is loaded at run time (dlopen), not linked: LSTMKit sets
        // OPENBLAS_CORETYPE from CPUID before OpenBLAS's constructor reads it, and a missing
        // BLAS is a thrown error at first use. Needs at run time libopenblas.so.0 (Debian:
        // libopenblas0, which libopenblas-dev pulls in) or another CBLAS as libcblas.so.3 /
        // libblas.so.3; nothing at build time.
        .target(name: "CBLASLoader", path: "Sources/CBLASLoader", linkerSettings: [.linkedLibrary("dl")]),
        // The engine's library targets, one job each (docs/architecture.md has the graph).
        // The core: tensors, configuration, errors, safetensors, the backend contract and the stack.
        .target(name: "LSTMCore", path: "Sources/LSTMCore"),
        // The plain-loop oracle every fast path is checked against, and the parity fixture format.
        .target(name: "LSTMReference", dependencies: ["LSTMCore"], path: "Sources/LSTMReference"),
        // The fast CPU path: the C kernels and BLAS behind `CPUBackend`.
        .target(
            name: "LSTMCPU", dependencies: ["LSTMCore", "CBLASLoader", "CLSTMKernels"], path: "Sources/LSTMCPU"),
        // The OpenCL path: runtime, kernels, autotuner, caches.
        .target(
            name: "LSTMOpenCL",
            dependencies: ["LSTMCore", "COpenCL"],
            path: "Sources/LSTMOpenCL",
            // Kernels are compiled into the binary: an installed lstm-gpu needs no source tree.
            resources: [
                .embedInCode("../../Kernels/gemm.cl"),
                .embedInCode("../../Kernels/tensor_ops.cl"),
                .embedInCode("../../Kernels/lstm_forward.cl"),
                .embedInCode("../../Kernels/lstm_backward.cl"),
                .embedInCode("../../Kernels/training.cl"),
                .embedInCode("../../Kernels/lstm_options.cl"),
            ]),
        // Data loaders and vocabularies.
        .target(name: "LSTMData", dependencies: ["LSTMCore"], path: "Sources/LSTMData"),
        // Layers, Sequential, losses, optimisers, fit, model files, Seq2Seq, the char-LM trainer.
        .target(name: "LSTMNN", dependencies: ["LSTMCore", "LSTMData"], path: "Sources/LSTMNN"),
        // The umbrella: re-exports the targets above and adds the `LSTM` facade that picks a backend.
        .target(
            name: "LSTMKit",
            dependencies: ["LSTMCore", "LSTMReference", "LSTMCPU", "LSTMOpenCL", "LSTMData", "LSTMNN"],
            path: "Sources/LSTMKit"),
        // The command-line pieces every program shares: option groups with one set of bounds
        // (SettingBounds), exit codes, error reporting.
        .target(
            name: "LSTMCommandLine",
            dependencies: [
                "LSTMKit", "LSTMONNX", "LSTMApplications",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/LSTMCommandLine"),
        .executableTarget(
            name: "lstm-gpu",
            dependencies: [
                "LSTMKit", "LSTMDistributed", "LSTMBenchmark", "LSTMONNX", "LSTMApplications", "LSTMCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/lstm-gpu",
            // The text `lstm-gpu train` uses without --data: the first 100 kB of the
            // public-domain plays that scripts/fetch-shakespeare downloads.
            resources: [.embedInCode("default-text.txt")]),
        // The benchmark harness of `lstm-gpu bench` (suite, timing, rows), kept out of the engine's API.
        .target(name: "LSTMBenchmark", dependencies: ["LSTMKit"], path: "Sources/LSTMBenchmark"),
        // ONNX models in and out (onnx.pb.swift generated once from onnx.proto and committed), kept
        // out of LSTMKit: importing the engine links no protobuf.
        .target(
            name: "LSTMONNX",
            dependencies: ["LSTMKit", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/LSTMONNX"),
        // The applications (text classification, sequences of rows, tagging, forecasting,
        // translation) that `lstm-gpu train --task` and the examples run, on the model API.
        .target(name: "LSTMApplications", dependencies: ["LSTMKit"], path: "Sources/LSTMApplications"),
        // Data parallelism over Open MPI, kept out of LSTMKit: importing the engine links no MPI.
        .target(name: "LSTMDistributed", dependencies: ["LSTMKit", "CMPI"], path: "Sources/LSTMDistributed"),
        // The applications as example programs (each a thin command line over LSTMApplications).
        .executableTarget(
            name: "sentiment-classifier",
            dependencies: ["LSTMKit", "LSTMApplications", "LSTMCommandLine", argumentParser],
            path: "Examples/sentiment-classifier"),
        .executableTarget(
            name: "digits-classifier",
            dependencies: ["LSTMKit", "LSTMApplications", "LSTMCommandLine", argumentParser],
            path: "Examples/digits-classifier"),
        .executableTarget(
            name: "forecaster", dependencies: ["LSTMKit", "LSTMApplications", "LSTMCommandLine", argumentParser],
            path: "Examples/forecaster"),
        .executableTarget(
            name: "translator", dependencies: ["LSTMKit", "LSTMApplications", "LSTMCommandLine", argumentParser],
            path: "Examples/translator"),
        .testTarget(
            name: "LSTMKitTests",
            dependencies: ["LSTMKit", "LSTMBenchmark", "LSTMONNX", "LSTMApplications", "LSTMCommandLine"],
            path: "Tests/LSTMKitTests",
            exclude: ["Fixtures"]),
    ]
)
