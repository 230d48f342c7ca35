import Foundation

/// One named tensor of a checkpoint: dtype, shape and its raw little-endian bytes (contiguous,
/// row-major), kept alive by the object that owns them (a mapped file or an in-memory buffer).
///
/// Reading a tensor never copies until you ask for values:
///
/// ```swift
/// let source = try CheckpointLoader.open(directory: modelFolder)
/// let embedding = try source.tensor("transformer.embed_tokens.weight")
/// print(embedding.dtype, embedding.shape)          // F32 [256, 32]
/// let values: [Float] = try embedding.floats()     // widens F16/BF16/F64
/// embedding.withUnsafeBytes { raw in /* zero-copy view of the file */ }
/// ```
public struct TensorData: Sendable {
    /// The tensor's key in its checkpoint.
    public let name: String
    /// Element type of the stored bytes.
    public let dtype: DType
    /// Dimensions, outermost first; `[]` is a scalar.
    public let shape: [Int]
    /// Path of the file the tensor came from (used in error messages); `"<memory>"` otherwise.
    public let file: String
    /// Owner of the bytes.
    public let storage: any ByteStorage
    /// Offset of the first byte inside `storage`.
    public let byteOffset: Int
    /// Number of bytes: `elementCount * dtype.size`.
    public let byteCount: Int

    /// Number of elements (the product of `shape`; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Wraps a validated byte range of `storage` (callers have checked bounds and sizes).
    init(name: String, dtype: DType, shape: [Int], file: String,
         storage: any ByteStorage, byteOffset: Int, byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.file = file
        self.storage = storage
        self.byteOffset = byteOffset
        self.byteCount = byteCount
    }

    /// A tensor viewing `product(shape) * dtype.size` bytes of `storage` from `byteOffset` (no copy).
    ///
    /// - Throws: `CheckpointError.outOfBounds` when the range does not fit in `storage`,
    ///   `malformedHeader` for a negative dimension.
    public init(name: String, dtype: DType, shape: [Int], storage: any ByteStorage, byteOffset: Int = 0) throws {
        let count = try TensorData.byteCount(of: shape, dtype: dtype, file: "<memory>", key: name)
        let available = storage.withUnsafeBytes { $0.count }
        guard byteOffset >= 0, byteOffset <= available, count <= available - byteOffset else {
            throw CheckpointError.outOfBounds(
                file: "<memory>", key: name,
                detail: "bytes [\(byteOffset), +\(count)) exceed its storage (\(available) bytes)")
        }
        self.init(name: name, dtype: dtype, shape: shape, file: "<memory>", storage: storage,
                  byteOffset: byteOffset, byteCount: count)
    }

    /// A tensor holding a copy of `bytes` (little-endian elements of `dtype`, row-major).
    ///
    /// - Throws: `CheckpointError.outOfBounds` when `bytes.count` is not
    ///   `product(shape) * dtype.size`, or `malformedHeader` for a negative dimension.
    public init<Bytes: Collection>(name: String, dtype: DType, shape: [Int], bytes: Bytes) throws
    where Bytes.Element == UInt8 {
        let expected = try TensorData.byteCount(of: shape, dtype: dtype, file: "<memory>", key: name)
        guard bytes.count == expected else {
            throw CheckpointError.outOfBounds(
                file: "<memory>", key: name,
                detail: "holds \(bytes.count) bytes but shape \(shape) of \(dtype.rawValue) needs \(expected)")
        }
        self.init(name: name, dtype: dtype, shape: shape, file: "<memory>",
                  storage: MemoryStorage(bytes), byteOffset: 0, byteCount: expected)
    }

    /// A tensor of `values` stored as `dtype` (F32, F16, BF16 or F64; rounded to nearest even).
    ///
    /// - Throws: `CheckpointError.outOfBounds` when `values.count` does not match `shape`,
    ///   `unsupportedDType` for a non-float `dtype`.
    public init(name: String, shape: [Int], floats values: [Float], dtype: DType = .f32) throws {
        guard [.f32, .f16, .bf16, .f64].contains(dtype) else {
            throw CheckpointError.unsupportedDType(file: "<memory>", key: name, dtype: dtype.rawValue)
        }
        let count = try TensorData.byteCount(of: shape, dtype: dtype, file: "<memory>", key: name)
        guard values.count * dtype.size == count else {
            throw CheckpointError.outOfBounds(
                file: "<memory>", key: name, detail: "has \(values.count) values but shape \(shape) needs \(count / dtype.size)")
        }
        let storage = MemoryStorage(count: count) { buffer in
            values.withUnsafeBufferPointer { src in
                if let base = buffer.baseAddress { TensorConversion.narrow(src, to: dtype, into: base) }
            }
        }
        self.init(name: name, dtype: dtype, shape: shape, file: "<memory>",
                  storage: storage, byteOffset: 0, byteCount: count)
    }

