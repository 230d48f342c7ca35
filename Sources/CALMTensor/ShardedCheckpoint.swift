import Foundation

/// A checkpoint split over several files and described by an index such as
/// `model.safetensors.index.json` (or `pytorch_model.bin.index.json`):
/// `{"metadata": {"total_size": 123}, "weight_map": {"tensor.name": "model-00001-of-00002.safetensors", ...}}`.
///
/// Shards are opened (mapped and validated) up front; every tensor the index names must exist in
/// the shard it names. Shards ending in `.bin` are read as PyTorch archives, others as safetensors.
///
/// ```swift
/// let model = try ShardedSafetensors(indexURL: folder.appendingPathComponent("model.safetensors.index.json"))
/// let w = try model.tensor("transformer.layers.0.mlp.up_proj.weight")   // from whichever shard holds it
/// ```
public final class ShardedCheckpoint: TensorSource {
    /// The index file.
    public let url: URL
    /// Tensor names in the index's `weight_map` order.
    public let tensorNames: [String]
    /// The index's `metadata`, values as text (numbers such as `total_size` in their JSON spelling).
    public let metadata: [String: String]
    /// Shard file names (as written in the index) in first-use order.
    public let shardNames: [String]
    private let shards: [String: any TensorSource]
    private let shardOfTensor: [String: String]

    /// Reads the index at `indexURL` and opens every shard it names (relative to its folder).
    ///
    /// - Throws: `CheckpointError.malformedHeader` for an invalid index, `.missingShard` naming the
    ///   index and the shard when a shard file does not exist, `.missingKey` naming the shard when
    ///   it lacks a tensor the index assigns to it, and any error of opening a shard.
    public init(indexURL: URL) throws {
        url = indexURL
        let file = indexURL.path
        let mapped = try MappedFile(url: indexURL)
        let json: JSONValue
        do {
            json = try mapped.withUnsafeBytes { try MiniJSONParser.parse($0) }
        } catch let e as JSONParseError {
            throw CheckpointError.malformedHeader(file: file, detail: "index is not valid JSON: \(e.description)")
        }
        guard let root = json.objectValue else {
            throw CheckpointError.malformedHeader(file: file, detail: "index is \(json.kindName), not a JSON object")
        }
        guard let map = root["weight_map"]?.objectValue else {
            throw CheckpointError.malformedHeader(file: file, detail: "index has no 'weight_map' object")
        }
        var metadata: [String: String] = [:]
        if let meta = root["metadata"]?.objectValue {
            for key in meta.keys {
                switch meta[key]! {
                case .string(let s): metadata[key] = s
                case .number(let n): metadata[key] = n
                case .bool(let b): metadata[key] = b ? "true" : "false"
                default: continue
                }
            }
        }
        self.metadata = metadata

        let directory = indexURL.deletingLastPathComponent()
        var shardNames: [String] = []
        var shards: [String: any TensorSource] = [:]
        var shardOfTensor: [String: String] = [:]
        for name in map.keys {
            guard let shard = map[name]!.stringValue else {
                throw CheckpointError.malformedHeader(file: file, detail: "weight_map entry '\(name)' is \(map[name]!.kindName), not a file name")
            }
            guard !shard.isEmpty, !shard.hasPrefix("/"), !shard.split(separator: "/").contains("..") else {
                throw CheckpointError.malformedHeader(file: file, detail: "weight_map entry '\(name)' names shard '\(shard)' outside the index's folder")
            }
            if shards[shard] == nil {
                let shardURL = directory.appendingPathComponent(shard)
                guard FileManager.default.fileExists(atPath: shardURL.path) else {
                    throw CheckpointError.missingShard(index: file, shard: shard)
                }
                shards[shard] = shard.hasSuffix(".bin")
                    ? try TorchCheckpointFile(url: shardURL) : try SafetensorsFile(url: shardURL)
                shardNames.append(shard)
            }
            guard shards[shard]!.contains(name) else {
                throw CheckpointError.missingKey(file: shards[shard]!.url.path, key: name)
            }
            shardOfTensor[name] = shard
        }
        tensorNames = map.keys
        self.shardNames = shardNames
        self.shards = shards
        self.shardOfTensor = shardOfTensor
    }

    /// Dtype and shape of `name`, or nil when there is no such tensor.
    public func info(_ name: String) -> (dtype: DType, shape: [Int])? {
        shardOfTensor[name].flatMap { shards[$0]?.info(name) }
    }

    /// The tensor called `name` (a zero-copy view of the mapped file).
    ///
    /// - Throws: `CheckpointError.missingKey(file:key:)` when there is no such tensor.
    public func tensor(_ name: String) throws -> TensorData {
        guard let shard = shardOfTensor[name], let source = shards[shard] else {
            throw CheckpointError.missingKey(file: url.path, key: name)
        }
        return try source.tensor(name)
    }

    /// The opened shard called `name` (as written in the index).
    public func shard(_ name: String) -> (any TensorSource)? { shards[name] }
}

/// The sharded reader under the name used for `model.safetensors.index.json` checkpoints.
public typealias ShardedSafetensors = ShardedCheckpoint
