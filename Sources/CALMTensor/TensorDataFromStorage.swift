import Foundation

extension TensorData {
    /// A tensor over the whole of `storage` (tensors made in memory, e.g. random weights).
    ///
    /// - Throws: `CheckpointError.outOfBounds` when the storage size is not
    ///   `product(shape) * dtype.size`.
    public init(name: String, dtype: DType, shape: [Int], storage: MemoryStorage) throws {
        let expected = shape.reduce(1, *) * dtype.size
        guard storage.count == expected, shape.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError.outOfBounds(file: "<memory>", key: name,
                                              detail: "storage holds \(storage.count) bytes, shape \(shape) of \(dtype.rawValue) needs \(expected)")
        }
        self.init(name: name, dtype: dtype, shape: shape, file: "<memory>", storage: storage, byteOffset: 0, byteCount: expected)
    }
}
