// swift-tools-version: 6.0
// swift-calm: Continuous Autoregressive Language Models on Linux, in-process.
// No dependencies and no unsafe flags: speed comes from the CALMKernels C target,
// whose kernels select AVX-512 / AVX2 / portable code at run time.
import PackageDescription

let package = Package(
    name: "swift-calm",
    products: [
        .library(name: "CALMEngine", targets: ["CALMEngine"]),
        .library(name: "CALMModel", targets: ["CALMModel"]),
        .library(name: "CALMTokenizer", targets: ["CALMTokenizer"]),
        .library(name: "CALMTensor", targets: ["CALMTensor"]),
        .library(name: "CALMConformance", targets: ["CALMConformance"]),
        .library(name: "CALMEvaluation", targets: ["CALMEvaluation"]),
        .library(name: "CALMTraining", targets: ["CALMTraining"]),
        .library(name: "CALMDefaultModel", targets: ["CALMDefaultModel"]),
        .library(name: "CALMServer", targets: ["CALMServer"]),
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
        // The concurrent engine: scheduler actor, KV-cache pool, streams.
        .target(name: "CALMEngine", dependencies: ["CALMModel", "CALMTokenizer"]),
        // BrierLM evaluation (reference protocol) for CALM and discrete Llama models.
        .target(name: "CALMEvaluation", dependencies: ["CALMModel", "CALMTokenizer", "CALMKernels"]),
        // Training: gradients, optimiser, recipes, corpus building.
        .target(name: "CALMTraining", dependencies: ["CALMModel", "CALMTensor", "CALMKernels", "CALMTokenizer"]),
        // The trained built-in models (bf16 weights + tokenizer) as resources: `DefaultModel.engine()`
        // (CALM) and `DefaultModel.engine(family: .tokenMaturation)`.
        .target(name: "CALMDefaultModel", dependencies: ["CALMEngine", "CALMModel", "CALMTokenizer"],
                resources: [.copy("DefaultModel"), .copy("TokenMaturationModel")]),
        // `calm serve`: an OpenAI-compatible HTTP/1.1 server on POSIX sockets over the engine.
        .target(name: "CALMServer", dependencies: ["CALMEngine", "CALMModel", "CALMTensor", "CALMTokenizer"]),
        // Golden-fixture conformance runner shared by the CLI and the tests.
        .target(name: "CALMConformance", dependencies: ["CALMModel", "CALMTensor", "CALMKernels", "CALMTraining", "CALMEvaluation"]),
        // The `calm` command-line tool.
        .executableTarget(
            name: "calm",
            dependencies: ["CALMModel", "CALMTokenizer", "CALMTensor", "CALMConformance", "CALMKernels", "CALMEvaluation", "CALMEngine", "CALMTraining", "CALMDefaultModel", "CALMServer"]),
        // Benchmarks, run on demand: `swift run -c release calm-bench`.
        .executableTarget(
            name: "calm-bench",
            dependencies: ["CALMKernels", "CALMTensor", "CALMModel", "CALMTokenizer", "CALMEvaluation", "CALMEngine"],
            path: "Benchmarks/CALMBench"),

        // Examples: several generations streamed at once from one engine.
        .executableTarget(name: "concurrent-streams", dependencies: ["CALMEngine", "CALMDefaultModel"], path: "Examples/ConcurrentStreams"),

        // Test support: locating ../shared (or $CALM_SHARED) and skip/fail policy.
        .target(name: "CALMTestSupport", dependencies: ["CALMModel", "CALMTensor"], path: "Tests/CALMTestSupport"),
        .testTarget(name: "CALMKernelsTests", dependencies: ["CALMKernels", "CALMTestSupport"]),
        .testTarget(name: "CALMTensorTests", dependencies: ["CALMTensor", "CALMKernels", "CALMTestSupport"]),
        .testTarget(name: "CALMTokenizerTests", dependencies: ["CALMTokenizer", "CALMTestSupport"]),
        .testTarget(name: "CALMModelTests", dependencies: ["CALMModel", "CALMTensor", "CALMKernels", "CALMTestSupport"]),
        .testTarget(name: "CALMTrainingTests", dependencies: ["CALMTraining", "CALMModel", "CALMTensor", "CALMTokenizer", "CALMTestSupport"]),
        .testTarget(name: "CALMEngineTests", dependencies: ["CALMEngine", "CALMModel", "CALMTokenizer", "CALMTestSupport"]),
        .testTarget(name: "CALMServerTests", dependencies: ["CALMServer", "CALMEngine", "CALMModel", "CALMDefaultModel", "CALMTestSupport"]),
        .testTarget(name: "CALMEvaluationTests", dependencies: ["CALMEvaluation", "CALMModel", "CALMTensor", "CALMTokenizer", "CALMTestSupport"]),
        // The `calm` executable run as a subprocess (swift test builds it beside the test bundle).
        .testTarget(name: "CALMCLITests", dependencies: ["CALMModel", "CALMServer", "CALMTestSupport"]),
        .testTarget(name: "CALMDefaultModelTests", dependencies: ["CALMDefaultModel", "CALMEngine", "CALMModel", "CALMTokenizer"]),
        .testTarget(
            name: "CALMConformanceTests",
            dependencies: ["CALMConformance", "CALMModel", "CALMTensor", "CALMTestSupport"],
            // our own golden files (gen_T0.5), read from the source tree (Scripts/make_gen_t05_fixture.py)
            exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
