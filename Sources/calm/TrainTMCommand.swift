import CALMModel
import CALMTensor
import CALMTokenizer
import CALMTraining
import Foundation

/// `calm train-tm`: Token Maturation training (spec §3) from a discrete Llama checkpoint or a
/// Hugging Face GPT-2 (the paper's backbone).
extension TrainCommand {
    static let tmHelp = """
    usage: calm train-tm (--baseline DIR | --from-gpt2 DIR) --output DIR (--corpus FILE --tokenizer DIR | --data FILE) [options]

      Trains a Token Maturation model (arXiv 2601.04854, spec §3) on the decoder stack of a discrete
      checkpoint, with its tokenizer and the same layout (BOS + ids per document, blocks):
        --baseline DIR    a Llama: a `calm train-baseline` folder (OUTPUT/checkpoint-N, or OUTPUT
                          itself: its last checkpoint is used) or any Hugging Face LlamaForCausalLM folder
        --from-gpt2 DIR   a Hugging Face GPT2LMHeadModel folder (the paper fine-tunes GPT-2 Medium),
                          save_pretrained or original Hub layout: wte (as E), wpe, every block and
                          ln_f are copied; --block may not exceed n_positions + 1
      The conditioning outputs start at zero and the head at the identity, so step 0 is the discrete
      backbone; --fit-head N instead starts the head at the least-squares read-out of the next
      token's embedding from the backbone's final state over N clean training batches (for a
      baseline whose final states and embedding rows differ in scale: an untied lm_head). Each sequence gets a tail of K ~ U{1..max} vectors at a random cut, corrupted as
      z = a*e + (1-a)*eps with the decoding maturity profile (GPT-2 adds its learned positions before FiLM);
      the loss is |z_hat - e|^2 + lambda * InfoNCE (cosine logits, shared uniform negatives), weighted
      by the target slot's maturity. Checkpoints are model_type "token_maturation" folders that
      `calm export` and TokenMaturationModel.load read.

      model (from --baseline / --from-gpt2, unless --model DIR continues from a TM folder of either
      backbone; continuing, these flags may repeat the folder's values but not change them):
        --maturity-max 0.5     alpha_max of the tail profile (also written as the decoding default)
        --embryo-scale 0.1     rho: corruption noise N(0, (rho R)^2/d I), as the decoding embryos
        --max-tail 64          K ~ U{1..this} (max_tail_length: rows of the FiLM table)
        --tail-length 16       default K written for generation
        --embedding-radius R   default: the mean row norm of the backbone's embedding matrix
        --train-embeddings     fine-tune E = R * rownormalize(W) (default: frozen)
      loss:
        --lambda 1  --logit-scale 20  --negatives 256  --min-weight 0.05 (weight floor)
        --unconditional-prob 0   probability of training a sequence with the tail-only (CFG) mask
      held-out: --eval-corpus FILE | --eval-data FILE  --eval-every 250  --eval-batches 4
      schedule: linear warm-up, then (default --lr-schedule cosine) decay to --final-lr-ratio 0.1 of --lr at --steps
      defaults: --steps 2000 --batch-size 4 --block 512 --lr 1e-4 --warmup 100 --checkpoint-every 250
      (--warmup is linear, then the cosine decay)

    """ + commonHelp

    static let tmOptions = commonOptions.union([
        "baseline", "from-gpt2", "eval-corpus", "eval-data", "eval-every", "eval-batches", "maturity-max", "embryo-scale", "max-tail",
        "tail-length", "embedding-radius", "lambda", "logit-scale", "negatives", "min-weight", "unconditional-prob",
        "fit-head",
    ])

