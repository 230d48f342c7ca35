import CALMModel
import CALMTokenizer
import Foundation

/// One request inside the scheduler: a small state machine
/// waiting → prefilling → decoding → finished, where every transition takes or frees resources in
/// exactly one place (`Scheduler.admit` takes KV blocks, `Scheduler.finish` returns them).
final class SequenceState: @unchecked Sendable {
    enum Phase { case waiting, prefilling, decoding, finished }

    let id: Int
    let parameters: SamplingParameters
    let promptIDs: [Int]
    /// Prompt right-padded with `[PAD]` to whole chunks.
    let paddedPrompt: [Int]
    let channel: EventChannel
    let randomness: SeededRandomness
    let submitted: DispatchTime
    /// Worst-case chunks (prompt + maxTokens), reserved at admission.
    let reservedChunks: Int
    /// Chunks in the padded prompt.
    let promptChunks: Int

    var phase = Phase.waiting
    var cache: KVCache?
    /// Prefix blocks shared from other requests (released by reference).
    var sharedBlocks: [UnsafeMutablePointer<Float>] = []
    /// Own blocks registered as shareable prefix blocks, with the chunk count that completes each.
    var pendingPrefix: [(block: UnsafeMutablePointer<Float>, completesAt: Int)] = []
    /// Prompt chunks already in the cache.
    var prefilledChunks = 0
    /// The chunk to feed next while decoding.
    var lastChunk: [Int] = []
    var generated: [Int] = []
    var chunkIndex = 0
    var detokenizer: StreamingDetokenizer?
    var stopFilter: StopSequenceFilter
    var text = ""
    var statistics = SamplerStatistics()
    var firstChunkAt: Double?
    var lastChunkAt: Double = 0
    var chunkSeconds: [Double] = []
    var cancelRequested = false

    init(id: Int, parameters: SamplingParameters, promptIDs: [Int], paddedPrompt: [Int], patchSize: Int, reservedChunks: Int,
         channel: EventChannel, tokenizer: (any TextTokenizer)?) {
        self.promptChunks = paddedPrompt.count / patchSize
        self.id = id
        self.parameters = parameters
        self.promptIDs = promptIDs
        self.paddedPrompt = paddedPrompt
        self.reservedChunks = reservedChunks
        self.channel = channel
        self.randomness = SeededRandomness(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        self.submitted = .now()
        self.detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0) }
        self.stopFilter = StopSequenceFilter(stops: parameters.stopSequences)
    }

    func secondsSinceSubmission() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - submitted.uptimeNanoseconds) / 1e9
    }
}
