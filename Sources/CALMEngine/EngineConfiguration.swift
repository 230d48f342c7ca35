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
    /// How CALM's head samples are decoded (`DecodingStrategy`): `.lazy` (the default) computes the
    /// vocabulary argmax only where it can change a selection; `.full` decodes every sample whole.
    /// Both give the same tokens.
    public var chunkDecoding: DecodingStrategy

    public init(kvCacheBytes: Int = 1 << 30, blockChunks: Int = 16, prefillChunksPerStep: Int = 256,
                streamBufferLimit: Int = 8, exactRejectionDrawsPerRound: Int = Sampler.defaultDrawsPerRound,
                chunkDecoding: DecodingStrategy = .lazy) {
        self.kvCacheBytes = kvCacheBytes
        self.blockChunks = blockChunks
        self.prefillChunksPerStep = prefillChunksPerStep
        self.streamBufferLimit = streamBufferLimit
        self.exactRejectionDrawsPerRound = exactRejectionDrawsPerRound
        self.chunkDecoding = chunkDecoding
    }

    /// Upper limits of the sizes (a value beyond one is a typed error, never an allocation failure
    /// or an overflow): positions per block, prompt positions per step, buffered events, exact draws
    /// per round.
    public static let limits = (blockChunks: 4096, prefillChunksPerStep: 1 << 20, streamBufferLimit: 1 << 20,
                                exactRejectionDrawsPerRound: 4096)

    /// Bytes of physical memory (the KV pool is preallocated, so it must fit).
    static var physicalMemoryBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : bytes
    }

    /// Throws `EngineError.invalidConfiguration` naming the first setting outside its range; the
    /// engine checks this when it is created, and an app can check settings it reads from a file
    /// before loading a model.
    ///
    /// ```swift
    /// let blockChunks = Int(ProcessInfo.processInfo.environment["KV_BLOCK_CHUNKS"] ?? "") ?? 16
    /// let configuration = EngineConfiguration(kvCacheBytes: 512 << 20, blockChunks: blockChunks)
    /// try configuration.validate()   // EngineError.invalidConfiguration(name: "blockChunks", …) if out of range
    /// ```
    public func validate() throws {
        func check(_ name: String, _ value: Int, _ limit: Int) throws {
            guard value >= 1, value <= limit else {
                throw EngineError.invalidConfiguration(name: name, reason: "must be in 1…\(limit), got \(value)")
            }
        }
        try check("kvCacheBytes", kvCacheBytes, Self.physicalMemoryBytes)
        try check("blockChunks", blockChunks, Self.limits.blockChunks)
        try check("prefillChunksPerStep", prefillChunksPerStep, Self.limits.prefillChunksPerStep)
        try check("streamBufferLimit", streamBufferLimit, Self.limits.streamBufferLimit)
        try check("exactRejectionDrawsPerRound", exactRejectionDrawsPerRound, Self.limits.exactRejectionDrawsPerRound)
    }
}
