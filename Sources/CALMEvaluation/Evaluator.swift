import CALMModel
import Foundation

/// Settings of a BrierLM evaluation.
public struct EvaluationOptions: Sendable {
    /// Seed of the sampling noise.
    public var seed: UInt64 = 0
    /// CALM only: also compute the energy loss (8 head samples per position instead of 2).
    public var energyLoss = false
    /// K < 4: windows continued together in one batched step (bounds the forked KV caches).
    public var continuationGroup = 256
    /// Token Maturation only: the decoding settings the maturations use (nil fields and nil: the
    /// model's `config.json` defaults).
    public var maturation: TokenMaturationParameters?
    /// Settings with the reference's defaults (seed 0, no energy loss, groups of 256 windows).
    public init(seed: UInt64 = 0, energyLoss: Bool = false, continuationGroup: Int = 256,
                maturation: TokenMaturationParameters? = nil) {
        self.seed = seed; self.energyLoss = energyLoss; self.continuationGroup = continuationGroup
        self.maturation = maturation
    }
}

/// Progress of a running evaluation, reported after every block.
public struct EvaluationProgress: Sendable {
    public var blocksDone: Int
    public var blocks: Int
    public var tokensDone: Int
    public var seconds: Double
    /// BrierLM (×100) so far.
    public var brierLM: Double
}

/// The outcome of a BrierLM evaluation.
public struct EvaluationResult: Sendable {
    public var report: BrierReport
    /// "calm", "llama" or "token_maturation".
    public var modelKind: String
    public var chunkSize: Int
    public var blockSize: Int
    /// Tokens in the evaluated blocks.
    public var tokens: Int
    public var seconds: Double
    /// CALM with the energy loss on: mean of the blocks' energy losses (the reference's `eval_loss`).
    public var energyLoss: Double?
    /// Discrete models: mean −log p(target) in nats over all predicted tokens, and exp of it.
    public var crossEntropy: Double?
    public var perplexity: Double? { crossEntropy.map { exp($0) } }
    /// K < 4: windows that needed continuation steps.
    public var continuedWindows = 0
    /// Token Maturation: backbone rows run (teacher-forced runs and continuations).
    public var backboneRows: Int?
    /// Token Maturation: backbone forwards run (one per position and block, one per continuation step).
    public var backboneForwards: Int?

    public var blocks: Int { report.blocks }
    public var tokensPerSecond: Double { Double(tokens) / max(seconds, 1e-9) }

    /// The `calm eval --json` object.
    public func jsonObject(extra: [String: Any] = [:]) -> [String: Any] {
        func clean(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        var json: [String: Any] = [
            "model_kind": modelKind,
            "chunk_size": chunkSize,
            "block_size": blockSize,
            "brier": report.brier.map(clean),
            "brier_stderr": report.brierStderr.map(clean),
            "brierlm": clean(report.brierLM),
            "brierlm_stderr": clean(report.brierLMStderr),
            "brierlm_unscaled": clean(report.brierLMUnscaled),
            "brierlm_unscaled_stderr": clean(report.brierLMUnscaledStderr),
            // the reference's max(Π Brier-n, 0)^¼ reads a product of an even number of negatives
            // as a score; a reader of the JSON must be able to tell (the text output says so)
            "brierlm_meaningful": report.brierLMIsMeaningful,
            "accuracy": report.accuracy.map(clean),
            "accuracy_stderr": report.accuracyStderr.map(clean),
            "collision": report.collision.map(clean),
            "collision_stderr": report.collisionStderr.map(clean),
            "stderr_method": "per-position estimates as independent draws; BrierLM by the delta method",
            "positions": report.positions,
            "tokens": tokens,
            "blocks": blocks,
            "seconds": seconds,
            "tokens_per_s": tokensPerSecond,
        ]
        if let energyLoss { json["energy_loss"] = clean(energyLoss) }
        if let backboneRows { json["backbone_rows"] = backboneRows }
        if let backboneForwards { json["backbone_forwards"] = backboneForwards }
        if let crossEntropy {
            json["cross_entropy"] = clean(crossEntropy)
            json["perplexity"] = clean(exp(crossEntropy))
        }
        for (key, value) in extra { json[key] = value }
        return json
    }
}

/// Runs the BrierLM protocol over blocks of token ids.
///
/// ```swift
/// let documents = try EvaluationCorpus.readDocuments(dataURL)
/// let blocks = try TokenBlocks.tokenize(documents, tokenizer: tokenizer, blockSize: 8192)
/// let evaluator = BrierLMEvaluator(model: try ModelLoader.load(directory: modelURL))
/// let result = try evaluator.evaluate(blocks.blocks)
/// print(result.report.brierLM)
/// ```
public final class BrierLMEvaluator {
    public let adapter: BrierEvaluable
    public let modelKind: String
    public let options: EvaluationOptions

