// swift-tools-version: 6.0
// swift-calm: Continuous Autoregressive Language Models on Linux, in-process.
// No dependencies and no unsafe flags: speed comes from the CALMKernels C target,
// whose kernels select AVX-512 / AVX2 / portable code at run time.
import PackageDescription

let package = Package(
    name: "swift-calm",
    products: [
        .library(name: "CALMModel", targets: ["CALMModel"]),
        .library(name: "CALMTokenizer", targets: ["CALMTokenizer"]),
        .library(name: "CALMTensor", targets: ["CALMTensor"]),
        .library(name: "CALMConformance", targets: ["CALMConformance"]),
        .library(name: "CALMEvaluation", targets: ["CALMEvaluation"]),
        .executable(name: "calm", targets: ["calm"]),
    ],
    targets: [
        // C: SIMD kernels with runtime CPU dispatch and a persistent worker pool.
        .target(name: "CALMKernels", path: "Sources/CALMKernels"),
        // Tensors, dtypes and checkpoint files (safetensors, sharded safetensors, pytorch_model.bin).
        .target(name: "CALMTensor", dependencies: ["CALMKernels"]),
        // Llama 3 tiktoken BPE and Hugging Face byte-level BPE tokenizers.
        .target(name: "CALMTokenizer"),
        // Configs, autoencoder, backbone, energy head, samplers, single-sequence generation.
        .target(name: "CALMModel", dependencies: ["CALMKernels", "CALMTensor"]),
        // BrierLM evaluation (reference protocol) for CALM and discrete Llama models.
        .target(name: "CALMEvaluation", dependencies: ["CALMModel", "CALMTokenizer", "CALMKernels"]),
        // Golden-fixture conformance runner shared by the CLI and the tests.
        .target(name: "CALMConformance", dependencies: ["CALMModel", "CALMTensor", "CALMKernels", "CALMEvaluation"]),
        // The `calm` command-line tool.
        .executableTarget(
            name: "calm",
            dependencies: ["CALMModel", "CALMTokenizer", "CALMTensor", "CALMConformance", "CALMKernels", "CALMEvaluation"]),
        // Benchmarks, run on demand: `swift run -c release calm-bench`.
        .executableTarget(
            name: "calm-bench",
            dependencies: ["CALMKernels", "CALMTensor", "CALMModel", "CALMTokenizer", "CALMEvaluation"],
            path: "Benchmarks/CALMBench"),

        // Test support: locating ../shared (or $CALM_SHARED) and skip/fail policy.
        .target(name: "CALMTestSupport", path: "Tests/CALMTestSupport"),
        .testTarget(name: "CALMKernelsTests", dependencies: ["CALMKernels", "CALMTestSupport"]),
        .testTarget(name: "CALMTensorTests", dependencies: ["CALMTensor", "CALMKernels", "CALMTestSupport"]),
        .testTarget(name: "CALMTokenizerTests", dependencies: ["CALMTokenizer", "CALMTestSupport"]),
        .testTarget(name: "CALMModelTests", dependencies: ["CALMModel", "CALMTensor", "CALMKernels", "CALMTestSupport"]),
        .testTarget(name: "CALMEvaluationTests", dependencies: ["CALMEvaluation", "CALMModel", "CALMTensor", "CALMTokenizer", "CALMTestSupport"]),
        .testTarget(
            name: "CALMConformanceTests",
            dependencies: ["CALMConformance", "CALMModel", "CALMTensor", "CALMTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
