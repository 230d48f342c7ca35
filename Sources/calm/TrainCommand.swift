import CALMEvaluation
import CALMModel
import CALMTokenizer
import CALMTraining
import Foundation

/// `calm train-autoencoder`, `calm train`, `calm train-baseline` and `calm train-tm`
/// (TrainTMCommand.swift): AdamW training from a text
/// corpus (plain text or JSON Lines + a tokenizer) or a pre-tokenised id stream, with a JSON
/// config file or flags, periodic checkpoints in the engine's model-folder format, --resume and a
/// progress line per step.
enum TrainCommand {
    static let commonHelp = """
      data (one of):
        --corpus FILE --tokenizer DIR   text: JSON Lines {"text": …} (.jsonl/.json) or plain text with
                                        documents separated by blank lines; tokenizer.json or
                                        tokenizer.model (+ tokenizer_config.json) in DIR ([PAD] added
                                        when missing). The laid-out stream is cached as
                                        OUTPUT/<name>-tokens.u32.
        --data FILE                     a pre-built id stream (BOS/EOS/PAD already laid out):
                                        whitespace-separated decimals (.txt) or little-endian u32
      run:
        --output DIR (required)  --resume CHECKPOINT (a checkpoint-N folder of an earlier run)
        --config FILE            JSON object whose keys are these option names ("batch-size" or
                                 "batch_size"); flags on the command line win
        --steps N  --batch-size N  --block N (tokens per sequence)  --accumulate N (1: micro-batches
        of --batch-size sequences averaged into one step)  --lr X  --warmup N (linear)
        --lr-schedule constant|cosine (after the warm-up: hold --lr, or decay along a cosine to
        --final-lr-ratio 0.1 of it at --steps; train-tm defaults to cosine)  --weight-decay X (0.1)  --beta1 X (0.9)  --beta2 X (0.95)  --max-grad-norm X (1.0;
        0 disables)  --checkpoint-every N  --seed N (0)  --no-shuffle  --threads N (all cores)
        --flop-budget X  instead of --steps: as many steps as X FLOPs of training compute buy (e.g.
        another run's final "compute"), for equal-compute comparisons; the step count, and a cosine
        decay's end, follow from the first step's cost (exact where every step costs the same;
        train-tm's batches vary in length); a resumed run counts on from its checkpoint's compute
      Prints one line per step: step/total, loss, lr, grad norm, tokens/s, ETA, compute so far.
    """

    static let aeHelp = """
    usage: calm train-autoencoder --output DIR (--corpus FILE --tokenizer DIR | --data FILE) [options]

      Trains the chunk autoencoder (reference train_autoencoder.py): every document becomes
      ids + EOS, right-padded with [PAD] to a multiple of K; documents are concatenated and cut
      into blocks. Loss = K·CE + kl_weight·max(KL, kl_clamp) per dimension, with token dropout
      and latent dropout. Reports token reconstruction accuracy on the held-out file (decoding
      the posterior mean and z = μ + ε·σ) every --eval-every steps and at the end.

      model (fresh unless --model DIR continues from an autoencoder folder or the autoencoder a
      CALM folder embeds; continuing, shape flags must match the folder and --kl-weight,
      --kl-clamp, --dropout set the new run's loss):
        --hidden 256  --intermediate 512  --latent 64  --patch 4 (K)  --encoder-layers 2
        --decoder-layers 2  --kl-weight 1e-3  --kl-clamp 0.5  --dropout 0.15  --vocab (tokenizer's)
      held-out: --eval-corpus FILE | --eval-data FILE  --eval-every 250  --eval-tokens 16384
      defaults: --steps 3000 --batch-size 8 --block 512 --lr 1e-3 --warmup 100 --checkpoint-every 500

    """ + commonHelp

