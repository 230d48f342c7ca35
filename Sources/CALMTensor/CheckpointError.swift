import Foundation

/// Every failure raised while opening, validating or reading a checkpoint file.
///
/// `file` is the path of the file at fault (as it was opened); messages always name it and,
/// where one applies, the tensor key, entry or byte offset at fault. Example message:
///
///     /models/calm/model.safetensors: tensor 'x.weight' data_offsets [12, 80] exceed the data
///     section (64 bytes)
public enum CheckpointError: Error, Equatable, Sendable {
    /// Nothing exists at `path`.
    case fileNotFound(path: String)
    /// The file exists but cannot be opened or mapped (permissions, a directory, I/O error).
    case unreadable(file: String, reason: String)
    /// The file ends before a structure it announces (header, zip record, pickle opcode, storage).
    case truncated(file: String, detail: String)
    /// A header (safetensors JSON, zip record, index JSON) is syntactically or semantically invalid.
    case malformedHeader(file: String, detail: String)
    /// The requested tensor name is not in the checkpoint.
    case missingKey(file: String, key: String)
    /// A tensor exists but has another shape than the caller expects.
    case shapeMismatch(file: String, key: String, expected: [Int], actual: [Int])
    /// The tensor's element type is unknown, or not convertible to what was asked for.
    case unsupportedDType(file: String, key: String, dtype: String)
    /// A pickle asks for something outside the allow-list (it is never executed).
    case unsafePickle(file: String, detail: String)
    /// A pickle is syntactically invalid, or holds values a state dict cannot hold.
    case malformedPickle(file: String, detail: String)
    /// A valid file that uses a feature this reader does not implement (deflate, big-endian, ...).
    case unsupportedFormat(file: String, detail: String)
    /// A tensor's bytes lie (partly) outside the data it points into.
    case outOfBounds(file: String, key: String, detail: String)
    /// A tensor stored as a strided view that is not contiguous row-major.
    case nonContiguous(file: String, key: String, shape: [Int], strides: [Int])
    /// A tensor of a PyTorch archive refers to a storage entry the archive does not contain.
    case missingStorage(file: String, key: String, entry: String)
    /// A shard named by a sharded checkpoint's index file does not exist.
    case missingShard(index: String, shard: String)
    /// Writing a checkpoint failed (the destination is left untouched).
    case writeFailed(file: String, reason: String)
    /// A folder holds none of the known checkpoint files.
    case noCheckpoint(directory: String)
}

extension CheckpointError: CustomStringConvertible, LocalizedError {
    /// A one-line message naming the file and what is wrong.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file"
        case .unreadable(let file, let reason):
            return "\(file): cannot read the file: \(reason)"
        case .truncated(let file, let detail):
            return "\(file): file is truncated: \(detail)"
        case .malformedHeader(let file, let detail):
            return "\(file): \(detail)"
        case .missingKey(let file, let key):
            return "\(file): no tensor named '\(key)'"
        case .shapeMismatch(let file, let key, let expected, let actual):
            return "\(file): tensor '\(key)' has shape \(actual), expected \(expected)"
        case .unsupportedDType(let file, let key, let dtype):
            return "\(file): tensor '\(key)' has unsupported dtype '\(dtype)'"
        case .unsafePickle(let file, let detail):
            return "\(file): refusing unsafe pickle: \(detail)"
        case .malformedPickle(let file, let detail):
            return "\(file): malformed pickle: \(detail)"
        case .unsupportedFormat(let file, let detail):
            return "\(file): unsupported format: \(detail)"
        case .outOfBounds(let file, let key, let detail):
            return "\(file): tensor '\(key)' \(detail)"
        case .nonContiguous(let file, let key, let shape, let strides):
            return "\(file): tensor '\(key)' is a non-contiguous view (shape \(shape), strides \(strides)); "
                + "only contiguous row-major tensors are supported"
        case .missingStorage(let file, let key, let entry):
            return "\(file): tensor '\(key)' refers to storage '\(entry)', which is not in the archive"
        case .missingShard(let index, let shard):
            return "\(index): shard '\(shard)' does not exist"
        case .writeFailed(let file, let reason):
            return "\(file): cannot write the file: \(reason)"
        case .noCheckpoint(let directory):
            return "\(directory): no model.safetensors, model.safetensors.index.json, pytorch_model.bin "
                + "or pytorch_model.bin.index.json"
        }
    }

    /// Same as `description`.
    public var errorDescription: String? { description }
}