    /// A tensor of `values` stored as I64.
    ///
    /// - Throws: `CheckpointError.outOfBounds` when `values.count` does not match `shape`.
    public init(name: String, shape: [Int], int64s values: [Int64]) throws {
        let bytes = values.withUnsafeBytes { Array($0) }
        try self.init(name: name, dtype: .i64, shape: shape, bytes: bytes)
    }

    /// Calls `body` with the tensor's raw little-endian bytes (`byteCount` long, any alignment).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[byteOffset ..< byteOffset + byteCount]))
        }
    }

    /// A copy of the raw bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Whether both tensors view overlapping bytes of the same storage (aliases in a checkpoint).
    public func sharesBytes(with other: TensorData) -> Bool {
        storage === other.storage
            && byteOffset < other.byteOffset + other.byteCount
            && other.byteOffset < byteOffset + byteCount
    }

    /// The values as f32: F32 copied, F16/BF16 widened exactly, F64 rounded.
    ///
    /// - Throws: `CheckpointError.unsupportedDType` for integer and bool tensors.
    public func floats() throws -> [Float] {
        guard [.f32, .f16, .bf16, .f64].contains(dtype) else {
            throw CheckpointError.unsupportedDType(file: file, key: name, dtype: dtype.rawValue)
        }
        let n = elementCount
        return withUnsafeBytes { raw in
            [Float](unsafeUninitializedCapacity: n) { out, initialized in
                if n > 0, let src = raw.baseAddress, let dst = out.baseAddress {
                    TensorConversion.widenToFloat(src, dtype: dtype, count: n, into: dst)
                }
                initialized = n
            }
        }
    }

    /// The values as f64 (exact for every float dtype).
    ///
    /// - Throws: `CheckpointError.unsupportedDType` for integer and bool tensors.
    public func float64s() throws -> [Double] {
        switch dtype {
        case .f64: return withUnsafeBytes { raw in (0..<elementCount).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
        case .f32, .f16, .bf16: return try floats().map(Double.init)
        default: throw CheckpointError.unsupportedDType(file: file, key: name, dtype: dtype.rawValue)
        }
    }

    /// The values as Int64, from I64, I32, I16, I8, U8 or BOOL.
    ///
    /// - Throws: `CheckpointError.unsupportedDType` for float tensors.
    public func int64s() throws -> [Int64] {
        let n = elementCount
        return try withUnsafeBytes { raw -> [Int64] in
            switch dtype {
            case .i64: return (0..<n).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .i32: return (0..<n).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            case .i16: return (0..<n).map { Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .i8: return (0..<n).map { Int64(Int8(bitPattern: raw[$0])) }
            case .u8: return (0..<n).map { Int64(raw[$0]) }
            case .bool: return (0..<n).map { raw[$0] != 0 ? 1 : 0 }
            default: throw CheckpointError.unsupportedDType(file: file, key: name, dtype: dtype.rawValue)
            }
        }
    }

    /// `product(shape) * dtype.size`, checking for negative dimensions and overflow.
    static func byteCount(of shape: [Int], dtype: DType, file: String, key: String) throws -> Int {
        var count = dtype.size
        for dim in shape {
            guard dim >= 0 else {
                throw CheckpointError.malformedHeader(file: file, detail: "tensor '\(key)' has a negative dimension in shape \(shape)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw CheckpointError.malformedHeader(file: file, detail: "tensor '\(key)' shape \(shape) is too large")
            }
            count = product
        }
        return count
    }
}

extension TensorData: CustomStringConvertible {
    /// E.g. `x.weight F32 [2, 3]`.
    public var description: String { "\(name) \(dtype.rawValue) \(shape)" }
}
