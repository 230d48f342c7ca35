import Foundation

/// Writes tensors and string metadata to a `.safetensors` file, byte for byte the way Python's
/// `safetensors` (0.4+) writes them: tensors ordered by element size (largest first) then by name,
/// the header listing `__metadata__` (keys sorted) and then the tensors in that same order, compact
/// JSON padded with spaces to a multiple of 8 bytes, and the little-endian u64 header length.
///
/// The writer is a local builder (not `Sendable`): generators may capture mutable state such as a
/// random number generator.
///
/// Data is streamed to the file tensor by tensor (large tensors in 4 MiB pieces), to a temporary
/// file that is renamed over the destination at the end, so a failed write never leaves a
/// half-written checkpoint.
///
/// ```swift
/// var writer = SafetensorsWriter(metadata: ["format": "pt"])
/// try writer.add(name: "w", shape: [2, 2], floats: [1, 2, 3, 4], dtype: .bf16)
/// writer.add(name: "ids", dtype: .i64, shape: [3], bytes: [Int64](arrayLiteral: 1, 2, 3).withUnsafeBytes { Array($0) })
/// writer.add(name: "big", dtype: .f32, shape: [4096, 4096]) { byteOffset, chunk in
///     chunk.initializeMemory(as: UInt8.self, repeating: 0)   // generate pieces lazily
/// }
/// try writer.write(to: URL(fileURLWithPath: "out.safetensors"))
/// ```
public struct SafetensorsWriter {
    /// Fills `chunk` with the bytes of a tensor starting at `byteOffset` within that tensor.
    public typealias Generator = (_ byteOffset: Int, _ chunk: UnsafeMutableRawBufferPointer) throws -> Void

    enum Payload {
        case bytes([UInt8])
        case tensor(TensorData)
        case floats([Float])
        case generator(Generator)
    }

    struct Pending {
        var name: String
        var dtype: DType
        var shape: [Int]
        var payload: Payload
    }

    /// String metadata written as `__metadata__` (omitted when empty).
    public var metadata: [String: String]
    private var pending: [Pending] = []

    /// Size of the pieces that conversions and generators produce.
    static let chunkBytes = 4 << 20

    /// An empty writer.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Number of tensors added so far.
    public var count: Int { pending.count }

    /// Adds `tensor` (zero-copy: its bytes are read when writing), optionally under another name.
    public mutating func add(_ tensor: TensorData, as name: String? = nil) {
        pending.append(Pending(name: name ?? tensor.name, dtype: tensor.dtype, shape: tensor.shape, payload: .tensor(tensor)))
    }

    /// Adds raw little-endian bytes (checked against `shape` when writing).
    public mutating func add(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        pending.append(Pending(name: name, dtype: dtype, shape: shape, payload: .bytes(bytes)))
    }

    /// Adds f32 values, stored as `dtype` (F32, F16, BF16 or F64; narrowed with round-to-nearest-even).
    ///
    /// - Throws: `CheckpointError.unsupportedDType` for a non-float dtype.
    public mutating func add(name: String, shape: [Int], floats: [Float], dtype: DType = .f32) throws {
        guard [.f32, .f16, .bf16, .f64].contains(dtype) else {
            throw CheckpointError.unsupportedDType(file: "<writer>", key: name, dtype: dtype.rawValue)
        }
        pending.append(Pending(name: name, dtype: dtype, shape: shape, payload: .floats(floats)))
    }

    /// Adds a tensor whose bytes `generator` produces piece by piece while writing (for tensors too
    /// large to hold in memory, e.g. random weights). Pieces are at most 4 MiB and a multiple of
    /// the element size.
    public mutating func add(name: String, dtype: DType, shape: [Int], generator: @escaping Generator) {
        pending.append(Pending(name: name, dtype: dtype, shape: shape, payload: .generator(generator)))
    }

