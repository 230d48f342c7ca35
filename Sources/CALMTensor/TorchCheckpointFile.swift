import Foundation

/// A PyTorch `pytorch_model.bin` (the `torch.save` zip format, PyTorch ≥ 1.6), memory-mapped and
/// validated when opened, without executing anything.
///
/// The archive holds `<archive>/data.pkl` (the pickled state dict), one stored entry
/// `<archive>/data/<key>` per storage, `<archive>/byteorder` and `<archive>/version`. The pickle is
/// read by a safe interpreter that only accepts the globals a state dict needs
/// (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` & co, `torch.*Storage`); anything
/// else, e.g. `os.system`, is rejected with `CheckpointError.unsafePickle`. Tensors are
/// zero-copy views of the mapping; names that share a storage (aliases such as
/// `mlp_generator.*`/`generative_head.*`) view the same bytes.
///
/// ```swift
/// let bin = try TorchCheckpointFile(url: folder.appendingPathComponent("pytorch_model.bin"))
/// print(bin.tensorNames.count)                                   // 122
/// let w = try bin.tensor("mlp_generator.noise_embd.weight").floats()
/// bin.storageKey("generative_head.noise_embd.weight") == bin.storageKey("mlp_generator.noise_embd.weight") // true
/// ```
///
/// Only contiguous row-major tensors are accepted (state dicts always are); a strided view gives
/// `CheckpointError.nonContiguous`. Compressed entries and big-endian archives give
/// `unsupportedFormat`.
public final class TorchCheckpointFile: TensorSource {
    struct Entry: Sendable {
        var dtype: DType
        var shape: [Int]
        var byteOffset: Int
        var byteCount: Int
        var storageKey: String
    }

    /// The file.
    public let url: URL
    /// Tensor names in state-dict (pickle) order.
    public let tensorNames: [String]
    /// Empty: PyTorch archives carry no string metadata.
    public let metadata: [String: String] = [:]
    /// The mapping that every tensor of this file keeps alive.
    public let mappedFile: MappedFile
    /// The archive's top-level folder name (e.g. `pytorch_model` or `archive`).
    public let archiveName: String
    private let entries: [String: Entry]

    /// Maps `url`, reads the zip directory and the pickle, and validates every tensor.
    ///
    /// - Throws: `CheckpointError` (`fileNotFound`, `unreadable`, `truncated`, `malformedHeader`,
    ///   `malformedPickle`, `unsafePickle`, `unsupportedFormat`, `unsupportedDType`,
    ///   `missingStorage`, `outOfBounds`, `nonContiguous`).
    public init(url: URL) throws {
        self.url = url
        let file = url.path
        let mapped = try MappedFile(url: url)
        mappedFile = mapped
        guard mapped.count > 0 else { throw CheckpointError.truncated(file: file, detail: "empty file") }
        let head = mapped.bytes(0 ..< min(4, mapped.count))
        if head.first == 0x80 {
            throw CheckpointError.unsupportedFormat(
                file: file, detail: "legacy (pre-1.6, non-zip) torch.save format; re-save it with a recent PyTorch")
        }
        if head.count < 4 && [0x50, 0x4B, 0x03, 0x04].starts(with: head) {
            throw CheckpointError.truncated(file: file, detail: "\(mapped.count) bytes, too short for a zip archive")
        }
        guard head.starts(with: [0x50, 0x4B]) else {
            throw CheckpointError.unsupportedFormat(file: file, detail: "not a zip archive (torch.save format)")
        }
        let zip = try ZipArchive(mapped, file: file)
        guard let first = zip.names.first, let slash = first.firstIndex(of: "/") else {
            throw CheckpointError.unsupportedFormat(file: file, detail: "zip archive has no '<archive>/data.pkl'")
        }
        let prefix = String(first[..<slash])
        archiveName = prefix
        guard let pickleEntry = zip.entry(prefix + "/data.pkl") else {
            throw CheckpointError.unsupportedFormat(file: file, detail: "zip archive has no '\(prefix)/data.pkl'")
        }
        if let order = zip.entry(prefix + "/byteorder") {
            let text = String(decoding: mapped.bytes(try zip.storedRange(order)), as: UTF8.self)
            guard text == "little" else {
                throw CheckpointError.unsupportedFormat(file: file, detail: "byte order '\(text)'; only little-endian archives are supported")
            }
        }
        let pickle = mapped.bytes(try zip.storedRange(pickleEntry))
        let tensors = try SafeUnpickler.stateDict(pickle, file: file)

        var entries: [String: Entry] = [:]
        for (name, t) in tensors {
            entries[name] = try TorchCheckpointFile.validate(name, t, zip: zip, prefix: prefix, file: file)
        }
        tensorNames = tensors.map(\.0)
        self.entries = entries
    }

