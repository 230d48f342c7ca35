import CALMModel
import CALMTensor
import Foundation

/// Settings of a training run.
public struct TrainingRunOptions: Sendable {
    public var steps: Int = 100
    /// Sequences per step.
    public var batchSize: Int = 4
    /// Chunks per sequence (the autoencoder trains on the same windows, chunk by chunk).
    public var chunksPerSequence: Int = 32
    public var learningRate: Float = 3e-4
    public var warmupSteps: Int = 10
    public var weightDecay: Float = 0.1
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var maxGradNorm: Float? = 1.0
    /// Save a checkpoint every this many steps (0: only at the end).
    public var checkpointEvery: Int = 0
    public var seed: UInt64 = 0
    /// Tokens per sequence; nil means `chunksPerSequence` × K (the baseline uses 4·chunks).
    public var blockSize: Int?
    /// Visit the blocks in a seeded random order each epoch (deterministic in `seed`).
    public var shuffle: Bool = true
    /// Call the evaluation hook every this many steps (0: only at the end, if there is one).
    public var evalEvery: Int = 0
    /// Stop once the run's useful compute (matmul FLOPs, forward + backward; a resumed run counts
    /// on from its checkpoint's) reaches this many FLOPs: `steps` is then set from the first step's
    /// count (equal-compute comparisons), and so is the end of a cosine decay.
    public var flopBudget: Double?
    /// After the warm-up, decay the learning rate along a cosine to `finalLearningRateRatio`·lr at
    /// `steps` (false: constant).
    public var cosineDecay: Bool = false
    /// The cosine decay's floor as a fraction of the peak learning rate.
    public var finalLearningRateRatio: Float = 0.1
    /// Micro-batches of `batchSize` sequences whose gradients are averaged into one optimiser step
    /// (gradient accumulation): a step sees `accumulationSteps × batchSize` sequences for the memory
    /// of `batchSize`. Micro-batch i of step s is batch s·N + i of the data, so with a loss that is a
    /// mean over equal-sized batches N micro-batches of b sequences give the step of one batch of N·b.
    public var accumulationSteps: Int = 1
    public init() {}
}

/// One progress report.
public struct TrainingProgress: Sendable {
    public var step: Int, totalSteps: Int
    public var loss: Float
    public var learningRate: Float
    public var gradientNorm: Double
    public var tokensPerSecond: Double
    public var secondsLeft: Double
    /// Useful FLOPs spent so far in this run (a resumed run counts on from its checkpoint's figure).
    public var flops: Double = 0

    /// `step 10/100  loss 3.2104  lr 1.00e-04  grad-norm 1.234  tokens/s 1234  ETA 0:01:23`
    public var line: String {
        let eta = Int(secondsLeft.rounded())
        return String(format: "step %d/%d  loss %.4f  lr %.2e  grad-norm %.3f  tokens/s %.0f  ETA %d:%02d:%02d",
                      step, totalSteps, loss, learningRate, gradientNorm, tokensPerSecond, eta / 3600, eta / 60 % 60, eta % 60)
            + (flops > 0 ? String(format: "  compute %.3e FLOP", flops) : "")
    }
}

/// Training loops for both models, with checkpoints in the engine's model-folder format plus the
/// optimiser state (`optimizer.safetensors`) and `trainer_state.json`, and exact resume: batches
/// and noise depend only on (seed, step).
public enum Trainer {
    public enum Kind: String, Sendable { case autoencoder, calm, baseline, tokenMaturation = "token_maturation" }

    /// `flops`: the run's compute up to this checkpoint (absent in checkpoints of older builds, whose
    /// resumed runs then count from 0).
    struct State: Codable { var step: Int; var seed: UInt64; var kind: String; var flops: Double? }

    /// Optional callbacks of a run besides the per-step progress line.
    public struct Hooks {
        /// Called every `evalEvery` steps and after the last step; returns a line to report.
        public var evaluate: ((Int) throws -> String)?
        /// Receives evaluation lines and other messages.
        public var log: (String) -> Void
        public init(evaluate: ((Int) throws -> String)? = nil, log: @escaping (String) -> Void = { _ in }) {
            self.evaluate = evaluate
            self.log = log
        }
    }

