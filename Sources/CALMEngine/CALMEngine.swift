import CALMModel
import CALMTokenizer
import Foundation
import Synchronization

/// A prompt: text (tokenised with the engine's tokenizer, beginning-of-text prepended as the
/// reference's training and evaluation do) or token ids used as they are.
public enum Prompt: Sendable, ExpressibleByStringLiteral {
    case text(String)
    case tokens([Int])
    public init(stringLiteral value: String) { self = .text(value) }
}

/// The in-process CALM engine: load once, share across tasks, stream many generations at once.
///
/// All requests are served by one scheduler with continuous batching (every active sequence
/// advances one chunk per step, in one batched backbone pass, and all their samples go through the
/// head and decoder together), a budgeted KV-cache pool with prefix sharing, and bounded,
/// back-pressured streams. With a seed, a request's output is the same alone or batched.
///
/// ```swift
/// let engine = try CALMEngine(directory: modelURL)
/// let stream = try engine.generate(prompt: "The meaning of life is",
///                                  parameters: SamplingParameters(maxTokens: 64, temperature: 0.5, seed: 1))
/// for await event in stream {
///     switch event {
///     case let .chunk(chunk): print(chunk.text, terminator: "")
///     case let .completed(info): print("\n[\(info.reason), \(info.generatedTokens) tokens]")
///     }
/// }
/// ```
public final class CALMEngine: Sendable {
    public let model: CALMModel
    public let tokenizer: (any TextTokenizer)?
    public let configuration: EngineConfiguration
    let scheduler: Scheduler
    private let nextID = Atomic<Int>(0)

    /// An engine over an already loaded model.
    public init(model: CALMModel, tokenizer: (any TextTokenizer)? = nil, configuration: EngineConfiguration = EngineConfiguration()) throws {
        try configuration.validate()
        self.model = model
        self.tokenizer = tokenizer
        self.configuration = configuration
        scheduler = Scheduler(model: model, tokenizer: tokenizer, configuration: configuration)
    }

    /// Loads a model folder; the tokenizer comes from `tokenizerDirectory` or the model folder when
    /// it holds `tokenizer.json` or `tokenizer.model`.
    public convenience init(directory: URL, tokenizerDirectory: URL? = nil, configuration: EngineConfiguration = EngineConfiguration(),
                            loadOptions: LoadOptions = LoadOptions()) throws {
        let model = try CALMModel.load(directory: directory, options: loadOptions)
        var tokenizer: (any TextTokenizer)?
        let fm = FileManager.default
        if let tokenizerDirectory {
            tokenizer = try TokenizerLoader.load(directory: tokenizerDirectory)
        } else if fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path)
                    || fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.model").path) {
            tokenizer = try TokenizerLoader.load(directory: directory)
        }
        try self.init(model: model, tokenizer: tokenizer, configuration: configuration)
    }

    /// KV blocks in the pool, and free now.
    public var kvBlocksTotal: Int { scheduler.pool.totalBlocks }
    public var kvBlocksFree: Int { scheduler.pool.freeBlocks }
    /// Where the time went since the engine started (or the last `resetStatistics()`).
    public var statistics: EngineStatistics { scheduler.statistics.snapshot }
    /// Starts the statistics afresh (benchmarks call this between runs).
    public func resetStatistics() { scheduler.statistics.reset() }

    /// Most KV blocks in use at once so far.
    public var kvBlocksPeak: Int { scheduler.pool.peakBlocksInUse }

    /// Starts a generation and returns its events. Invalid parameters, an empty prompt, or a
    /// request that can never fit throw here, at the call.
    public func generate(prompt: Prompt, parameters: SamplingParameters = SamplingParameters()) throws -> GenerationStream {
        try parameters.validate()
        if !parameters.stopSequences.isEmpty && tokenizer == nil { throw EngineError.noTokenizer }
        let ids: [Int]
        switch prompt {
        case let .tokens(t): ids = t
        case let .text(text):
            guard let tokenizer else { throw EngineError.noTokenizer }
            ids = tokenizer.encode(text, addBOS: true, allowSpecialTokens: true)
        }
        guard !ids.isEmpty else { throw EngineError.invalidPrompt(reason: "empty prompt: give at least one token") }
        if let bad = ids.first(where: { $0 < 0 || $0 >= model.config.vocabSize }) {
            throw EngineError.invalidPrompt(reason: "token id \(bad) is outside the vocabulary (size \(model.config.vocabSize))")
        }
        let k = model.patchSize
        let padded = ids + [Int](repeating: model.padTokenID, count: (k - ids.count % k) % k)
        let promptChunks = padded.count / k
        let context = model.config.maxPositionEmbeddings
        guard promptChunks + 1 <= context else {
            throw EngineError.requestTooLarge(reason: "prompt of \(ids.count) tokens (\(promptChunks) chunks) leaves no room in the context of \(context) chunks")
        }
        let reserved = min(promptChunks + (parameters.maxTokens + k - 1) / k, context)
        let blocks = (reserved + configuration.blockChunks - 1) / configuration.blockChunks
        guard blocks <= scheduler.pool.totalBlocks else {
            throw EngineError.requestTooLarge(reason: "prompt plus maxTokens need \(reserved) chunks = \(blocks) KV blocks; the pool holds \(scheduler.pool.totalBlocks) (kvCacheBytes \(configuration.kvCacheBytes))")
        }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let scheduler = self.scheduler
        let channel = EventChannel(requestID: id, limit: configuration.streamBufferLimit,
                                   onDrain: { Task { await scheduler.kick() } },
                                   onConsumerGone: { scheduler.cancel(id) })
        let sequence = SequenceState(id: id, parameters: parameters, promptIDs: ids, paddedPrompt: padded, patchSize: k,
                                     reservedChunks: reserved, channel: channel, tokenizer: tokenizer)
        scheduler.submit(sequence)
        let lifetime = StreamLifetime { channel.streamDropped() }
        return GenerationStream(channel: channel, lifetime: lifetime)
    }

    /// Generates to the end and returns the whole text, ids and statistics.
    public func complete(prompt: Prompt, parameters: SamplingParameters = SamplingParameters()) async throws -> Completion {
        var text = "", tokens: [Int] = []
        for await event in try generate(prompt: prompt, parameters: parameters) {
            switch event {
            case let .chunk(c): text += c.text; tokens += c.tokens
            case let .completed(info): return Completion(text: text, tokens: tokens, info: info)
            }
        }
        // The stream always ends with `.completed`; reaching here means the task was cancelled.
        return Completion(text: text, tokens: tokens, info: CompletionInfo(
            reason: .cancelled, promptTokens: 0, generatedTokens: tokens.count, chunks: 0, timeToFirstChunk: nil,
            chunkSeconds: [], totalSeconds: 0, sampler: SamplerStatistics()))
    }
}
