import CALMTensor
import Foundation

/// Turns a training checkpoint folder into a distributable model folder: weights re-encoded in
/// one floating-point dtype (bf16 halves the size of an f32 checkpoint), `config.json` with its
/// `torch_dtype` updated, and the tokenizer files copied next to them. Optimizer state and the
/// trainer's bookkeeping are left behind, so the result is what the engine (and the reference
/// code) load, nothing more.
///
/// ```swift
/// let report = try ModelFolderExport.export(from: URL(fileURLWithPath: "run/checkpoint-1800"),
///                                           to: URL(fileURLWithPath: "DefaultModel"),
///                                           dtype: .bf16,
///                                           tokenizer: URL(fileURLWithPath: "tokenizer-8192"))
/// print(report.tensors, report.weightBytes)
/// ```
public enum ModelFolderExport {
    /// What an export wrote.
    public struct Report: Sendable, Equatable {
        /// Number of tensors written.
        public var tensors: Int
        /// Size of the written `model.safetensors` in bytes.
        public var weightBytes: Int
        /// Tokenizer files copied (file names).
        public var tokenizerFiles: [String]
    }

    /// Tokenizer files copied when present, in this order.
    public static let tokenizerFileNames = ["tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json"]

    /// Exports `source` (config.json + weights in any format the engine reads) to `destination`.
    ///
    /// - Parameters:
    ///   - dtype: f32, f16 or bf16; floating-point tensors are converted (round to nearest even),
    ///     integer tensors are copied as they are.
    ///   - tokenizer: folder to copy tokenizer files from; nil copies those found in `source`.
    /// - Throws: `ModelError.invalidParameter` for a non-float dtype or when `destination` is
    ///   `source`; `ModelError.unknownModel` naming the folder when it does not exist or has no
    ///   `config.json`; `ModelError.invalidConfig` when `config.json` is not a JSON object;
    ///   checkpoint errors naming the file and key that could not be read.
    @discardableResult
    public static func export(from source: URL, to destination: URL, dtype: DType, tokenizer: URL? = nil) throws -> Report {
        guard dtype.isFloatingWeight else {
            throw ModelError.invalidParameter(name: "dtype", reason: "'\(dtype.rawValue)' is not f32, f16 or bf16")
        }
        guard source.standardizedFileURL.path != destination.standardizedFileURL.path else {
            throw ModelError.invalidParameter(name: "output", reason: "\(destination.path) is the source folder itself")
        }
        // The loaders' own check: a missing folder and a folder without config.json are named as such.
        var (_, config, _) = try ModelFolder.configData(source)
        let weights = try CheckpointLoader.open(directory: source)
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        for name in weights.tensorNames {
            let t = try weights.tensor(name)
            if t.dtype.isFloatingWeight && t.dtype != dtype {
                try writer.add(name: name, shape: t.shape, floats: try t.floats(), dtype: dtype)
            } else {
                writer.add(t)
            }
        }
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        let weightsURL = destination.appendingPathComponent("model.safetensors")
        try writer.write(to: weightsURL)

        config["torch_dtype"] = dtype.torchName ?? "float32"   // dtype is f32, f16 or bf16 (checked above)
        let out = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try (out + Data("\n".utf8)).write(to: destination.appendingPathComponent("config.json"), options: .atomic)

        var copied: [String] = []
        let tokenizerFolder = tokenizer ?? source
        for file in tokenizerFileNames {
            let from = tokenizerFolder.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: from.path) else { continue }
            let to = destination.appendingPathComponent(file)
            try? FileManager.default.removeItem(at: to)
            try FileManager.default.copyItem(at: from, to: to)
            copied.append(file)
        }
        let size = (try FileManager.default.attributesOfItem(atPath: weightsURL.path)[.size] as? Int) ?? 0
        return Report(tensors: weights.tensorNames.count, weightBytes: size, tokenizerFiles: copied)
    }
}