    static let calmHelp = """
    usage: calm train --output DIR --autoencoder DIR (--corpus FILE --tokenizer DIR | --data FILE) [options]

      Trains a CALM model with the energy loss (reference train_calm.py): the autoencoder is
      frozen; documents become BOS + ids, concatenated and cut into blocks; each block's K-token
      chunks go through embed_proj into the Transformer, whose last hidden states condition the
      energy head; N model samples are scored against M posterior samples of the next chunk's
      latent. Saved folders embed the autoencoder under ae_model.*.

      model (fresh around --autoencoder, unless --model DIR continues from a CALM folder; --model
      with --autoencoder trains that folder's energy model on the given autoencoder instead of
      the one it embeds):
        --hidden 384  --intermediate 1024  --layers 6  --heads 6  --kv-heads (= heads)
        --head-blocks 2  --noise 64  --samples 8 (N)  --targets 100 (M)  --rope-theta 10000
      held-out: --eval-corpus FILE | --eval-data FILE  --eval-every 250  --eval-batches 4: every N steps
                and at the end, "step N: held-out energy loss L (marginal M, gap G; P positions)  Brier-1 B
                BrierLM X (x100; T tokens)": the energy loss on the first batches of the held-out stream
                beside a context-free predictor's (posteriors of random held-out chunks) and the
                engine's Brier scores on the same blocks ("[some Brier-n <= 0: BrierLM not
                meaningful]" follows when the reference's formula turns two negatives positive)
      defaults: --steps 2000 --batch-size 4 --block 2048 --lr 3e-4 --warmup 100 --checkpoint-every 250

    """ + commonHelp

    static let baselineHelp = """
    usage: calm train-baseline --output DIR (--corpus FILE --tokenizer DIR | --data FILE) [options]

      Trains the discrete baseline: a standard Llama causal LM with next-token cross-entropy on
      the same layout as CALM (BOS + ids per document, concatenated, blocks) and tokenizer, saved
      in the Hugging Face LlamaForCausalLM layout (model.embed_tokens, model.layers.*, model.norm,
      lm_head; config.json with model_type "llama").

      model (fresh unless --model DIR continues from a baseline folder):
        --hidden 384  --intermediate 1024  --layers 6  --heads 6  --kv-heads (= heads)
        --rope-theta 10000  --vocab (tokenizer's)
      held-out: --eval-corpus FILE | --eval-data FILE  --eval-every 250  --eval-batches 4: every N steps
                and at the end, "step N: held-out cross-entropy L (perplexity P; n predictions)" over
                the first batches of the held-out stream (the same blocks each time)
      defaults: --steps 2000 --batch-size 4 --block 512 --lr 3e-4 --warmup 100 --checkpoint-every 250

    """ + commonHelp

    // MARK: parsing

    /// Value options every training command takes (data, run and optimiser settings); `--config`
    /// is read by `arguments` before parsing.
    static let commonOptions: Set<String> = [
        "output", "resume", "model", "tokenizer", "corpus", "data", "threads", "steps", "batch-size", "block",
        "chunks", "lr", "warmup", "weight-decay", "beta1", "beta2", "max-grad-norm", "checkpoint-every", "seed",
        "lr-schedule", "final-lr-ratio", "accumulate", "flop-budget",
    ]
    /// `--hidden` … `--rope-theta`, read by `backboneFlags`.
    static let backboneOptions: Set<String> = ["hidden", "intermediate", "layers", "heads", "kv-heads", "rope-theta"]
    static let aeOptions = commonOptions.union([
        "eval-every", "eval-tokens", "hidden", "intermediate", "latent", "patch", "encoder-layers", "decoder-layers",
        "kl-weight", "kl-clamp", "dropout", "vocab", "eval-corpus", "eval-data",
    ])
    static let calmOptions = commonOptions.union(backboneOptions).union(["autoencoder", "targets", "head-blocks", "noise", "samples",
                                                                         "eval-corpus", "eval-data", "eval-every", "eval-batches"])
    static let baselineOptions = commonOptions.union(backboneOptions).union(["vocab", "eval-corpus", "eval-data",
                                                                             "eval-every", "eval-batches"])

