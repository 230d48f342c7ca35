// swift-tools-version: 6.0
// libFuzzer harnesses for swift-calm (Docs/Reliability.md, "Fuzzing"). Never a dependency of
// anything, and built only by `Scripts/fuzz.sh`, which adds AddressSanitizer and libFuzzer's
// coverage instrumentation to every target, the library's included. The harnesses are executables
// without a `main` of their own (`-parse-as-library`): libFuzzer's is the program's.
import PackageDescription

// A path dependency's identity is its folder's name (`swift-calm`, `main`, a worktree's name...).
let root = Context.packageDirectory.split(separator: "/").dropLast().last.map(String.init) ?? "swift-calm"

let harnessSettings: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

func harness(_ name: String, _ products: [String], engine: Bool = false) -> Target {
    .executableTarget(
        name: "fuzz-\(name)",
        dependencies: ["FuzzSupport"] + (engine ? ["EngineFuzzSupport"] : [])
            + products.map { .product(name: $0, package: root) },
        path: "Sources/Harnesses/\(name)",
        swiftSettings: harnessSettings)
}

let package = Package(
    name: "swift-calm-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzSupport",
                dependencies: [.product(name: "CALMTensor", package: root), .product(name: "CALMTokenizer", package: root)],
                path: "Sources/FuzzSupport"),
        .target(name: "EngineFuzzSupport",
                dependencies: ["FuzzSupport", .product(name: "CALMEngine", package: root)],
                path: "Sources/EngineFuzzSupport"),
        harness("safetensors", ["CALMTensor"]),
        harness("sharded-index", ["CALMTensor"]),
        harness("torch-bin", ["CALMTensor"]),
        harness("torch-pickle", ["CALMTensor"]),
        harness("tokenizer-json", ["CALMTokenizer"]),
        harness("tokenizer-config", ["CALMTokenizer"]),
        harness("tiktoken", ["CALMTokenizer"]),
        harness("llama3-encode", ["CALMTokenizer"]),
        harness("config", ["CALMModel", "CALMEngine", "CALMTensor"], engine: true),
        harness("request", ["CALMModel", "CALMEngine", "CALMTokenizer"], engine: true),
        harness("http", ["CALMModel", "CALMEngine", "CALMServer", "CALMTokenizer"]),
    ],
    swiftLanguageModes: [.v6]
)
