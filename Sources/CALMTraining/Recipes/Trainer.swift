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

    /// `step 10/100  loss 3.2104  lr 1.00e-04  grad-norm 1.234  tokens/s 1234  ETA 0:01:23`
    public var line: String {
        let eta = Int(secondsLeft.rounded())
        return String(format: "step %d/%d  loss %.4f  lr %.2e  grad-norm %.3f  tokens/s %.0f  ETA %d:%02d:%02d",
                      step, totalSteps, loss, learningRate, gradientNorm, tokensPerSecond, eta / 3600, eta / 60 % 60, eta % 60)
    }
}

/// Training loops for both models, with checkpoints in the engine's model-folder format plus the
/// optimiser state (`optimizer.safetensors`) and `trainer_state.json`, and exact resume: batches
/// and noise depend only on (seed, step).
public enum Trainer {
    public enum Kind: String, Sendable { case autoencoder, calm }

    struct State: Codable { var step: Int; var seed: UInt64; var kind: String }

    /// Trains an autoencoder; returns the final checkpoint folder.
    @discardableResult
    public static func trainAutoencoder(_ model: TrainableAutoencoder, data: TokenData, options o: TrainingRunOptions,
                                        output: URL, resume: URL? = nil, pool: ComputePool = .shared,
                                        progress: (TrainingProgress) -> Void = { _ in }) throws -> URL {
        let length = o.chunksPerSequence * model.config.patchSize
        return try loop(kind: .autoencoder, parameters: model.parameters, options: o, output: output, resume: resume,
                        tokensPerStep: o.batchSize * length, progress: progress,
                        step: { step, rng in
                            let ids = try data.batch(step: step, rows: o.batchSize, length: length).flatMap { $0 }
                            return try AutoencoderTrainingStep.lossAndGradients(model: model, inputIDs: ids, rng: rng, pool: pool).loss
                        }, save: { try model.save(to: $0) })
    }

    /// Trains a CALM model (autoencoder frozen); returns the final checkpoint folder.
    @discardableResult
    public static func trainCALM(_ model: TrainableCALM, data: TokenData, options o: TrainingRunOptions,
                                 output: URL, resume: URL? = nil, pool: ComputePool = .shared,
                                 progress: (TrainingProgress) -> Void = { _ in }) throws -> URL {
        let length = o.chunksPerSequence * model.config.patchSize
        return try loop(kind: .calm, parameters: model.parameters, options: o, output: output, resume: resume,
                        tokensPerStep: o.batchSize * length, progress: progress,
                        step: { step, rng in
                            let rows = try data.batch(step: step, rows: o.batchSize, length: length)
                            return try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: rows, rng: rng, pool: pool).loss
                        }, save: { try model.save(to: $0) })
    }

    static func loop(kind: Kind, parameters: ParameterSet, options o: TrainingRunOptions, output: URL, resume: URL?,
                     tokensPerStep: Int, progress: (TrainingProgress) -> Void,
                     step runStep: (Int, SeededRandomness) throws -> Float, save: (URL) throws -> Void) throws -> URL {
        let optimizer = AdamW(parameters: parameters, options: .init(learningRate: o.learningRate, warmupSteps: o.warmupSteps,
                                                                     beta1: o.beta1, beta2: o.beta2, weightDecay: o.weightDecay,
                                                                     maxGradNorm: o.maxGradNorm))
        var start = 0
        if let resume {
            let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: resume.appendingPathComponent("trainer_state.json")))
            guard state.kind == kind.rawValue else {
                throw TrainingError.invalidModelFolder(path: resume.path, reason: "checkpoint is a \(state.kind) run, not \(kind.rawValue)")
            }
            try loadOptimizer(optimizer, from: resume.appendingPathComponent("optimizer.safetensors"), step: state.step)
            start = state.step
        }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var last = resume ?? output
        let began = Date()
        for step in start..<o.steps {
            let rng = SeededRandomness(seed: o.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(step))
            let loss = try runStep(step, rng)
            guard loss.isFinite else { throw TrainingError.invalidInput("loss became \(loss) at step \(step + 1)") }
            let info = optimizer.apply()
            let done = step + 1
            let elapsed = Date().timeIntervalSince(began)
            let rate = Double((done - start) * tokensPerStep) / max(elapsed, 1e-9)
            let left = elapsed / Double(done - start) * Double(o.steps - done)
            progress(TrainingProgress(step: done, totalSteps: o.steps, loss: loss, learningRate: info.learningRate,
                                      gradientNorm: info.gradientNorm, tokensPerSecond: rate, secondsLeft: left))
            if done == o.steps || (o.checkpointEvery > 0 && done % o.checkpointEvery == 0) {
                let dir = output.appendingPathComponent("checkpoint-\(done)")
                try save(dir)
                try saveOptimizer(optimizer, to: dir.appendingPathComponent("optimizer.safetensors"))
                try JSONEncoder().encode(State(step: done, seed: o.seed, kind: kind.rawValue))
                    .write(to: dir.appendingPathComponent("trainer_state.json"))
                last = dir
            }
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
        var first: [String: [Float]] = [:], second: [String: [Float]] = [:]
        for p in opt.parameters.parameters where p.requiresGrad {
            first[p.name] = try f.tensor("exp_avg." + p.name).floats()
            second[p.name] = try f.tensor("exp_avg_sq." + p.name).floats()
        }
        opt.restore(step: step, first: first, second: second)
    }
}
