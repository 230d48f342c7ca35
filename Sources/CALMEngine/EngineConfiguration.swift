import Foundation
import CALMModel

/// Settings fixed when an engine is created.
public struct EngineConfiguration: Sendable, Equatable {
    /// Memory budget for the KV-cache pool, in bytes (blocks are preallocated from it).
    public var kvCacheBytes: Int
    /// Chunks (backbone positions) per KV block.
    public var blockChunks: Int
    /// Prompt chunks prefilled per step across all new sequences, so a long prompt does not stall
    /// the sequences that are decoding.
    public var prefillChunksPerStep: Int
    /// Events a stream buffers before its sequence pauses (back-pressure).
    public var streamBufferLimit: Int
    /// Samples each exact-rejection sequence draws per round (extra draws are discarded).
    public var exactRejectionDrawsPerRound: Int

    public init(kvCacheBytes: Int = 1 << 30, blockChunks: Int = 16, prefillChunksPerStep: Int = 256,
                streamBufferLimit: Int = 8, exactRejectionDrawsPerRound: Int = Sampler.defaultDrawsPerRound) {
        self.kvCacheBytes = kvCacheBytes
        self.blockChunks = blockChunks
        self.prefillChunksPerStep = prefillChunksPerStep
        self.streamBufferLimit = streamBufferLimit
        self.exactRejectionDrawsPerRound = exactRejectionDrawsPerRound
    }

    func validate() throws {
        if kvCacheBytes <= 0 { throw EngineError.invalidConfiguration(name: "kvCacheBytes", reason: "must be positive") }
        if blockChunks <= 0 { throw EngineError.invalidConfiguration(name: "blockChunks", reason: "must be positive") }
        if prefillChunksPerStep <= 0 { throw EngineError.invalidConfiguration(name: "prefillChunksPerStep", reason: "must be positive") }
        if streamBufferLimit <= 0 { throw EngineError.invalidConfiguration(name: "streamBufferLimit", reason: "must be positive") }
        if exactRejectionDrawsPerRound <= 0 { throw EngineError.invalidConfiguration(name: "exactRejectionDrawsPerRound", reason: "must be positive") }
    }
}
