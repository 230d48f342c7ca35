import CALMTensor
import Foundation

/// A tensor source that makes random weights in memory on request (same values as
/// `RandomModelWriter` writes for the same seed), so benchmarks can build a CALM-M-sized model
/// without writing gigabytes to disk.
public final class RandomTensorSource: TensorSource, Sendable {
    public let url: URL
    public let tensorNames: [String]
    public let metadata: [String: String] = [:]
    private let shapes: [String: [Int]]
    private let seeds: [String: UInt64]
    private let dtype: DType

    /// The CALM tensors of `model` plus the autoencoder's under `ae_model.`.
    public init(model: CALMConfig, autoencoder: AutoencoderConfig, dtype: DType, seed: UInt64 = 0) {
        let list = RandomModelWriter.calmTensors(model) + RandomModelWriter.autoencoderTensors(autoencoder).map { ("ae_model." + $0.0, $0.1) }
        url = URL(fileURLWithPath: "/random-weights")
        tensorNames = list.map(\.0)
        shapes = Dictionary(uniqueKeysWithValues: list)
        seeds = Dictionary(uniqueKeysWithValues: list.enumerated().map { ($0.element.0, seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64($0.offset + 1)) })
        self.dtype = dtype
    }

    public func info(_ name: String) -> (dtype: DType, shape: [Int])? {
        shapes[name].map { (dtype, $0) }
    }

    public func tensor(_ name: String) throws -> TensorData {
        guard let shape = shapes[name], let seed = seeds[name] else { throw CheckpointError.missingKey(file: url.path, key: name) }
        let count = shape.reduce(1, *)
        let kind = RandomModelWriter.initialisation(name: name, shape: shape)
        let storage = MemoryStorage(count: count * dtype.size) { raw in
            let step = 1 << 20
            var offset = 0
            while offset < count {
                let n = min(step, count - offset)
                RandomModelWriter.fill(UnsafeMutableRawBufferPointer(rebasing: raw[(offset * dtype.size)..<((offset + n) * dtype.size)]),
                                       dtype: dtype, seed: seed, elementOffset: offset, kind: kind)
                offset += n
            }
        }
        return try TensorData(name: name, dtype: dtype, shape: shape, storage: storage)
    }
}
