import Foundation

/// Opens a model's weights from a folder or a single file, whatever the format.
///
/// ```swift
/// // A Hugging Face-style folder: model.safetensors, a sharded index, or pytorch_model.bin.
/// let weights = try CheckpointLoader.open(directory: URL(fileURLWithPath: "CALM-M"))
/// // One file (format chosen from its content; `.json` means a shard index).
/// let golden = try CheckpointLoader.open(file: URL(fileURLWithPath: "golden.safetensors"))
/// // Either.
/// let any = try CheckpointLoader.open(URL(fileURLWithPath: path))
/// ```
public enum CheckpointLoader {
    /// The file names looked for in a folder, in order of preference.
    public static let preferredFileNames = [
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ]

    /// Opens the first of `preferredFileNames` present in `directory`.
    ///
    /// - Throws: `CheckpointError.fileNotFound` when the folder does not exist,
    ///   `.noCheckpoint` naming the folder when it holds none of the files, or the file's own error.
    public static func open(directory: URL) throws -> any TensorSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw CheckpointError.fileNotFound(path: directory.path)
        }
        guard isDirectory.boolValue else {
            throw CheckpointError.unreadable(file: directory.path, reason: "not a directory")
        }
        for name in preferredFileNames {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate.path) { return try open(file: candidate) }
        }
        throw CheckpointError.noCheckpoint(directory: directory.path)
    }

    /// Opens one file: a `.json` shard index, a PyTorch zip archive (detected by its `PK` magic
    /// or a legacy pickle), or otherwise a safetensors file.
    public static func open(file: URL) throws -> any TensorSource {
        if file.pathExtension.lowercased() == "json" { return try ShardedCheckpoint(indexURL: file) }
        let head = try MappedFile(url: file).withUnsafeBytes { Array($0.prefix(9)) }
        // A safetensors header is a u64 length then '{'. Test that first: the length's low byte
        // can be 0x80, the legacy pickle's first byte (one header length in 256).
        if head.count == 9 && head[8] == UInt8(ascii: "{") { return try SafetensorsFile(url: file) }
        if head.starts(with: [0x50, 0x4B]) || head.first == 0x80 { return try TorchCheckpointFile(url: file) }
        return try SafetensorsFile(url: file)
    }

    /// Opens `url` as a folder (`open(directory:)`) or as a single file (`open(file:)`).
    public static func open(_ url: URL) throws -> any TensorSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CheckpointError.fileNotFound(path: url.path)
        }
        return isDirectory.boolValue ? try open(directory: url) : try open(file: url)
    }
}