    /// A baseline folder, or a training output folder holding `checkpoint-N` folders (the largest N).
    static func modelFolder(_ url: URL, flag: String) throws -> URL {
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("config.json").path) { return url }
        guard fm.fileExists(atPath: url.path) else { throw UsageError("--\(flag) \(url.path): no such folder") }
        let names = (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
        let steps = names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("checkpoint-"), let n = Int(name.dropFirst("checkpoint-".count)),
                  fm.fileExists(atPath: url.appendingPathComponent(name).appendingPathComponent("config.json").path) else { return nil }
            return (n, name)
        }
        guard let last = steps.max(by: { $0.0 < $1.0 }) else {
            throw UsageError("--\(flag) \(url.path): no config.json and no checkpoint-N folder with one")
        }
        return url.appendingPathComponent(last.1)
    }

    static func tokenMaturation(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(tmHelp + "\n"); return }
        var a = try arguments(raw, options: tmOptions, switches: ["no-shuffle", "train-embeddings"])
        let output = URL(fileURLWithPath: try a.required("output"))
        let resume = a.string("resume").map { URL(fileURLWithPath: $0) }
        let modelDir = a.string("model").map { URL(fileURLWithPath: $0) }
        let baselineDir = a.string("baseline").map { URL(fileURLWithPath: $0) }
        let gpt2Dir = a.string("from-gpt2").map { URL(fileURLWithPath: $0) }
        if baselineDir != nil && gpt2Dir != nil {
            throw UsageError("--baseline and --from-gpt2 both set up a new model: give one of them")
        }
        let tok = try tokenizer(&a)
        var options = try runOptions(&a, steps: 2000, batch: 4, block: 512, lr: 1e-4, checkpointEvery: 250, schedule: "cosine")
        let evalBatches = try evaluationOptions(&a, into: &options)
        let fitHeadBatches = try a.int("fit-head") ?? 0
        guard fitHeadBatches >= 0 else { throw UsageError("--fit-head must be ≥ 0 (batches; 0 keeps the identity head)") }
        let pool = try pool(&a)

        var shape = TrainCommand.ContinuedShape()
        for name in ["maturity-max", "embryo-scale", "max-tail", "tail-length", "embedding-radius"] {
            if let v = try a.double(name) { shape.given[name] = v }
        }
        var settings = TokenMaturationSettings()
        settings.maturityMax = Float(try a.double("maturity-max") ?? Double(settings.maturityMax))
        settings.embryoScale = Float(try a.double("embryo-scale") ?? Double(settings.embryoScale))
        settings.maxTailLength = try a.int("max-tail") ?? settings.maxTailLength
        settings.tailLength = try a.int("tail-length") ?? min(settings.tailLength, settings.maxTailLength)
        settings.embeddingRadius = try a.double("embedding-radius").map(Float.init)
        var objective = TokenMaturationObjective()
        objective.lambda = Float(try a.double("lambda") ?? Double(objective.lambda))
        objective.logitScale = Float(try a.double("logit-scale") ?? Double(objective.logitScale))
        objective.negatives = try a.int("negatives") ?? objective.negatives
        objective.minimumWeight = Float(try a.double("min-weight") ?? Double(objective.minimumWeight))
        objective.unconditionalProbability = Float(try a.double("unconditional-prob") ?? 0)
        try objective.validate()
        var trainEmbeddings = a.flag("train-embeddings")

        let model: TrainableTokenMaturation
        if let dir = resume ?? modelDir {
            let flag = resume != nil ? "resume" : "model"
            for name in ["baseline", "from-gpt2", "fit-head"] where a.string(name) != nil {
                throw UsageError("--\(name) sets up a new model; with --\(flag) the folder's config.json decides")
            }
            if let resume {
                // A resumed run trains what the checkpoint's optimizer state covers.
                let optimizer = resume.appendingPathComponent("optimizer.safetensors")
                let f = try SafetensorsFile(url: optimizer)
                let embeddingName = try TokenMaturationConfig.load(directory: resume).backbone.embeddingTensorName
                let trained = f.info("exp_avg." + embeddingName) != nil
                if trainEmbeddings && !trained {
                    throw UsageError("--train-embeddings: the run in \(resume.path) kept the embeddings frozen; resume it without the flag")
                }
                trainEmbeddings = trained
            }
            model = try TrainableTokenMaturation.load(directory: dir, trainEmbeddings: trainEmbeddings)
            let m = model.config
            // Float settings compare at their stored precision (a resume repeating --maturity-max 0.3)
            func stored(_ name: String) { if let v = shape.given[name] { shape.given[name] = Double(Float(v)) } }
            ["maturity-max", "embryo-scale", "embedding-radius"].forEach(stored)
            var folder: [String: Double] = ["maturity-max": Double(m.maturityMax), "embryo-scale": Double(m.embryoScale),
                                            "max-tail": Double(m.maxTailLength), "tail-length": Double(m.tailLength)]
            if let r = m.embeddingRadius { folder["embedding-radius"] = Double(r) }
            try shape.checkContinued(dir, folder: folder)
        } else if let gpt2Dir {
            let dir = try modelFolder(gpt2Dir, flag: "from-gpt2")
            model = try TrainableTokenMaturation.fromGPT2(directory: dir, settings: settings, trainEmbeddings: trainEmbeddings,
                                                           seed: options.seed)
            printer("gpt2: \(dir.path)")
        } else {
            guard let baselineDir else {
                throw UsageError("give --baseline DIR (a train-baseline checkpoint), --from-gpt2 DIR (a GPT2LMHeadModel folder), --model DIR or --resume DIR")
            }
            let dir = try modelFolder(baselineDir, flag: "baseline")
            model = try TrainableTokenMaturation.fromBaseline(directory: dir, settings: settings, trainEmbeddings: trainEmbeddings,
                                                               seed: options.seed)
            printer("baseline: \(dir.path)")
        }
        let vocab = model.config.vocabSize
        if let tok, tok.vocabularySize > vocab {
            throw UsageError("--tokenizer has \(tok.vocabularySize) tokens but the model's vocab_size is \(vocab): use the backbone's tokenizer")
        }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let block = options.blockSize ?? options.chunksPerSequence * 4
        if model.config.backbone == .gpt2 && block - 1 > model.config.maxPositions {
            throw UsageError("--block \(block): the GPT-2 backbone has \(model.config.maxPositions) positions (n_positions); use --block \(model.config.maxPositions + 1) or less")
        }
        let (data, held) = try causalStreams(&a, tokenizer: tok, modelBOS: model.bosTokenID, output: output,
                                             vocabulary: vocab, block: block)
        if fitHeadBatches > 0 {   // only a new model gets here with --fit-head: --model/--resume refuse it above
            let fit = try TokenMaturationHeadFit.fit(model, data: data, batches: fitHeadBatches, rows: options.batchSize, length: block, pool: pool)
            printer(fit.line)
        }
        let c = model.config
        printer("token maturation: \(model.parameters.scalarCount) parameters (\(model.matmulParameterCount) in matmuls), "
                + "embeddings \(model.trainsEmbeddings ? "trained" : "frozen"), R \(String(format: "%.4g", model.radius)), "
                + "alpha_max \(c.maturityMax), rho \(c.embryoScale), K 1…\(min(c.maxTailLength, block - 1)), "
                + streamSummary(data, heldOut: held, block: block))
        let rows = options.batchSize
        let hooks = hooks(heldOut: held) { held in
            try TokenMaturationTrainingStep.evaluate(model: model, data: held, batches: evalBatches, rows: rows, length: block,
                                                     objective: objective, pool: pool).heldOutLine
        }
        let last = try Trainer.trainTokenMaturation(model, data: data, options: options, objective: objective, output: output,
                                                    resume: resume, pool: pool, hooks: hooks, progress: { printer($0.line) })
        printer("saved \(last.path)")
    }
}