    /// Writes every tensor added so far (plus `metadata`) to `url`, replacing any existing file.
    ///
    /// - Throws: `CheckpointError.malformedHeader` for a duplicate or reserved name,
    ///   `CheckpointError.outOfBounds` when a tensor's bytes do not match its shape,
    ///   `CheckpointError.writeFailed` for I/O errors.
    public func write(to url: URL) throws {
        let path = url.path
        let ordered = pending.sorted { a, b in
            if a.dtype.size != b.dtype.size { return a.dtype.size > b.dtype.size }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var sizes: [Int] = []
        var seen = Set<String>()
        for p in ordered {
            guard p.name != "__metadata__" else {
                throw CheckpointError.malformedHeader(file: path, detail: "'__metadata__' is reserved and cannot name a tensor")
            }
            guard seen.insert(p.name).inserted else {
                throw CheckpointError.malformedHeader(file: path, detail: "tensor '\(p.name)' added twice")
            }
            let size = try TensorData.byteCount(of: p.shape, dtype: p.dtype, file: path, key: p.name)
            let actual: Int?
            switch p.payload {
            case .bytes(let b): actual = b.count
            case .tensor(let t): actual = t.byteCount
            case .floats(let f): actual = f.count * p.dtype.size
            case .generator: actual = nil
            }
            if let actual, actual != size {
                throw CheckpointError.outOfBounds(
                    file: path, key: p.name,
                    detail: "has \(actual) bytes but shape \(p.shape) of \(p.dtype.rawValue) needs \(size)")
            }
            sizes.append(size)
        }

        let header = SafetensorsWriter.header(ordered, sizes: sizes, metadata: metadata)
        let output = try OutputFile(destination: url)
        do {
            var prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
            prefix.append(contentsOf: header)
            try output.write(prefix)
            var scratch: UnsafeMutableRawBufferPointer?
            defer { scratch?.deallocate() }
            func chunkBuffer() -> UnsafeMutableRawBufferPointer {
                if let scratch { return scratch }
                let b = UnsafeMutableRawBufferPointer.allocate(byteCount: SafetensorsWriter.chunkBytes, alignment: 64)
                scratch = b
                return b
            }
            for (p, size) in zip(ordered, sizes) {
                switch p.payload {
                case .bytes(let b):
                    try output.write(b)
                case .tensor(let t):
                    try t.withUnsafeBytes { try output.write($0) }
                case .floats(let values):
                    if p.dtype == .f32 {
                        try values.withUnsafeBytes { try output.write($0) }
                    } else {
                        let buffer = chunkBuffer()
                        let perChunk = SafetensorsWriter.chunkBytes / p.dtype.size
                        try values.withUnsafeBufferPointer { src in
                            var start = 0
                            while start < src.count {
                                let n = min(perChunk, src.count - start)
                                TensorConversion.narrow(UnsafeBufferPointer(rebasing: src[start ..< start + n]),
                                                        to: p.dtype, into: buffer.baseAddress!)
                                try output.write(UnsafeRawBufferPointer(rebasing: buffer[0 ..< n * p.dtype.size]))
                                start += n
                            }
                        }
                    }
                case .generator(let generate):
                    let buffer = chunkBuffer()
                    var offset = 0
                    while offset < size {
                        let n = min(SafetensorsWriter.chunkBytes, size - offset)
                        let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< n])
                        try generate(offset, piece)
                        try output.write(UnsafeRawBufferPointer(piece))
                        offset += n
                    }
                }
            }
            try output.commit()
        } catch {
            output.abandon()
            throw error
        }
    }

    /// Writes `tensors` and `metadata` to `url` in one call.
    public static func write(_ tensors: [TensorData], metadata: [String: String] = [:], to url: URL) throws {
        var writer = SafetensorsWriter(metadata: metadata)
        for t in tensors { writer.add(t) }
        try writer.write(to: url)
    }

    /// The padded header JSON for `ordered` tensors.
    static func header(_ ordered: [Pending], sizes: [Int], metadata: [String: String]) -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        if !metadata.isEmpty {
            MiniJSONWriter.appendString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                MiniJSONWriter.appendString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                MiniJSONWriter.appendString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
            first = false
        }
        var offset = 0
        for (p, size) in zip(ordered, sizes) {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
            MiniJSONWriter.appendString(p.name, to: &json)
            MiniJSONWriter.append(":{\"dtype\":\"\(p.dtype.rawValue)\",\"shape\":[", to: &json)
            MiniJSONWriter.append(p.shape.map(String.init).joined(separator: ","), to: &json)
            MiniJSONWriter.append("],\"data_offsets\":[\(offset),\(offset + size)]}", to: &json)
            offset += size
        }
        json.append(UInt8(ascii: "}"))
        let padding = (8 - json.count % 8) % 8
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        return json
    }
}
