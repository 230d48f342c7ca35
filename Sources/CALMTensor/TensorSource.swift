import Foundation

/// A read-only collection of named tensors: a safetensors file, a sharded checkpoint or a
/// PyTorch `pytorch_model.bin`. All of them are validated when opened, so `tensor(_:)` only fails
/// for a name that is not there.
///
/// ```swift
/// let source: any TensorSource = try CheckpointLoader.open(directory: folder)
/// for name in source.tensorNames {
///     let (dtype, shape) = source.info(name)!
///     print(name, dtype, shape)
/// }
/// let w = try source.tensor("embed_proj.0.weight", shape: [64, 128]).floats()
/// ```
public protocol TensorSource: Sendable {
    /// The file (or, for a sharded checkpoint, the index file) the tensors come from.
    var url: URL { get }
    /// Every tensor name, in the file's order.
    var tensorNames: [String] { get }
    /// Dtype and shape of `name`, or nil when there is no such tensor.
    func info(_ name: String) -> (dtype: DType, shape: [Int])?
    /// The tensor called `name`.
    ///
    /// - Throws: `CheckpointError.missingKey(file:key:)` when there is no such tensor.
    func tensor(_ name: String) throws -> TensorData
    /// String metadata (safetensors `__metadata__`, index `metadata`); empty when there is none.
    var metadata: [String: String] { get }
}

extension TensorSource {
    /// Whether a tensor called `name` exists.
    public func contains(_ name: String) -> Bool { info(name) != nil }

    /// The tensor called `name`, checking that it has `shape`.
    ///
    /// - Throws: `CheckpointError.missingKey` or `CheckpointError.shapeMismatch`.
    public func tensor(_ name: String, shape expected: [Int]) throws -> TensorData {
        let t = try tensor(name)
        guard t.shape == expected else {
            throw CheckpointError.shapeMismatch(file: t.file, key: name, expected: expected, actual: t.shape)
        }
        return t
    }

    /// The first of `names` that exists (e.g. `["generative_head.x", "mlp_generator.x"]`).
    ///
    /// - Throws: `CheckpointError.missingKey` naming the first candidate when none exists.
    public func tensor(anyOf names: [String]) throws -> TensorData {
        for name in names where contains(name) { return try tensor(name) }
        throw CheckpointError.missingKey(file: url.path, key: names.first ?? "")
    }
}
