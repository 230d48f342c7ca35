import CALMDefaultModel
import CALMEvaluation
import CALMModel
import CALMTensor
import CALMTokenizer
import Foundation

/// `calm eval`: BrierLM of a CALM, discrete Llama or Token Maturation model on a text corpus, with
/// the reference's protocol.
enum EvalCommand {
    static let help = """
    usage: calm eval [--model DIR | --family tm|calm] --data FILE [options]

      Evaluates BrierLM as the CALM paper measures it: every document becomes [BOS] + its token
      ids, documents are concatenated, cut into blocks (the tail is dropped), and every position
      of a block predicts the next chunk teacher-forced, with two independent samples per
      position. Prints Brier-1…4, BrierLM (×100, and the reference code's unscaled value),
      accuracy and collision rates (Brier-n = 2·accuracy-n − collision-n), standard errors
      (per-position estimates; BrierLM by the delta method), tokens evaluated and speed.
      Discrete (Llama) models also get cross-entropy and perplexity. Token Maturation models have no
      probabilities: two runs with independently seeded embryos mature every next token from the
      true prefix (commits forced to the data), and their projections are the two samples
      (Docs/Evaluation.md).

      --model DIR            model folder: CALM (EnergyTransformer), LlamaForCausalLM or Token Maturation,
                             chosen from config.json (default: the built-in model)
      --family F             a built-in model instead: calm (the default) or tm
      --data FILE            JSON lines ({"text": …} per line) or plain text (the whole file is one document)
      --format F             jsonl or text (default: from the extension / first character)
      --tokenizer DIR        tokenizer folder (default: the model folder's tokenizer)
      --block-size N         tokens per block, a multiple of the chunk size (default 8192; Token
                             Maturation: at most the model's positions − K + 1, and that by default)
      --max-blocks N         evaluate at most the first N blocks
      --seed S               seed of the sampling noise (default 0)
      --energy-loss          CALM: also compute the reference's energy loss (8 head samples per position)
      --weights-dtype D      store weights as f32, f16 or bf16 in memory (default: as in the file)
      --fold-ids-into-vocab  FOR TINY TEST MODELS ONLY: map token ids the model's vocabulary lacks
                             into it (BOS → the model's BOS, others id mod the model's ordinary-id
                             range). The numbers then say nothing about language modelling; this
                             exists so the fixture models can run the protocol end to end.
      --continuation-group N K < 4: windows continued per batched step (default 256)
      Token Maturation only (defaults: the model's config.json):
      --tail K  --cfg-scale S  --alpha-max A  --rate R  --embryo RHO  --alignment shift|same
      --tail-noise S  --history-noise S  --target-ema B  --history-ema B  --inner-iterations N
      --renormalize-tail     as for calm generate
      --json                 print one JSON object on stdout instead of the table
      --quiet                no progress bar on stderr
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: ["json", "quiet", "energy-loss", "fold-ids-into-vocab", "renormalize-tail"],
                                values: EngineOptions.maturationValues.union(["model", "family", "data", "tokenizer", "format", "block-size",
                                                                              "max-blocks", "seed", "continuation-group", "weights-dtype"]))
        let modelDir = try EngineOptions.modelFolder(&a)?.0 ?? DefaultModel.directory()
        let dataURL = URL(fileURLWithPath: try a.required("data"))
        let tokenizerDir = a.string("tokenizer").map { URL(fileURLWithPath: $0) }
        let formatName = a.string("format")
        let blockSizeOption = try a.int("block-size")
        let maxBlocks = try a.int("max-blocks")
        var options = EvaluationOptions()
        if let v = a.string("seed") {
            guard let s = UInt64(v) else { throw UsageError("option --seed: '\(v)' is not a non-negative integer") }
            options.seed = s
        }
        options.energyLoss = a.flag("energy-loss")
        if let g = try a.int("continuation-group") { options.continuationGroup = g }
        let dtypeName = a.string("weights-dtype")
        let json = a.flag("json")
        let quiet = a.flag("quiet")
        let fold = a.flag("fold-ids-into-vocab")
        options.maturation = try EngineOptions.maturation(&a)
        try a.finish()
        var format: CorpusFormat?
        if let formatName {
            guard let f = CorpusFormat(rawValue: formatName) else { throw UsageError("option --format: '\(formatName)' is not jsonl or text") }
            format = f
        }
        if let maxBlocks, maxBlocks < 1 { throw UsageError("option --max-blocks: must be at least 1") }

        var loadOptions = LoadOptions()
        if let dtypeName {
            guard let d = DType(userName: dtypeName) else { throw UsageError("option --weights-dtype: '\(dtypeName)' is not f32, f16 or bf16") }
            loadOptions.weightDType = d
        }
        let model = try ModelLoader.load(directory: modelDir, options: loadOptions)
        let (vocab, chunk, bos, special): (Int, Int, Int?, [Int]) = {
            switch model {
            case .calm(let m): return (m.config.vocabSize, m.patchSize, m.config.bosTokenID,
                                       [m.config.bosTokenID, m.config.eosTokenID, m.config.padTokenID].compactMap { $0 })
            case .llama(let m): return (m.vocabSize, 1, m.config.bosTokenID,
                                        ([m.config.bosTokenID, m.config.padTokenID].compactMap { $0 } + m.config.eosTokenIDs))
            case .tokenMaturation(let m):
                let bos = m.config.llama?.bosTokenID ?? m.config.gpt2?.bosTokenID
                return (m.config.vocabSize, 1, bos, [bos].compactMap { $0 } + m.config.eosTokenIDs)
            }
        }()
        if options.energyLoss {
            guard case .calm = model else { throw UsageError("--energy-loss is for CALM models") }
        }
        var blockSize = blockSizeOption ?? 8192
        if case .tokenMaturation(let m) = model {
            // A block plus the liquid tail must fit the model's positions.
            var p = options.maturation ?? TokenMaturationParameters()
            p.maxTokens = 1
            let k: Int
            do { k = try m.resolved(p).tailLength ?? m.config.tailLength } catch let ModelError.invalidParameter(name, reason) {
                throw UsageError("option --\(ErrorMessages.optionForParameter["generate"]?[name] ?? name): \(reason)")
            }
            let limit = m.config.maxPositions - k + 1
            if let blockSizeOption, blockSizeOption > limit {
                throw UsageError("option --block-size: \(blockSizeOption) ids plus a tail of \(k) exceed the model's \(m.config.maxPositions) positions (at most \(limit))")
            }
            blockSize = blockSizeOption ?? min(8192, limit)
        } else if options.maturation != nil {
            throw UsageError("the Token Maturation options (--tail, --cfg-scale, …) are for Token Maturation models")
        }
        guard blockSize >= 2 else { throw UsageError("option --block-size: must be at least 2") }
        guard blockSize % chunk == 0 else {
            throw UsageError("option --block-size: \(blockSize) is not a multiple of the model's chunk size \(chunk)")
        }
        guard let tokenizer = try GenerateCommand.loadTokenizer(explicit: tokenizerDir, model: modelDir, required: true) else {
            throw UsageError("no tokenizer")
        }
        let documents = try EvaluationCorpus.readDocuments(dataURL, format: format)

        var mapID: ((Int) -> Int)?
        if fold {
            // Ordinary ids of the fixture models lie below their special ids.
            let ordinary = max(1, special.filter { $0 > 0 }.min() ?? vocab)
            let tokenizerBOS = tokenizer.bosTokenID
            mapID = { id in id == tokenizerBOS ? (bos ?? id % ordinary) : id % ordinary }
        }
        let tokenized = try TokenBlocks.tokenize(documents, tokenizer: tokenizer, blockSize: blockSize, maxBlocks: maxBlocks, mapID: mapID)
        guard !tokenized.blocks.isEmpty else {
            throw CorpusError.tooShort(file: dataURL.path, tokens: tokenized.totalIDs, blockSize: blockSize)
        }
        if !fold, let bad = tokenized.blocks.lazy.flatMap({ $0 }).first(where: { $0 >= vocab }) {
            throw UsageError("token id \(bad) from the tokenizer (\(tokenizer.vocabularySize) ids) is outside the model's vocabulary (\(vocab)); "
                + "use a tokenizer that matches the model (--fold-ids-into-vocab exists for tiny test models only)")
        }
        if fold && !quiet {
            printError("warning: --fold-ids-into-vocab maps the tokenizer's ids into a \(vocab)-id vocabulary; the scores are not language-model scores")
        }

        let evaluator = BrierLMEvaluator(model: model, options: options)
        let bar = quiet ? nil : ProgressBar()
        let result = try evaluator.evaluate(tokenized.blocks) { bar?.update($0) }

        let extra: [String: Any] = [
            "model": modelDir.path, "data": dataURL.path, "documents": tokenized.documents,
            "total_ids": tokenized.totalIDs, "dropped_ids": tokenized.droppedIDs,
            "available_blocks": (tokenized.totalIDs / blockSize), "seed": options.seed, "folded_ids": fold,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result.jsonObject(extra: extra), options: [.sortedKeys])
            writeStdout(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            writeStdout(table(result, tokenized: tokenized, data: dataURL, folded: fold))
        }
    }

    static func table(_ r: EvaluationResult, tokenized: TokenBlocks, data: URL, folded: Bool) -> String {
        let rep = r.report
        func f(_ x: Double, _ digits: Int = 4) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "n/a" }
        var s = "model      \(r.modelKind) (chunk size \(r.chunkSize))\(folded ? "  [ids folded into the vocabulary: test run only]" : "")\n"
        s += "data       \(data.lastPathComponent): \(tokenized.documents) documents, \(tokenized.totalIDs) ids → \(tokenized.totalIDs / tokenized.blockSize) blocks of \(tokenized.blockSize) (\(tokenized.droppedIDs) tail ids dropped)\n"
        s += "evaluated  \(rep.blocks) blocks, \(r.tokens) tokens, \(rep.positions) scored \(r.chunkSize >= 4 ? "positions" : "windows")\n\n"
        s += "n   Brier-n             accuracy-n          collision-n\n"
        for n in 0..<4 {
            s += "\(n + 1)   \(f(rep.brier[n])) ± \(f(rep.brierStderr[n]))   \(f(rep.accuracy[n])) ± \(f(rep.accuracyStderr[n]))   \(f(rep.collision[n])) ± \(f(rep.collisionStderr[n]))\n"
        }
        s += "\nBrierLM    \(f(rep.brierLM, 2)) ± \(f(rep.brierLMStderr, 2))   (×100; reference code's unscaled value \(f(rep.brierLMUnscaled, 6)))\n"
        if !rep.brierLMIsMeaningful {
            s += "note       some Brier-n ≤ 0: the reference's max(Π Brier-n, 0)^¼ is not meaningful here (a product of four negatives is positive)\n"
        }
        if let e = r.energyLoss { s += "energy loss \(f(e, 6))\n" }
        if let ce = r.crossEntropy { s += "cross-entropy \(f(ce)) nats/token, perplexity \(f(exp(ce), 2))\n" }
        if let rows = r.backboneRows, let forwards = r.backboneForwards {
            s += "cost       \(rows) backbone rows in \(forwards) forwards (two seeded maturation runs per block, plus continuations)\n"
        }
        s += "speed      \(f(r.tokensPerSecond, 1)) tokens/s (\(f(r.seconds, 2)) s)\n"
        s += "(± = standard error over per-position estimates; BrierLM's by the delta method)\n"
        return s
    }
}
