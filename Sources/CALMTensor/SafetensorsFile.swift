import Foundation

/// A memory-mapped `.safetensors` file, fully validated when opened.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"__metadata__": {...}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}`),
/// then the data section that the offsets index. Tensors are zero-copy views of the mapping.
///
/// ```swift
/// let file = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
/// print(file.metadata["format"] ?? "-")            // "pt"
/// let norm = try file.tensor("transformer.norm.weight").floats()
/// ```
///
/// Every problem (short file, absurd header length, invalid JSON, unknown dtype, negative or
/// non-integer shape, offsets out of range or not matching the shape) is reported as a
/// `CheckpointError` naming the file and the tensor at fault. Overlapping ranges (aliases) are
/// accepted.
public final class SafetensorsFile: TensorSource {
    /// Largest header accepted (the limit of the reference implementation).
    public static let maxHeaderLength = 100_000_000

    struct Entry: Sendable {
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    /// The file.
    public let url: URL
    /// Tensor names in header order.
    public let tensorNames: [String]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// The mapping that every tensor of this file keeps alive.
    public let mappedFile: MappedFile
    /// Byte offset of the data section in the file (8 + header length).
    public let dataOffset: Int
    private let entries: [String: Entry]

    /// Maps and validates `url`.
    ///
    /// - Throws: `CheckpointError` (`fileNotFound`, `unreadable`, `truncated`, `malformedHeader`,
    ///   `unsupportedDType`, `outOfBounds`).
    public init(url: URL) throws {
        self.url = url
        let file = url.path
        let mapped = try MappedFile(url: url)
        mappedFile = mapped
        guard mapped.count >= 8 else {
            throw CheckpointError.truncated(
                file: file, detail: "\(mapped.count) bytes, too short for the 8-byte header length")
        }
        let rawLength = mapped.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        guard rawLength <= UInt64(SafetensorsFile.maxHeaderLength) else {
            throw CheckpointError.malformedHeader(
                file: file, detail: "header length \(rawLength) exceeds the limit of \(SafetensorsFile.maxHeaderLength) bytes")
        }
        let headerLength = Int(rawLength)
        guard headerLength <= mapped.count - 8 else {
            throw CheckpointError.truncated(
                file: file, detail: "header length \(headerLength) exceeds the \(mapped.count - 8) bytes after the length prefix")
        }
        dataOffset = 8 + headerLength
        let dataSize = mapped.count - dataOffset

        let json: JSONValue
        do {
            json = try mapped.withUnsafeBytes { try MiniJSONParser.parse(UnsafeRawBufferPointer(rebasing: $0[8 ..< 8 + headerLength])) }
        } catch let e as JSONParseError {
            throw CheckpointError.malformedHeader(
                file: file, detail: "header is not valid JSON (at header byte \(e.offset), file offset \(8 + e.offset)): \(e.message)")
        }
        guard let object = json.objectValue else {
            throw CheckpointError.malformedHeader(file: file, detail: "header is \(json.kindName), not a JSON object")
        }

        var names: [String] = []
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for key in object.keys {
            let value = object[key]!
            if key == "__metadata__" {
                if case .null = value { continue }   // the reference reads `null` as no metadata
                guard let map = value.objectValue else {
                    throw CheckpointError.malformedHeader(file: file, detail: "__metadata__ is \(value.kindName), not an object of strings")
                }
                for metaKey in map.keys {
                    guard let s = map[metaKey]!.stringValue else {
                        throw CheckpointError.malformedHeader(
                            file: file, detail: "__metadata__ value '\(metaKey)' is \(map[metaKey]!.kindName), not a string")
                    }
                    metadata[metaKey] = s
                }
                continue
            }
            entries[key] = try SafetensorsFile.parseEntry(key, value, dataSize: dataSize, file: file)
            names.append(key)
        }
        tensorNames = names
        self.entries = entries
        self.metadata = metadata
    }

    private static func parseEntry(_ key: String, _ value: JSONValue, dataSize: Int, file: String) throws -> Entry {
        guard let info = value.objectValue else {
            throw CheckpointError.malformedHeader(file: file, detail: "tensor '\(key)': entry is \(value.kindName), not an object")
        }
        guard let dtypeName = info["dtype"]?.stringValue else {
            throw CheckpointError.malformedHeader(file: file, detail: "tensor '\(key)': missing or non-string 'dtype'")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw CheckpointError.unsupportedDType(file: file, key: key, dtype: dtypeName)
        }
        guard let shapeValues = info["shape"]?.arrayValue else {
            throw CheckpointError.malformedHeader(file: file, detail: "tensor '\(key)': missing or non-array 'shape'")
        }
        var shape: [Int] = []
        for dim in shapeValues {
            guard let d = dim.intValue, d >= 0 else {
                throw CheckpointError.malformedHeader(
                    file: file, detail: "tensor '\(key)': shape entries must be non-negative integers")
            }
            shape.append(d)
        }
        guard let offsets = info["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0, end >= 0 else {
            throw CheckpointError.malformedHeader(
                file: file, detail: "tensor '\(key)': 'data_offsets' must be [begin, end] with non-negative integers")
        }
        guard begin <= end else {
            throw CheckpointError.malformedHeader(file: file, detail: "tensor '\(key)' data_offsets [\(begin), \(end)] are reversed")
        }
        guard end <= dataSize else {
            throw CheckpointError.outOfBounds(
                file: file, key: key, detail: "data_offsets [\(begin), \(end)] exceed the data section (\(dataSize) bytes)")
        }
        let needed = try TensorData.byteCount(of: shape, dtype: dtype, file: file, key: key)
        guard end - begin == needed else {
            throw CheckpointError.malformedHeader(
                file: file,
                detail: "tensor '\(key)' data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(needed)")
        }
        return Entry(dtype: dtype, shape: shape, begin: begin, end: end)
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
                          byteOffset: dataOffset + e.begin, byteCount: e.end - e.begin)
    }

    /// `[begin, end)` of `name` in the data section (as in the header), or nil.
    public func dataOffsets(_ name: String) -> Range<Int>? {
        entries[name].map { $0.begin ..< $0.end }
    }
}
