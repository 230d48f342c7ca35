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

/// The in-process engine: load a model once, share it across tasks, stream many generations at
/// once. It serves every registered model family (`ModelFamilyRegistry`): CALM and discrete
/// (Llama, GPT-2) models today.
///
/// All requests are served by one scheduler with continuous batching (every active sequence
/// advances one step per batched pass — a chunk of K tokens for CALM, one token for Llama), a
/// budgeted KV-cache pool with prefix sharing, and bounded, back-pressured streams. With a seed, a
/// request's output is the same alone or batched. A request that fails at run time ends with
/// `.completed(reason: .error(…))`; the others go on.
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
    /// The model family this engine serves (`CALMFamily`, `DiscreteFamily`, …).
    public let family: any ModelFamily
    public let tokenizer: (any TextTokenizer)?
    public let configuration: EngineConfiguration
    let scheduler: Scheduler
    private let nextID = Atomic<Int>(0)

    /// An engine over any model family.
    public init(family: any ModelFamily, tokenizer: (any TextTokenizer)? = nil,
                configuration: EngineConfiguration = EngineConfiguration()) throws {
        try configuration.validate()
        self.family = family
        self.tokenizer = tokenizer
        self.configuration = configuration
        scheduler = try Scheduler(family: family, configuration: configuration)
    }

    /// An engine over an already loaded CALM model.
    public convenience init(model: CALMModel, tokenizer: (any TextTokenizer)? = nil,
                            configuration: EngineConfiguration = EngineConfiguration()) throws {
        try self.init(family: CALMFamily(model: model), tokenizer: tokenizer, configuration: configuration)
    }

    /// An engine over an already loaded discrete model (Llama, GPT-2).
    public convenience init(model: any DiscreteLanguageModel, tokenizer: (any TextTokenizer)? = nil,
                            configuration: EngineConfiguration = EngineConfiguration()) throws {
        try self.init(family: DiscreteFamily(model: model), tokenizer: tokenizer, configuration: configuration)
    }

    /// Loads a model folder of any registered family (chosen from its `config.json`); the tokenizer
    /// comes from `tokenizerDirectory` or the model folder (`TokenizerLoader.discover`).
    public convenience init(directory: URL, tokenizerDirectory: URL? = nil, configuration: EngineConfiguration = EngineConfiguration(),
                            loadOptions: LoadOptions = LoadOptions()) throws {
        let family = try ModelFamilyRegistry.load(directory: directory, options: loadOptions)
        let tokenizer = try TokenizerLoader.discover(explicit: tokenizerDirectory, modelDirectory: directory)
        try self.init(family: family, tokenizer: tokenizer, configuration: configuration)
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

    /// Starts a generation from text (tokenised with the engine's tokenizer, beginning-of-text
    /// prepended) and returns its events.
    public func generate(prompt: String, parameters: SamplingParameters = SamplingParameters()) throws -> GenerationStream {
        try generate(prompt: .text(prompt), parameters: parameters)
    }

    /// Starts a generation and returns its events. Invalid parameters (for this model family), an
    /// empty prompt, or a request that can never fit throw here, at the call. `maxTokens` beyond
    /// what the context can hold is clamped to it.
    public func generate(prompt: Prompt, parameters: SamplingParameters = SamplingParameters()) throws -> GenerationStream {
        try parameters.validate()
        try family.validate(parameters)
        if !parameters.stopSequences.isEmpty && tokenizer == nil { throw EngineError.noTokenizer }
        let ids: [Int]
        switch prompt {
        case let .tokens(t): ids = t
        case let .text(text):
            guard let tokenizer else { throw EngineError.noTokenizer }
            ids = tokenizer.encode(text, addBOS: true, allowSpecialTokens: true)
        }
        guard !ids.isEmpty else { throw EngineError.invalidPrompt(reason: "empty prompt: give at least one token") }
        if let bad = ids.first(where: { $0 < 0 || $0 >= family.vocabularySize }) {
            throw EngineError.invalidPrompt(reason: "token id \(bad) is outside the vocabulary (size \(family.vocabularySize))")
        }
        let unit = family.tokensPerPosition
        let padding = (unit - ids.count % unit) % unit
        guard padding == 0 || family.paddingTokenID != nil else {
            throw EngineError.invalidPrompt(reason: "the \(family.name) family has \(unit) tokens per position but no padding token")
        }
        let padded = ids + [Int](repeating: family.paddingTokenID ?? 0, count: padding)
        let promptPositions = padded.count / unit
        let context = family.contextPositions
        let scratch = max(0, family.scratchPositions(for: parameters))
        // promptPositions + 1 + scratch <= context, without overflow
        guard context > promptPositions, scratch < context - promptPositions else {
            throw EngineError.requestTooLarge(reason: "prompt of \(ids.count) tokens (\(promptPositions) positions)\(scratch > 0 ? " plus \(scratch) scratch positions" : "") leaves no room in the context of \(context) positions")
        }
        // Overflow-safe whatever maxTokens and the context are (a config may give any context length):
        // the output's positions, ceil(maxTokens / unit), at most what the context has left; then the
        // reservation, at most the context; then whole blocks.
        let outputPositions = min((parameters.maxTokens - 1) / unit + 1, context - promptPositions)
        let reserved = min(promptPositions + outputPositions, context - scratch) + scratch
        let blocks = reserved / configuration.blockChunks + (reserved % configuration.blockChunks == 0 ? 0 : 1)
        guard blocks <= scheduler.pool.totalBlocks else {
            throw EngineError.requestTooLarge(reason: "prompt plus maxTokens need \(reserved) positions = \(blocks) KV blocks; the pool holds \(scheduler.pool.totalBlocks) (kvCacheBytes \(configuration.kvCacheBytes))")
        }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let scheduler = self.scheduler
        let channel = EventChannel(requestID: id, limit: configuration.streamBufferLimit,
                                   onDrain: { Task { await scheduler.kick() } },
                                   onConsumerGone: { scheduler.cancel(id) })
        let sequence = SequenceState(id: id, parameters: parameters, promptIDs: ids, paddedPrompt: padded, tokensPerPosition: unit,
                                     reservedPositions: reserved, scratchPositions: scratch,
                                     prefixSharingKey: family.prefixSharingKey(for: parameters), channel: channel)
        scheduler.submit(sequence)
        let lifetime = StreamLifetime { channel.streamDropped() }
        let processor = OutputProcessor(tokenizer: tokenizer, stopSequences: parameters.stopSequences, promptTokens: ids.count)
        return GenerationStream(channel: channel, lifetime: lifetime, processor: processor)
    }

    /// Generates to the end and returns the whole text, ids and statistics. In a cancelled task the
    /// request is cancelled and the result says so (reason `.cancelled`, with the real counts);
    /// throws `CancellationError` if the stream ended without its summary.
    public func complete(prompt: Prompt, parameters: SamplingParameters = SamplingParameters()) async throws -> Completion {
        var text = "", tokens: [Int] = []
        for await event in try generate(prompt: prompt, parameters: parameters) {
            switch event {
            case let .chunk(c): text += c.text; tokens += c.tokens
            case let .completed(info): return Completion(text: text, tokens: tokens, info: info)
            }
        }
        throw CancellationError()
    }

    /// `complete(prompt:parameters:)` for a text prompt.
    public func complete(prompt: String, parameters: SamplingParameters = SamplingParameters()) async throws -> Completion {
        try await complete(prompt: .text(prompt), parameters: parameters)
    }
}