    private static func validate(_ name: String, _ t: TorchTensorRef, zip: ZipArchive, prefix: String,
                                 file: String) throws -> Entry {
        guard let dtype = t.dtype ?? t.storage.dtype else {
            throw CheckpointError.unsupportedDType(file: file, key: name, dtype: t.storage.typeName)
        }
        let entryName = "\(prefix)/data/\(t.storage.key)"
        guard let entry = zip.entry(entryName) else {
            throw CheckpointError.missingStorage(file: file, key: name, entry: entryName)
        }
        let range = try zip.storedRange(entry)
        let declared = t.storage.numel.multipliedReportingOverflow(by: t.storage.dtype?.size ?? 1)
        guard !declared.overflow, declared.partialValue <= range.count else {
            throw CheckpointError.truncated(
                file: file,
                detail: "storage '\(entryName)' of tensor '\(name)' holds \(range.count) bytes, fewer than its \(t.storage.numel) declared elements")
        }
        guard t.size.count == t.stride.count else {
            throw CheckpointError.malformedPickle(file: file, detail: "tensor '\(name)' has size \(t.size) but strides \(t.stride)")
        }
        guard t.storageOffset >= 0, t.size.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError.malformedPickle(
                file: file, detail: "tensor '\(name)' has a negative storage offset or size (\(t.storageOffset), \(t.size))")
        }
        let byteCount = try TensorData.byteCount(of: t.size, dtype: dtype, file: file, key: name)
        let numel = byteCount / dtype.size
        if numel > 0 {
            var expected = 1
            for axis in stride(from: t.size.count - 1, through: 0, by: -1) where t.size[axis] != 1 {
                guard t.stride[axis] == expected else {
                    throw CheckpointError.nonContiguous(file: file, key: name, shape: t.size, strides: t.stride)
                }
                expected *= t.size[axis]
            }
        }
        let start = t.storageOffset.multipliedReportingOverflow(by: dtype.size)
        guard !start.overflow, start.partialValue <= range.count, byteCount <= range.count - start.partialValue else {
            throw CheckpointError.outOfBounds(
                file: file, key: name,
                detail: "storage offset \(t.storageOffset) + \(numel) elements of \(dtype.rawValue) exceed storage '\(entryName)' (\(range.count) bytes)")
        }
        return Entry(dtype: dtype, shape: t.size, byteOffset: range.lowerBound + start.partialValue,
                     byteCount: byteCount, storageKey: t.storage.key)
    }

    /// Dtype and shape of `name`, or nil when there is no such tensor.
    public func info(_ name: String) -> (dtype: DType, shape: [Int])? {
        entries[name].map { ($0.dtype, $0.shape) }
    }

    /// The tensor called `name` (a zero-copy view of the mapped file).
    ///
    /// - Throws: `CheckpointError.missingKey(file:key:)` when there is no such tensor.
    public func tensor(_ name: String) throws -> TensorData {
        guard let e = entries[name] else { throw CheckpointError.missingKey(file: url.path, key: name) }
        return TensorData(name: name, dtype: e.dtype, shape: e.shape, file: url.path, storage: mappedFile,
                          byteOffset: e.byteOffset, byteCount: e.byteCount)
    }

    /// The storage key (`<archive>/data/<key>`) behind `name`; equal keys mean shared storage.
    public func storageKey(_ name: String) -> String? { entries[name]?.storageKey }
}
