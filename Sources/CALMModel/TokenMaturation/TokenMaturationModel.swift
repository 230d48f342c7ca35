import CALMKernels
import CALMTensor
import Foundation

/// A Token Maturation language model (Naparstek, arXiv 2601.04854): a causal transformer that reads
/// and writes d-dimensional vectors, a liquid tail of K continuous vectors that mature toward the
/// model's predictions step by step, and a nearest-embedding commit at the front of the tail. Decoding
/// has no sampling: randomness enters only through the tail's embryos (and optional noise), so a seed
/// fixes the whole run.
///
/// ```swift
/// let model = try TokenMaturationModel.load(directory: URL(fileURLWithPath: "tm-tiny"))
/// var parameters = TokenMaturationParameters(maxTokens: 32, seed: 7)
/// parameters.guidanceScale = 2
/// let result = try model.generate(prompt: [1, 2, 3], parameters: parameters) { token in
///     print(token); return true
/// }
/// print(result.tokens, result.stopReason)
/// ```
///
/// Several generations advance together through `step(_:)`, which runs one backbone forward for all
/// of them; `generate` is that step with one sequence.
///
/// `@unchecked Sendable`: immutable once published: every stored property is a `let` of a
/// `Sendable` type except `directory`, which only `init` and `load` write, before the model is
/// returned; steps keep their state in `TokenMaturationSequence`s, not here.
public final class TokenMaturationModel: @unchecked Sendable {
    /// Sizes, hyper-parameters and defaults (`config.json`).
    public let config: TokenMaturationConfig
    /// The decoder stack (`config.backbone`).
    public let backbone: any VectorBackbone
    /// E, rows at radius R.
    public let embedding: NearestEmbedding
    /// Maturity conditioning MLP_α(SinEmb(α)).
    public let alphaConditioner: AlphaConditioner
    /// Tail-length FiLM.
    public let film: TailLengthFiLM
    /// Output head ẑ = Linear(final hidden).
    public let head: VectorHead
    /// The worker pool every kernel call uses.
    public let pool: ComputePool
    /// Folder the model was loaded from, if any.
    public private(set) var directory: URL?

    /// Loads a TM folder (`config.json` with `model_type` "token_maturation", plus its safetensors).
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> TokenMaturationModel {
        let (data, json, path) = try ModelFolder.configData(directory)
        let kind = try ModelFolder.kind(of: json, path: path)
        guard kind == .tokenMaturation else {
            throw ModelError.unknownModel(path: directory.path, reason: "config.json describes \(kind == .autoencoder ? "an" : "a") \(kind.displayName), not a Token Maturation model")
        }
        let config = try TokenMaturationConfig(data: data, file: path)
        let model = try TokenMaturationModel(config: config, source: try ModelFolder.openWeights(directory), options: options, configPath: path)
        model.directory = directory
        return model
    }

    /// Builds the model from any tensor source holding the backbone's Hugging Face names and the
    /// `tm.*` tensors (Docs/TokenMaturation.md).
    public convenience init(config: TokenMaturationConfig, source: any TensorSource, options: LoadOptions = LoadOptions()) throws {
        try self.init(config: config, source: source, options: options, configPath: source.url.path)
    }

    convenience init(config: TokenMaturationConfig, source: any TensorSource, options: LoadOptions, configPath: String) throws {
        try config.validate(file: configPath)
        let reader = WeightReader(source: source, prefix: "", storageDType: options.weightDType)
        let v = config.vocabSize, d = config.hiddenSize
        let key = TokenMaturationBackbones.embeddingKey(config.backbone)
        let backbone = try TokenMaturationBackbones.make(config: config, reader: reader, file: configPath)
        let embedding = try NearestEmbedding(weights: try reader.floats(key, shape: [v, d]), vocabularySize: v, dim: d,
                                             radius: config.embeddingRadius, file: reader.fileName, key: key)
        try self.init(config: config, backbone: backbone, embedding: embedding,
                      alphaConditioner: try AlphaConditioner.load(reader: reader, config: config),
                      film: try TailLengthFiLM.load(reader: reader, config: config),
                      head: try VectorHead.load(reader: reader, config: config), pool: options.pool)
    }