    public init(model: AnyLanguageModel, options: EvaluationOptions = EvaluationOptions()) {
        switch model {
        case .calm(let m): adapter = CALMBrierModel(model: m, energyLoss: options.energyLoss); modelKind = "calm"
        case .llama(let m): adapter = LlamaBrierModel(model: m); modelKind = "llama"
        case .tokenMaturation(let m):
            adapter = TokenMaturationBrierModel(model: m, parameters: options.maturation ?? TokenMaturationParameters())
            modelKind = ModelKind.tokenMaturation.rawValue
        }
        self.options = options
    }

    /// Any model adapter (tests use synthetic ones).
    public init(adapter: BrierEvaluable, kind: String, options: EvaluationOptions = EvaluationOptions()) {
        self.adapter = adapter
        self.modelKind = kind
        self.options = options
    }

    /// Evaluates `blocks` (each a whole number of chunks) with seeded noise.
    public func evaluate(_ blocks: [[Int]], progress: ((EvaluationProgress) -> Void)? = nil) throws -> EvaluationResult {
        try evaluate(blocks, noise: SeededEvaluationNoise(seed: options.seed), progress: progress)
    }

    /// Evaluates `blocks` with the given noise source (recorded noise reproduces the reference).
    public func evaluate(_ blocks: [[Int]], noise: EvaluationNoise, progress: ((EvaluationProgress) -> Void)? = nil) throws -> EvaluationResult {
        guard !blocks.isEmpty else { throw CorpusError.invalidParameter(name: "blocks", reason: "nothing to evaluate") }
        let start = DispatchTime.now()
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
        let maturation = adapter as? TokenMaturationBrierModel
        let rowsBefore = maturation?.backboneRows ?? 0, forwardsBefore = maturation?.forwards ?? 0
        var accumulator = BrierAccumulator()
        var energy: [Double] = [], ceSum = 0.0, ceCount = 0, continued = 0, tokens = 0
        for (b, block) in blocks.enumerated() {
            let outcome = try BrierProtocol.evaluate(adapter, block: block, blockIndex: b, noise: noise,
                                                     continuationGroup: options.continuationGroup)
            for x in outcome.indicators { accumulator.add(x) }
            accumulator.endBlock()
            if let e = outcome.samples.energyLoss { energy.append(e) }
            if let ce = outcome.samples.crossEntropySum { ceSum += ce; ceCount += outcome.samples.crossEntropyCount }
            continued += outcome.continuedWindows
            tokens += block.count
            progress?(EvaluationProgress(blocksDone: b + 1, blocks: blocks.count, tokensDone: tokens, seconds: elapsed(),
                                         brierLM: accumulator.report().brierLM))
        }
        var result = EvaluationResult(report: accumulator.report(), modelKind: modelKind, chunkSize: adapter.chunkSize,
                                      blockSize: blocks[0].count, tokens: tokens, seconds: elapsed())
        if !energy.isEmpty { result.energyLoss = energy.reduce(0, +) / Double(energy.count) }
        if ceCount > 0 { result.crossEntropy = ceSum / Double(ceCount) }
        result.continuedWindows = continued
        if let maturation {
            result.backboneRows = maturation.backboneRows - rowsBefore
            result.backboneForwards = maturation.forwards - forwardsBefore
        }
        return result
    }
}

/// A progress bar on stderr: redrawn in place on a terminal, one line per update otherwise.
///
/// `@unchecked Sendable`: `lastLine` is an unsynchronised `var`; a bar is updated only by one
/// evaluation's progress callback, which `BrierLMEvaluator.evaluate` calls on its own thread
/// between blocks.
public final class ProgressBar: @unchecked Sendable {
    let isTerminal: Bool
    let width = 30
    var lastLine = Date.distantPast

    public init() { isTerminal = isatty(2) != 0 }

    public func update(_ p: EvaluationProgress) {
        let fraction = Double(p.blocksDone) / Double(max(p.blocks, 1))
        let filled = Int((fraction * Double(width)).rounded(.down))
        let rate = Double(p.tokensDone) / max(p.seconds, 1e-9)
        let remaining = p.blocksDone > 0 ? p.seconds / Double(p.blocksDone) * Double(p.blocks - p.blocksDone) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let text = String(format: "[%@] %d/%d blocks  %.0f tok/s  BrierLM %.2f  ETA %@",
                          bar, p.blocksDone, p.blocks, rate, p.brierLM, Self.duration(remaining))
        if isTerminal {
            FileHandle.standardError.write(Data(("\r" + text + (p.blocksDone == p.blocks ? "\n" : "")).utf8))
        } else if p.blocksDone == p.blocks || Date().timeIntervalSince(lastLine) >= 10 {
            lastLine = Date()
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }
}