    /// Arguments from `--config FILE` (if any) followed by the command line (which wins); keys of
    /// the file are checked against `options` like the command line's.
    static func arguments(_ raw: [String], options: Set<String>, switches: Set<String> = ["no-shuffle"]) throws -> Arguments {
        var configArgs: [String] = []
        var rest = raw
        let optionEnd = raw.firstIndex(of: "--") ?? raw.endIndex
        var path: String?
        if let i = raw[..<optionEnd].firstIndex(of: "--config") {
            guard i + 1 < raw.count else { throw UsageError("option --config needs a value") }
            path = raw[i + 1]
            rest.removeSubrange(i...(i + 1))
        } else if let i = raw[..<optionEnd].firstIndex(where: { $0.hasPrefix("--config=") }) {
            path = String(raw[i].dropFirst("--config=".count))
            rest.remove(at: i)
        }
        if let path {
            guard let data = FileManager.default.contents(atPath: path),
                  let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw UsageError("--config \(path): not a readable JSON object")
            }
            for (key, value) in obj.sorted(by: { $0.key < $1.key }) {
                let name = key.replacingOccurrences(of: "_", with: "-")
                // Named here, not as "unknown option --x", which would send the user to the command line.
                guard options.contains(name) || switches.contains(name) else {
                    throw UsageError("--config \(path): unknown key '\(key)'")
                }
                let typeName = String(describing: type(of: value))
                if typeName.contains("Bool"), let b = value as? Bool {
                    guard switches.contains(name) else { throw UsageError("--config \(path): \(key) must be a number or a string, not a boolean") }
                    if b { configArgs.append("--\(name)") }
                } else if let n = value as? NSNumber {
                    configArgs += ["--\(name)=\(n.stringValue)"]
                } else if let s = value as? String {
                    configArgs += ["--\(name)=\(s)"]
                } else {
                    throw UsageError("--config \(path): \(key) must be a string, number or boolean")
                }
            }
        }
        return try Arguments(configArgs + rest, switches: switches, values: options)
    }

    static func runOptions(_ a: inout Arguments, steps: Int, batch: Int, block: Int, lr: Double, checkpointEvery: Int,
                           schedule: String = "constant") throws -> TrainingRunOptions {
        var o = TrainingRunOptions()
        switch a.string("lr-schedule") ?? schedule {
        case "constant": o.cosineDecay = false
        case "cosine": o.cosineDecay = true
        case let other: throw UsageError("--lr-schedule must be constant or cosine, not '\(other)'")
        }
        o.finalLearningRateRatio = Float(try a.double("final-lr-ratio") ?? 0.1)
        guard o.finalLearningRateRatio >= 0 && o.finalLearningRateRatio <= 1 else {
            throw UsageError("--final-lr-ratio must be in [0, 1]")
        }
        o.steps = try a.int("steps") ?? steps
        o.flopBudget = try a.double("flop-budget")
        if let budget = o.flopBudget, !(budget > 0) {
            throw UsageError("--flop-budget must be a positive number of FLOPs, not \(budget)")
        }
        o.batchSize = try a.int("batch-size") ?? batch
        o.accumulationSteps = try a.int("accumulate") ?? 1
        guard o.accumulationSteps >= 1 else { throw UsageError("--accumulate must be at least 1") }
        o.blockSize = try a.int("block") ?? block
        o.learningRate = Float(try a.double("lr") ?? lr)
        o.warmupSteps = try a.int("warmup") ?? 100
        o.weightDecay = Float(try a.double("weight-decay") ?? Double(o.weightDecay))
        o.beta1 = Float(try a.double("beta1") ?? Double(o.beta1))
        o.beta2 = Float(try a.double("beta2") ?? Double(o.beta2))
        if let g = try a.double("max-grad-norm") { o.maxGradNorm = g > 0 ? Float(g) : nil }
        o.checkpointEvery = try a.int("checkpoint-every") ?? checkpointEvery
        o.seed = UInt64(try a.int("seed") ?? 0)
        o.shuffle = !a.flag("no-shuffle")
        if let c = try a.int("chunks") { o.blockSize = nil; o.chunksPerSequence = c }
        guard o.steps > 0, o.batchSize > 0, (o.blockSize ?? 1) > 0 else { throw UsageError("--steps, --batch-size and --block must be positive") }
        return o
    }

    static func pool(_ a: inout Arguments) throws -> ComputePool {
        if let t = try a.int("threads") { return ComputePool(threads: max(1, t)) }
        return .shared
    }

    /// The tokenizer (with [PAD]) when --tokenizer is given.
    static func tokenizer(_ a: inout Arguments) throws -> (any TextTokenizer)? {
        guard let dir = a.string("tokenizer") else { return nil }
        return try TokenizerLoader.load(directory: URL(fileURLWithPath: dir), addPadToken: true)
    }

    /// The training stream: --data as is, or --corpus through the tokenizer in `layout`.
    static func stream(_ a: inout Arguments, corpusKey: String, dataKey: String, tokenizer: (any TextTokenizer)?,
                       layout: TrainingCorpus.Layout, cache: URL?, required: Bool = true) throws -> TokenData? {
        if let d = a.string(dataKey) { return try TokenData.load(URL(fileURLWithPath: d)) }
        if let c = a.string(corpusKey) {
            guard let tokenizer else { throw UsageError("--\(corpusKey) needs --tokenizer DIR") }
            return try TrainingCorpus.load(corpus: URL(fileURLWithPath: c), tokenizer: tokenizer, layout: layout, cache: cache)
        }
        if required { throw UsageError("give --\(corpusKey) FILE with --tokenizer DIR, or --\(dataKey) FILE") }
        return nil
    }

    static func printer(_ line: String) { writeStdout(line + "\n") }

    // MARK: train-autoencoder

    static func autoencoder(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(aeHelp + "\n"); return }
        var a = try arguments(raw, options: aeOptions)
        let output = URL(fileURLWithPath: try a.required("output"))
        let resume = a.string("resume").map { URL(fileURLWithPath: $0) }
        let modelDir = a.string("model").map { URL(fileURLWithPath: $0) }
        let tok = try tokenizer(&a)
        let o = try runOptions(&a, steps: 3000, batch: 8, block: 512, lr: 1e-3, checkpointEvery: 500)
        var options = o
        options.evalEvery = try a.int("eval-every") ?? 250
        let evalTokens = try a.int("eval-tokens") ?? 16384
        let pool = try pool(&a)

        var shape = ContinuedShape()
        for name in ["hidden", "intermediate", "latent", "patch", "encoder-layers", "decoder-layers", "vocab"] {
            if let v = try a.double(name) { shape.given[name] = v }
        }
        // the loss's hyperparameters: flags win over the folder's values when continuing
        let klWeight = try a.double("kl-weight"), klClamp = try a.double("kl-clamp"), dropout = try a.double("dropout")
        var config = AutoencoderConfig()
        config.hiddenSize = try a.int("hidden") ?? 256
        config.intermediateSize = try a.int("intermediate") ?? 512
        config.latentSize = try a.int("latent") ?? 64
        config.patchSize = try a.int("patch") ?? 4
        config.numEncoderLayers = try a.int("encoder-layers") ?? 2
        config.numDecoderLayers = try a.int("decoder-layers") ?? 2
        config.klWeight = klWeight ?? 1e-3
        config.klClamp = klClamp ?? 0.5
        config.aeDropout = dropout ?? 0.15
        config.vocabSize = try a.int("vocab") ?? tok?.vocabularySize ?? 0
        config.padTokenID = tok?.padTokenID; config.eosTokenID = tok?.eosTokenID; config.bosTokenID = tok?.bosTokenID
        var model: TrainableAutoencoder
        if let dir = resume ?? modelDir {
            model = try TrainableAutoencoder.load(directory: dir)
            let m = model.config
            try shape.checkContinued(dir, folder: [
                "hidden": Double(m.hiddenSize), "intermediate": Double(m.intermediateSize), "latent": Double(m.latentSize),
                "patch": Double(m.patchSize), "encoder-layers": Double(m.numEncoderLayers),
                "decoder-layers": Double(m.numDecoderLayers), "vocab": Double(m.vocabSize)])
            config = m
            if let klWeight { config.klWeight = klWeight }
            if let klClamp { config.klClamp = klClamp }
            if let dropout { config.aeDropout = dropout }
            try config.validate(file: "autoencoder options")
            if config != model.config { model = TrainableAutoencoder(config: config, parameters: model.parameters) }
        } else {
            guard config.vocabSize > 0 else { throw UsageError("give --tokenizer DIR or --vocab N for a fresh autoencoder") }
            try config.validate(file: "autoencoder options")
            model = TrainableAutoencoder.initialized(config: config, seed: options.seed)
        }
        let k = config.patchSize
        guard let eos = config.eosTokenID, let pad = config.padTokenID else {
            if a.string("corpus") != nil { throw UsageError("the autoencoder needs EOS and PAD ids (from the tokenizer)") }
            return try autoencoderWithData(&a, model: model, options: options, output: output, resume: resume, pool: pool, evalTokens: evalTokens)
        }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let layout = TrainingCorpus.Layout.autoencoder(patchSize: k, eos: eos, pad: pad)
        let data = try stream(&a, corpusKey: "corpus", dataKey: "data", tokenizer: tok, layout: layout,
                              cache: output.appendingPathComponent("train-ae-tokens.u32"))!
        let held = try stream(&a, corpusKey: "eval-corpus", dataKey: "eval-data", tokenizer: tok, layout: layout,
                              cache: output.appendingPathComponent("eval-ae-tokens.u32"), required: false)
        try a.finish()
        try runAutoencoder(model: model, data: data, held: held, options: options, output: output, resume: resume, pool: pool, evalTokens: evalTokens)
    }

    static func autoencoderWithData(_ a: inout Arguments, model: TrainableAutoencoder, options: TrainingRunOptions, output: URL,
                                    resume: URL?, pool: ComputePool, evalTokens: Int) throws {
        let data = try TokenData.load(URL(fileURLWithPath: try a.required("data")))
        let held = try a.string("eval-data").map { try TokenData.load(URL(fileURLWithPath: $0)) }
        try a.finish()
        try runAutoencoder(model: model, data: data, held: held, options: options, output: output, resume: resume, pool: pool, evalTokens: evalTokens)
    }

    static func runAutoencoder(model: TrainableAutoencoder, data: TokenData, held: TokenData?, options: TrainingRunOptions, output: URL,
                               resume: URL?, pool: ComputePool, evalTokens: Int) throws {
        let k = model.config.patchSize
        let block = options.blockSize ?? options.chunksPerSequence * k
        printer("autoencoder: \(model.parameters.scalarCount) parameters, " + streamSummary(data, heldOut: held, block: block))
        let evalIDs = held.map { Array($0.ids.prefix(min($0.ids.count, evalTokens) / k * k)) } ?? []
        let hooks = hooks(heldOut: held) { _ in ReconstructionAccuracy.evaluate(model, ids: evalIDs, pool: pool).line }
        let last = try Trainer.trainAutoencoder(model, data: data, options: options, output: output, resume: resume, pool: pool,
                                                hooks: hooks, progress: { printer($0.line) })
        if let held {
            let n = held.ids.count / k * k
            let report = ReconstructionAccuracy.evaluate(model, ids: Array(held.ids.prefix(n)), pool: pool)
            printer("final (all \(n) held-out tokens): " + report.line)
        }
        printer("saved \(last.path)")
    }

    /// The backbone sizes both language-model recipes take (`--hidden` … `--rope-theta`).
    struct BackboneFlags {
        var hidden = 384, intermediate = 1024, layers = 6, heads = 6
        var kvHeads: Int?
        var ropeTheta = 10000.0
        /// The shape flags given (command line or --config).
        var shape = ContinuedShape()
    }

    /// Shape flags given on the command line (or in --config), by name: they shape a fresh model. A
    /// continued model (`--model` or `--resume`) keeps its folder's shape, so a flag that disagrees
    /// with it is an error naming both values, never silently dropped; repeating the folder's value
    /// (a resume with the run's --config) is fine.
    struct ContinuedShape {
        var given: [String: Double] = [:]

        /// `folder`: flag name → the continued folder's value.
        func checkContinued(_ dir: URL, folder: [String: Double]) throws {
            let clashes = folder.keys.sorted().compactMap { flag -> String? in
                guard let v = given[flag], let f = folder[flag], v != f else { return nil }
                return "--\(flag) \(Self.number(v)) (the folder has \(Self.number(f)))"
            }
            guard !clashes.isEmpty else { return }
            throw UsageError(clashes.joined(separator: ", ") + (clashes.count == 1 ? " disagrees" : " disagree")
                             + " with \(dir.path): a continued model keeps its shape")
        }

        static func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
    }

    static func backboneFlags(_ a: inout Arguments) throws -> BackboneFlags {
        var f = BackboneFlags()
        for name in ["hidden", "intermediate", "layers", "heads", "kv-heads", "rope-theta"] {
            if let v = try a.double(name) { f.shape.given[name] = v }
        }
        f.hidden = try a.int("hidden") ?? f.hidden
        f.intermediate = try a.int("intermediate") ?? f.intermediate
        f.layers = try a.int("layers") ?? f.layers
        f.heads = try a.int("heads") ?? f.heads
        f.kvHeads = try a.int("kv-heads")
        f.ropeTheta = try a.double("rope-theta") ?? f.ropeTheta
        return f
    }

    /// The causal-LM training stream (BOS + ids per document, concatenated) of both language-model
    /// recipes, cached in `output`; checks that a BOS id exists when text must be laid out.
    /// The training stream (`--corpus`/`--data`) and the optional held-out one (`--eval-corpus`/
    /// `--eval-data`) in the causal layout, checked against the model's vocabulary and the block size.
    static func causalStreams(_ a: inout Arguments, tokenizer tok: (any TextTokenizer)?, modelBOS: Int?, output: URL,
                              vocabulary: Int, block: Int) throws -> (train: TokenData, heldOut: TokenData?) {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let bos = tok?.bosTokenID ?? modelBOS
        guard a.string("data") != nil || bos != nil else { throw UsageError("the tokenizer has no BOS token") }
        let held = try stream(&a, corpusKey: "eval-corpus", dataKey: "eval-data", tokenizer: tok, layout: .causal(bos: bos ?? 0),
                              cache: output.appendingPathComponent("eval-causal-tokens.u32"), required: false)
        let data = try stream(&a, corpusKey: "corpus", dataKey: "data", tokenizer: tok, layout: .causal(bos: bos ?? 0),
                              cache: output.appendingPathComponent("train-causal-tokens.u32"))!
        try a.finish()
        for (name, stream) in [("training data", data), ("held-out data", held ?? TokenData(ids: []))] {
            if let bad = stream.ids.first(where: { $0 < 0 || $0 >= vocabulary }) {
                throw UsageError("\(name): token id \(bad) is outside the model's vocabulary (\(vocabulary))")
            }
        }
        if let held, held.ids.count < block {
            throw UsageError("held-out data: \(held.ids.count) tokens, fewer than one block of \(block) (--block)")
        }
        return (data, held)
    }

    /// `--eval-every` (into `options.evalEvery`, default 250) and `--eval-batches` (returned, default 4).
    static func evaluationOptions(_ a: inout Arguments, into options: inout TrainingRunOptions) throws -> Int {
        options.evalEvery = try a.int("eval-every") ?? 250
        let batches = try a.int("eval-batches") ?? 4
        guard batches > 0, options.evalEvery >= 0 else { throw UsageError("--eval-batches must be positive and --eval-every ≥ 0") }
        return batches
    }

    /// "N training tokens (B blocks of L)[, M held-out tokens]" for a recipe's opening line.
    static func streamSummary(_ data: TokenData, heldOut held: TokenData?, block: Int) -> String {
        "\(data.ids.count) training tokens (\(data.blockCount(length: block)) blocks of \(block))"
            + (held.map { ", \($0.ids.count) held-out tokens" } ?? "")
    }

    /// Hooks that log through `printer` and, with a held-out stream, report `evaluate(held)`.
    static func hooks(heldOut held: TokenData?, evaluate: @escaping (TokenData) throws -> String) -> Trainer.Hooks {
        var hooks = Trainer.Hooks(log: printer)
        if let held { hooks.evaluate = { _ in try evaluate(held) } }
        return hooks
    }

    // MARK: train (CALM)

    static func calm(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(calmHelp + "\n"); return }
        var a = try arguments(raw, options: calmOptions)
        let output = URL(fileURLWithPath: try a.required("output"))
        let resume = a.string("resume").map { URL(fileURLWithPath: $0) }
        let modelDir = a.string("model").map { URL(fileURLWithPath: $0) }
        let aeDir = a.string("autoencoder").map { URL(fileURLWithPath: $0) }
        let tok = try tokenizer(&a)
        var options = try runOptions(&a, steps: 2000, batch: 4, block: 2048, lr: 3e-4, checkpointEvery: 250)
        let evalBatches = try evaluationOptions(&a, into: &options)
        let targets = try a.int("targets") ?? 100
        let pool = try pool(&a)
        let sizes = try backboneFlags(&a)
        var c = CALMConfig()
        c.hiddenSize = sizes.hidden; c.intermediateSize = sizes.intermediate; c.numHiddenLayers = sizes.layers
        c.numAttentionHeads = sizes.heads; c.numKeyValueHeads = sizes.kvHeads; c.ropeTheta = sizes.ropeTheta
        c.numMLPLayers = try a.int("head-blocks") ?? 2
        c.noiseSize = try a.int("noise") ?? 64
        c.numSamples = try a.int("samples") ?? 8
        var shape = sizes.shape
        for name in ["head-blocks", "noise", "samples"] { if let v = try a.double(name) { shape.given[name] = v } }
        let model: TrainableCALM
        if let dir = resume ?? modelDir {
            // --model with --autoencoder: a warm start of the energy model on another autoencoder;
            // a resumed checkpoint keeps the autoencoder it embeds
            model = try TrainableCALM.load(directory: dir, autoencoderPath: aeDir, replacingAutoencoder: resume == nil ? aeDir : nil)
            let m = model.config
            try shape.checkContinued(dir, folder: [
                "hidden": Double(m.hiddenSize), "intermediate": Double(m.intermediateSize), "layers": Double(m.numHiddenLayers),
                "heads": Double(m.numAttentionHeads), "kv-heads": Double(m.kvHeads), "rope-theta": m.ropeTheta,
                "head-blocks": Double(m.numMLPLayers), "noise": Double(m.noiseSize), "samples": Double(m.numSamples)])
        } else {
            guard let aeDir else { throw UsageError("give --autoencoder DIR (a trained autoencoder) or --model DIR") }
            let ae = try TrainableAutoencoder.load(directory: aeDir, requiresGrad: false)
            c.vocabSize = ae.config.vocabSize; c.patchSize = ae.config.patchSize; c.latentSize = ae.config.latentSize
            c.padTokenID = ae.config.padTokenID; c.eosTokenID = ae.config.eosTokenID; c.bosTokenID = ae.config.bosTokenID
            c.maxPositionEmbeddings = max(c.maxPositionEmbeddings, (options.blockSize ?? 0) / max(c.patchSize, 1))
            try c.validate(file: "train options")
            try c.validate(autoencoder: ae.config, file: "train options")
            model = TrainableCALM.initialized(config: c, autoencoder: ae, seed: options.seed)
        }
        guard targets > 0 else { throw UsageError("--targets must be positive") }
        let block = options.blockSize ?? options.chunksPerSequence * model.config.patchSize
        let (data, held) = try causalStreams(&a, tokenizer: tok, modelBOS: model.config.bosTokenID, output: output,
                                             vocabulary: model.config.vocabSize, block: block)
        printer("calm: \(model.parameters.scalarCount) trainable parameters (autoencoder frozen), N = \(model.config.numSamples), M = \(targets), "
                + streamSummary(data, heldOut: held, block: block))
        let rows = options.batchSize
        let hooks = hooks(heldOut: held) { held in
            let energy = try EnergyTrainingStep.evaluate(model: model, data: held, batches: evalBatches, rows: rows, length: block,
                                                         targetSamples: targets, pool: pool)
            let brier = try heldOutBrier(model, data: held, blocks: evalBatches * rows, length: block,
                                         scratch: output.appendingPathComponent("eval-scratch"))
            return energy.line + "  " + brier
        }
        let last = try Trainer.trainCALM(model, data: data, options: options, output: output, resume: resume, pool: pool,
                                         targetSamples: targets, hooks: hooks, progress: { printer($0.line) })
        printer("saved \(last.path)")
    }

    /// Brier-1 and BrierLM (×100) of the model being trained on the first `blocks` held-out blocks,
    /// through the engine's evaluator (the same code as `calm eval`): the model is written to
    /// `scratch` and loaded as an inference model, so the figure is the one the saved model gets.
    static func heldOutBrier(_ model: TrainableCALM, data: TokenData, blocks: Int, length: Int, scratch: URL) throws -> String {
        let count = max(1, min(blocks, data.blockCount(length: length)))
        let held = try data.batch(step: 0, rows: count, length: length)
        try model.save(to: scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let inference = try CALMModel.load(directory: scratch)
        let result = try BrierLMEvaluator(model: .calm(inference), options: EvaluationOptions(seed: 0)).evaluate(held)
        let r = result.report
        let line = String(format: "Brier-1 %.2f  BrierLM %.2f (x100; %d tokens)", 100 * (r.brier.first ?? 0), r.brierLM, result.tokens)
        // Same convention as `calm eval`: early in training two negative Brier-n multiply to a positive BrierLM.
        return r.brierLMIsMeaningful ? line : line + "  [some Brier-n <= 0: BrierLM not meaningful]"
    }

    // MARK: train-baseline

    static func baseline(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(baselineHelp + "\n"); return }
        var a = try arguments(raw, options: baselineOptions)
        let output = URL(fileURLWithPath: try a.required("output"))
        let resume = a.string("resume").map { URL(fileURLWithPath: $0) }
        let modelDir = a.string("model").map { URL(fileURLWithPath: $0) }
        let tok = try tokenizer(&a)
        var options = try runOptions(&a, steps: 2000, batch: 4, block: 512, lr: 3e-4, checkpointEvery: 250)
        let evalBatches = try evaluationOptions(&a, into: &options)
        let pool = try pool(&a)
        let sizes = try backboneFlags(&a)
        var c = LlamaBaselineConfig()
        c.hiddenSize = sizes.hidden; c.intermediateSize = sizes.intermediate; c.numHiddenLayers = sizes.layers
        c.numAttentionHeads = sizes.heads; c.numKeyValueHeads = sizes.kvHeads ?? sizes.heads; c.ropeTheta = sizes.ropeTheta
        c.vocabSize = try a.int("vocab") ?? tok?.vocabularySize ?? 0
        c.bosTokenID = tok?.bosTokenID; c.eosTokenID = tok?.eosTokenID; c.padTokenID = tok?.padTokenID
        c.maxPositionEmbeddings = max(c.maxPositionEmbeddings, options.blockSize ?? 0)
        var shape = sizes.shape
        if let v = try a.double("vocab") { shape.given["vocab"] = v }
        let model: TrainableLlama
        if let dir = resume ?? modelDir {
            model = try TrainableLlama.load(directory: dir)
            let m = model.config
            try shape.checkContinued(dir, folder: [
                "hidden": Double(m.hiddenSize), "intermediate": Double(m.intermediateSize), "layers": Double(m.numHiddenLayers),
                "heads": Double(m.numAttentionHeads), "kv-heads": Double(m.numKeyValueHeads), "rope-theta": m.ropeTheta,
                "vocab": Double(m.vocabSize)])
        } else {
            guard c.vocabSize > 0 else { throw UsageError("give --tokenizer DIR or --vocab N for a fresh baseline") }
            try c.validate()
            model = TrainableLlama.initialized(config: c, seed: options.seed)
        }
        let block = options.blockSize ?? options.chunksPerSequence * 4
        let (data, held) = try causalStreams(&a, tokenizer: tok, modelBOS: model.config.bosTokenID, output: output,
                                             vocabulary: model.config.vocabSize, block: block)
        printer("baseline: \(model.parameters.scalarCount) parameters (\(model.matmulParameterCount) in matmuls), "
                + streamSummary(data, heldOut: held, block: block))
        let rows = options.batchSize
        let hooks = hooks(heldOut: held) { held in
            try CausalLMTrainingStep.evaluate(model: model, data: held, batches: evalBatches, rows: rows, length: block, pool: pool).heldOutLine
        }
        let last = try Trainer.trainBaseline(model, data: data, options: options, output: output, resume: resume, pool: pool,
                                             hooks: hooks, progress: { printer($0.line) })
        printer("saved \(last.path)")
    }
}