    /// Assembles a model from its parts (tests put a mock backbone here). Every part must have the
    /// config's width.
    public init(config: TokenMaturationConfig, backbone: any VectorBackbone, embedding: NearestEmbedding,
                alphaConditioner: AlphaConditioner, film: TailLengthFiLM, head: VectorHead, pool: ComputePool = .shared) throws {
        let d = config.hiddenSize
        for (name, width) in [("backbone", backbone.hidden), ("embedding", embedding.dim), ("alphaConditioner", alphaConditioner.hidden),
                              ("film", film.hidden), ("head", head.hidden)] where width != d {
            throw ModelError.invalidParameter(name: name, reason: "has width \(width), the config's hidden size is \(d)")
        }
        if embedding.vocabularySize != config.vocabSize {
            throw ModelError.invalidParameter(name: "embedding", reason: "has \(embedding.vocabularySize) rows, the config's vocabulary is \(config.vocabSize)")
        }
        if film.maxTailLength < config.maxTailLength {
            throw ModelError.invalidParameter(name: "film", reason: "covers K ≤ \(film.maxTailLength), the config allows \(config.maxTailLength)")
        }
        self.config = config
        self.backbone = backbone
        self.embedding = embedding
        self.alphaConditioner = alphaConditioner
        self.film = film
        self.head = head
        self.pool = pool
        directory = nil
    }

    /// d.
    public var hidden: Int { config.hiddenSize }

    /// The backbone's KV geometry with blocks of `blockPositions` positions.
    public func kvLayout(blockPositions: Int = 16) -> KVLayout { backbone.kvLayout(blockPositions: blockPositions) }

    /// A heap-backed cache for standalone use.
    public func makeCache(blockPositions: Int = 16) -> KVCache {
        let layout = kvLayout(blockPositions: blockPositions)
        return KVCache(layout: layout, source: HeapKVBlockSource(layout: layout))
    }

    /// `parameters` with the model's defaults filled in (tail length, guidance, maturity, rate,
    /// embryo scale, alignment), validated against the model.
    public func resolved(_ parameters: TokenMaturationParameters) throws -> TokenMaturationParameters {
        let r = try ResolvedTokenMaturationParameters(parameters, config: config)
        var p = parameters
        p.tailLength = r.tailLength; p.guidanceScale = r.guidanceScale; p.maturityMax = r.maturityMax
        p.maturationRate = r.maturationRate; p.embryoScale = r.embryoScale; p.alignment = r.alignment
        return p
    }

    /// KV positions a sequence with these parameters needs beyond its committed ones, in its own cache,
    /// during a step: the tail's scratch rows (K − 1 with shift alignment, K with same). The
    /// tail-only guidance pass and history-noise recomputation use caches of their own.
    public func scratchPositions(_ parameters: TokenMaturationParameters) throws -> Int {
        let r = try ResolvedTokenMaturationParameters(parameters, config: config)
        return r.alignment.tailRows(tailLength: r.tailLength)
    }

    /// Starts a generation: validates the prompt and the parameters, draws the K embryos from
    /// `randomness` (default: a stream seeded with `parameters.seed`) and precomputes the run's
    /// conditioning. `cache` (default: a fresh heap cache) may already hold a prefix of the prompt's
    /// positions, but not the last one.
    public func makeSequence(prompt: [Int], parameters: TokenMaturationParameters, cache: KVCache? = nil,
                             randomness: SequenceRandomness? = nil) throws -> TokenMaturationSequence {
        let resolved = try ResolvedTokenMaturationParameters(parameters, config: config)
        guard !prompt.isEmpty else { throw ModelError.invalidPrompt(reason: "empty prompt: give at least one token") }
        for id in prompt where id < 0 || id >= config.vocabSize {
            throw ModelError.invalidPrompt(reason: "token id \(id) is outside the vocabulary (size \(config.vocabSize))")
        }
        guard prompt.count + resolved.tailLength <= config.maxPositions else {
            throw ModelError.invalidPrompt(reason: "\(prompt.count) tokens and a tail of \(resolved.tailLength) exceed the model's \(config.maxPositions) positions")
        }
        let cache = cache ?? makeCache()
        let expected = kvLayout(blockPositions: cache.layout.blockPositions)
        guard cache.layout == expected else {
            throw ModelError.invalidParameter(name: "cache", reason: "layout \(cache.layout) does not match the backbone's \(expected)")
        }
        guard cache.count < prompt.count else {
            throw ModelError.invalidParameter(name: "cache", reason: "holds \(cache.count) positions; the last prompt position (\(prompt.count - 1)) must be left for the first step")
        }
        let rng = randomness ?? SeededRandomness(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        return try TokenMaturationSequence(prompt: prompt, parameters: parameters, resolved: resolved, model: self,
                                           cache: cache, randomness: rng)
    }
}