    /// Trains an autoencoder; returns the final checkpoint folder.
    @discardableResult
    public static func trainAutoencoder(_ model: TrainableAutoencoder, data: TokenData, options o: TrainingRunOptions,
                                        output: URL, resume: URL? = nil, pool: ComputePool = .shared, hooks: Hooks = Hooks(),
                                        progress: (TrainingProgress) -> Void = { _ in }) throws -> URL {
        let k = model.config.patchSize
        let length = o.blockSize ?? o.chunksPerSequence * k
        guard length % k == 0 else { throw TrainingError.invalidInput("block size \(length) is not a multiple of K = \(k)") }
        return try loop(kind: .autoencoder, parameters: model.parameters, options: o, output: output, resume: resume,
                        tokensPerStep: o.accumulationSteps * o.batchSize * length, hooks: hooks, progress: progress,
                        step: { batch, rng, accumulate in
                            let ids = try data.batch(step: batch, rows: o.batchSize, length: length, shuffleSeed: o.shuffle ? o.seed : nil).flatMap { $0 }
                            return try AutoencoderTrainingStep.lossAndGradients(model: model, inputIDs: ids, rng: rng, accumulate: accumulate,
                                                                                pool: pool).loss
                        }, save: { try model.save(to: $0) })
    }

    /// Trains a CALM model (autoencoder frozen); returns the final checkpoint folder.
    @discardableResult
    public static func trainCALM(_ model: TrainableCALM, data: TokenData, options o: TrainingRunOptions,
                                 output: URL, resume: URL? = nil, pool: ComputePool = .shared, targetSamples: Int = 100,
                                 hooks: Hooks = Hooks(), progress: (TrainingProgress) -> Void = { _ in }) throws -> URL {
        let k = model.config.patchSize
        let length = o.blockSize ?? o.chunksPerSequence * k
        guard length % k == 0, length >= 2 * k else { throw TrainingError.invalidInput("block size \(length) must be a multiple of K = \(k), at least 2K") }
        return try loop(kind: .calm, parameters: model.parameters, options: o, output: output, resume: resume,
                        tokensPerStep: o.accumulationSteps * o.batchSize * length, hooks: hooks, progress: progress,
                        step: { batch, rng, accumulate in
                            let rows = try data.batch(step: batch, rows: o.batchSize, length: length, shuffleSeed: o.shuffle ? o.seed : nil)
                            return try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: rows, rng: rng,
                                                                           targetSamples: targetSamples, accumulate: accumulate, pool: pool).loss
                        }, save: { try model.save(to: $0) })
    }

    /// Trains the discrete Llama baseline (next-token cross-entropy); returns the final checkpoint folder.
    @discardableResult
    public static func trainBaseline(_ model: TrainableLlama, data: TokenData, options o: TrainingRunOptions,
                                     output: URL, resume: URL? = nil, pool: ComputePool = .shared, hooks: Hooks = Hooks(),
                                     progress: (TrainingProgress) -> Void = { _ in }) throws -> URL {
        let length = o.blockSize ?? o.chunksPerSequence * 4
        guard length >= 2 else { throw TrainingError.invalidInput("block size must be at least 2") }
        return try loop(kind: .baseline, parameters: model.parameters, options: o, output: output, resume: resume,
                        tokensPerStep: o.accumulationSteps * o.batchSize * length, hooks: hooks, progress: progress,
                        step: { batch, _, accumulate in
                            let rows = try data.batch(step: batch, rows: o.batchSize, length: length, shuffleSeed: o.shuffle ? o.seed : nil)
                            return try CausalLMTrainingStep.lossAndGradients(model: model, inputIDs: rows, accumulate: accumulate, pool: pool).loss
                        }, save: { try model.save(to: $0) })
    }

    /// Trains a Token Maturation model (spec §3) from its discrete initialisation; returns the final
    /// checkpoint folder (a `model_type: "token_maturation"` folder). Batches are the causal layout's
    /// blocks; each step's plan (K, cut, tail-only mask, noise, negatives) is drawn from the step's
    /// seeded stream, so a resumed run repeats an uninterrupted one. Weight decay skips the lookup
    /// tables: W, GPT-2's positions and the tail-length table (`TrainableTokenMaturation.decays`).
    @discardableResult
    public static func trainTokenMaturation(_ model: TrainableTokenMaturation, data: TokenData, options o: TrainingRunOptions,
                                            objective: TokenMaturationObjective = TokenMaturationObjective(), output: URL,
                                            resume: URL? = nil, pool: ComputePool = .shared, hooks: Hooks = Hooks(),
                                            progress: (TrainingProgress) -> Void = { _ in }) throws -> URL {
        let length = o.blockSize ?? o.chunksPerSequence * 4
        guard length >= 2 else { throw TrainingError.invalidInput("block size must be at least 2") }
        try objective.validate()
        return try loop(kind: .tokenMaturation, parameters: model.parameters, options: o, output: output, resume: resume,
                        tokensPerStep: o.accumulationSteps * o.batchSize * length, hooks: hooks, progress: progress, decays: model.decays,
                        step: { batch, rng, accumulate in
                            let rows = try data.batch(step: batch, rows: o.batchSize, length: length, shuffleSeed: o.shuffle ? o.seed : nil)
                            return try TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: rows, rng: rng, objective: objective,
                                                                                    accumulate: accumulate, pool: pool).loss
                        }, save: { try model.save(to: $0) })
    }

    static func loop(kind: Kind, parameters: ParameterSet, options o: TrainingRunOptions, output: URL, resume: URL?,
                     tokensPerStep: Int, hooks: Hooks, progress: (TrainingProgress) -> Void,
                     decays: @escaping @Sendable (Parameter) -> Bool = { $0.shape.count >= 2 },
                     step runStep: (_ batch: Int, SeededRandomness, _ accumulate: Bool) throws -> Float,
                     save: (URL) throws -> Void) throws -> URL {
        guard o.accumulationSteps >= 1 else {
            throw TrainingError.invalidInput("accumulation steps must be at least 1, not \(o.accumulationSteps)")
        }
        let optimizer = AdamW(parameters: parameters, options: .init(learningRate: o.learningRate, warmupSteps: o.warmupSteps,
                                                                     beta1: o.beta1, beta2: o.beta2, weightDecay: o.weightDecay,
                                                                     maxGradNorm: o.maxGradNorm,
                                                                     decaySteps: o.cosineDecay ? o.steps : nil,
                                                                     finalRatio: o.finalLearningRateRatio),
                              decays: decays)
        var start = 0
        var flopsAtResume = 0.0
        if let resume {
            let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: resume.appendingPathComponent("trainer_state.json")))
            guard state.kind == kind.rawValue else {
                throw TrainingError.invalidModelFolder(path: resume.path, reason: "checkpoint is a \(state.kind) run, not \(kind.rawValue)")
            }
            try loadOptimizer(optimizer, from: resume.appendingPathComponent("optimizer.safetensors"), step: state.step)
            start = state.step
            flopsAtResume = state.flops ?? 0
        }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var last = resume ?? output
        let began = Date()
        let flopsAtStart = Matmul.flopCount
        var totalSteps = o.steps
        var step = start
        var paused = 0.0
        while step < totalSteps {
            // Micro-batch i of step s is data batch s·N + i with its own seeded stream; N = 1 is the
            // plain step (batch s, the stream of s).
            let micro = o.accumulationSteps
            var loss: Float = 0
            for i in 0..<micro {
                let batch = step * micro + i
                let rng = SeededRandomness(seed: o.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(batch))
                let part = try runStep(batch, rng, i > 0)
                guard part.isFinite else {
                    throw TrainingError.invalidInput("loss became \(part) at step \(step + 1)" + (micro > 1 ? ", micro-batch \(i + 1) of \(micro)" : ""))
                }
                loss += part / Float(micro)
            }
            if micro > 1 { parameters.scaleGradients(by: 1 / Float(micro)) }
            let done = step + 1
            let flops = flopsAtResume + Matmul.flopCount - flopsAtStart
            if let budget = o.flopBudget, done == start + 1, flops > flopsAtResume {
                // Later steps are taken to cost what this one did (so they do with fixed-length
                // batches); fixed before the first update so that a cosine decay ends on the budget's
                // last step exactly as in a run given that many steps.
                totalSteps = start + max(1, Int(((budget - flopsAtResume) / (flops - flopsAtResume)).rounded(.up)))
                if o.cosineDecay { optimizer.setDecaySteps(totalSteps) }
            }
            let info = optimizer.apply()
            let elapsed = Date().timeIntervalSince(began) - paused
            let rate = Double((done - start) * tokensPerStep) / max(elapsed, 1e-9)
            let left = elapsed / Double(done - start) * Double(totalSteps - done)
            progress(TrainingProgress(step: done, totalSteps: totalSteps, loss: loss, learningRate: info.learningRate,
                                      gradientNorm: info.gradientNorm, tokensPerSecond: rate, secondsLeft: left, flops: flops))
            // Evaluation and checkpoints count neither towards compute nor towards tokens/s.
            let pauseStart = Date(), flopsBefore = Matmul.flopCount
            defer { paused += Date().timeIntervalSince(pauseStart); Matmul.flopCount = flopsBefore }
            if let evaluate = hooks.evaluate, done == totalSteps || (o.evalEvery > 0 && done % o.evalEvery == 0) {
                hooks.log("step \(done): " + (try evaluate(done)))
            }
            if done == totalSteps || (o.checkpointEvery > 0 && done % o.checkpointEvery == 0) {
                let dir = output.appendingPathComponent("checkpoint-\(done)")
                try save(dir)
                try saveOptimizer(optimizer, to: dir.appendingPathComponent("optimizer.safetensors"))
                try JSONEncoder().encode(State(step: done, seed: o.seed, kind: kind.rawValue, flops: flops))
                    .write(to: dir.appendingPathComponent("trainer_state.json"))
                last = dir
            }
            step = done
        }
        return last
    }

    static func saveOptimizer(_ opt: AdamW, to url: URL) throws {
        var w = SafetensorsWriter(metadata: ["step": "\(opt.step)"])
        for p in opt.parameters.parameters where p.requiresGrad {
            try w.add(name: "exp_avg." + p.name, shape: p.shape, floats: opt.firstMoment[p.name]!)
            try w.add(name: "exp_avg_sq." + p.name, shape: p.shape, floats: opt.secondMoment[p.name]!)
        }
        try w.write(to: url)
    }

    static func loadOptimizer(_ opt: AdamW, from url: URL, step: Int) throws {
        let f = try SafetensorsFile(url: url)
        // The state must cover exactly the parameters this run trains (a run that froze or unfroze a
        // tensor since the checkpoint would not continue the same optimisation).
        let trained = Set(opt.parameters.parameters.filter(\.requiresGrad).map(\.name))
        if let extra = f.tensorNames.first(where: { $0.hasPrefix("exp_avg.") && !trained.contains(String($0.dropFirst("exp_avg.".count))) }) {
            throw TrainingError.invalidModelFolder(path: url.path, reason: "holds optimizer state for \(extra.dropFirst("exp_avg.".count)), which this run does not train; resume with the same trainable parameters")
        }
        var first: [String: [Float]] = [:], second: [String: [Float]] = [:]
        for p in opt.parameters.parameters where p.requiresGrad {
            for key in ["exp_avg." + p.name, "exp_avg_sq." + p.name] where f.info(key) == nil {
                throw TrainingError.missingWeight(file: url.path, keys: [key])
            }
            first[p.name] = try f.tensor("exp_avg." + p.name).floats()
            second[p.name] = try f.tensor("exp_avg_sq." + p.name).floats()
        }
        opt.restore(step: step, first: first, second: second)
    }
}
