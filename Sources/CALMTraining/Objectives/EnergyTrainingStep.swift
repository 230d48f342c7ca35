import CALMModel
import Foundation

/// The CALM energy loss (reference `EnergyTransformer.forward` in train mode): targets from the
/// frozen AE encoder, embed_proj over chunks 0…L−2, the backbone, S head samples per kept
/// position, the energy score against M posterior samples; loss = −mean(score).
public enum EnergyTrainingStep {
    public struct Result: Sendable {
        public var loss: Float
        /// Predicted positions kept by the label mask (N).
        public var positions: Int
        public var intermediates: [String: [Float]] = [:]
        public var intIntermediates: [String: [Int]] = [:]
        /// Number of input tokens in the step.
        public var tokens: Int
    }

    /// The kept positions: (position mask (B × (L−1)), target ids) for labels with −100 on whole chunks.
    public static func targets(labels: [[Int]], patchSize k: Int) throws -> (mask: [[Bool]], targetIDs: [Int]) {
        var mask: [[Bool]] = [], ids: [Int] = []
        for row in labels {
            guard row.count % k == 0, row.count >= 2 * k else {
                throw TrainingError.invalidInput("label rows must be at least 2 whole chunks of \(k)")
            }
            let tail = row[k...]
            ids += tail.filter { $0 != -100 }
            mask.append(stride(from: k, to: row.count, by: k).map { row[$0] != -100 })
        }
        let kept = mask.reduce(0) { $0 + $1.filter { $0 }.count }
        guard ids.count == kept * k else {
            throw TrainingError.invalidInput("label mask (−100) must cover whole chunks")
        }
        return (mask, ids)
    }

    /// Loss and gradients (accumulated into `model.parameters`, zeroed first unless `accumulate`).
    /// `labels` nil means labels = inputs. `noise(N)` gives the step's random values once the
    /// number of kept positions N is known. With `gradients: false` only the loss is computed.
    public static func lossAndGradients(model: TrainableCALM, inputIDs: [[Int]], labels: [[Int]]? = nil,
                                        noise: (Int) -> EnergyTrainingNoise, accumulate: Bool = false,
                                        recordIntermediates: Bool = false, gradients: Bool = true,
                                        pool: ComputePool? = .shared) throws -> Result {
        let c = model.config
        let k = c.patchSize, h = c.hiddenSize, z = c.latentSize, sCount = c.numSamples
        let b = inputIDs.count
        guard b > 0, let width = inputIDs.first?.count, width % k == 0, width >= 2 * k,
              inputIDs.allSatisfy({ $0.count == width }) else {
            throw TrainingError.invalidInput("input rows must have equal lengths of at least 2 whole chunks")
        }
        if let bad = inputIDs.joined().first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw TrainingError.invalidInput("token id \(bad) outside the vocabulary (\(c.vocabSize))")
        }
        let labels = labels ?? inputIDs
        guard labels.count == b, labels.allSatisfy({ $0.count == width }) else {
            throw TrainingError.invalidInput("labels must have the inputs' shape")
        }
        let (mask, targetIDs) = try targets(labels: labels, patchSize: k)
        let t = width / k - 1
        let n = targetIDs.count / k
        guard n > 0 else { throw TrainingError.invalidInput("every position is masked") }
        let injected = noise(n)
        let mCount = injected.targetSamples
        guard injected.headUniform.count == sCount * n * c.noiseSize, injected.targetEps.count == mCount * n * z else {
            throw TrainingError.invalidInput("injected noise has the wrong sizes for \(n) positions")
        }
        if gradients && !accumulate { model.parameters.zeroGrad() }

        // Targets from the frozen autoencoder.
        let (targetLatent, tMean, tLogStd) = posterior(model.autoencoder, ids: targetIDs, pool: pool)

        // Inputs: chunks 0 … L−2 of each row.
        let inputChunks = inputIDs.flatMap { $0[0..<(t * k)] }
        let embed = ChunkEmbedModule(config: c, parameters: model.parameters)
        let (inputsEmbeds, embSaved) = embed.forward(inputChunks, pool: pool)
        let backbone = BackboneModule(config: c, parameters: model.parameters)
        let (last, bbSaved) = backbone.forward(inputsEmbeds, sequences: b, length: t, pool: pool)
        let keptRows = (0..<(b * t)).filter { mask[$0 / t][$0 % t] }
        var headHidden = [Float](repeating: 0, count: n * h)
        for (i, r) in keptRows.enumerated() { for j in 0..<h { headHidden[i * h + j] = last[r * h + j] } }

        let head = EnergyHeadModule(config: c, parameters: model.parameters)
        let headNoise = injected.headUniform.map { $0 - 0.5 }
        let (x, headSaved) = head.forward(hidden: headHidden, positions: n, samples: sCount, noise: headNoise, pool: pool)
        let y = posteriorSamples(mean: tMean, logStd: tLogStd, eps: injected.targetEps, samples: mCount)
        let score = EnergyScoreOp.forward(x: x, y: y, samples: sCount, targets: mCount, positions: n, z: z)
        guard gradients else { return Result(loss: score.loss, positions: n, tokens: b * width) }

        // Backward.
        let dx = EnergyScoreOp.backward(x: x, y: y, output: score, samples: sCount, targets: mCount, positions: n, z: z)
        let dHeadHidden = head.backward(dx, saved: headSaved, pool: pool)
        var dLast = [Float](repeating: 0, count: b * t * h)
        for (i, r) in keptRows.enumerated() { for j in 0..<h { dLast[r * h + j] = dHeadHidden[i * h + j] } }
        let dInputs = backbone.backward(dLast, saved: bbSaved, pool: pool)
        embed.backward(dInputs, saved: embSaved, pool: pool)

        var result = Result(loss: score.loss, positions: n, tokens: b * width)
        if recordIntermediates {
            result.intermediates = [
                "target_latent_states": targetLatent, "target_mean": tMean, "target_log_std": tLogStd,
                "chunk_embeds": embSaved.chunkEmbeds, "inputs_embeds": inputsEmbeds, "last_hidden_state": last,
                "head_hidden": headHidden, "head_uniform": injected.headUniform, "head_noise": headNoise,
                "latent_predictions": x, "distance_xx": score.distanceXX, "distance_x": score.distanceX,
                "target_eps": injected.targetEps, "target_samples": y, "distance_xy": score.distanceXY,
                "distance_y": score.distanceY, "score": score.score, "loss": [score.loss],
                "dloss_dlatent_predictions": dx, "dloss_dlast_hidden_state": dLast, "dloss_dinputs_embeds": dInputs,
            ]
            result.intIntermediates = [
                "target_ids": targetIDs, "position_mask": mask.flatMap { $0.map { $0 ? 1 : 0 } },
                "input_ids": Array(inputIDs.joined()), "labels": Array(labels.joined()),
            ]
        }
        return result
    }

    /// Injected-noise variant.
    public static func lossAndGradients(model: TrainableCALM, inputIDs: [[Int]], labels: [[Int]]? = nil,
                                        injected: EnergyTrainingNoise, accumulate: Bool = false,
                                        recordIntermediates: Bool = false, pool: ComputePool? = .shared) throws -> Result {
        try lossAndGradients(model: model, inputIDs: inputIDs, labels: labels, noise: { _ in injected },
                             accumulate: accumulate, recordIntermediates: recordIntermediates, pool: pool)
    }

    /// Production variant: noise drawn from `rng` (M = 100 target samples unless given).
    public static func lossAndGradients(model: TrainableCALM, inputIDs: [[Int]], labels: [[Int]]? = nil,
                                        rng: SeededRandomness, targetSamples: Int = 100, accumulate: Bool = false,
                                        pool: ComputePool? = .shared) throws -> Result {
        try lossAndGradients(model: model, inputIDs: inputIDs, labels: labels,
                             noise: { EnergyTrainingNoise.draw(positions: $0, config: model.config, targetSamples: targetSamples, rng: rng) },
                             accumulate: accumulate, pool: pool)
    }

    /// The frozen autoencoder's posterior of each chunk of `ids`: the raw latent and its (μ, log σ).
    static func posterior(_ ae: TrainableAutoencoder, ids: [Int], pool: ComputePool?) -> (latent: [Float], mean: [Float], logStd: [Float]) {
        let latent = ae.module.encode(ids, pool: pool).latent
        let (mean, logStd) = LatentSplit.split(latent, rows: ids.count / ae.config.patchSize, z: ae.config.latentSize)
        return (latent, mean, logStd)
    }

    /// `samples` draws μ + ε·σ of every row of (μ, log σ), sample-major ((samples, rows, z), as the
    /// energy score takes them), with the normals `eps`.
    static func posteriorSamples(mean: [Float], logStd: [Float], eps: [Float], samples: Int) -> [Float] {
        let count = mean.count
        var y = [Float](repeating: 0, count: samples * count)
        for m in 0..<samples {
            for i in 0..<count { y[m * count + i] = mean[i] + eps[m * count + i] * expf(logStd[i]) }
        }
        return y
    }

    /// The held-out energy loss of a model beside that of the **marginal predictor**: a predictor
    /// that ignores the context and proposes the posteriors of random chunks of the held-out data
    /// (one random chunk per head sample). Both are scored against the same target samples, so
    /// `gap` = marginal − model says how much the model uses its context (0: not at all).
    public struct HeldOutEnergy: Sendable, Equatable {
        /// Mean energy loss (−score) of the model and of the marginal predictor.
        public var loss: Double
        public var marginalLoss: Double
        /// Predicted positions scored.
        public var positions: Int
        /// How much lower the model's loss is than the marginal predictor's.
        public var gap: Double { marginalLoss - loss }

        /// `held-out energy loss 13.2104 (marginal 13.5120, gap 0.3016; 4092 positions)`
        public var line: String {
            String(format: "held-out energy loss %.4f (marginal %.4f, gap %.4f; %d positions)", loss, marginalLoss, gap, positions)
        }
    }

    /// Energy losses of the first `batches` batches of `rows` blocks of `data` (the same blocks and,
    /// from `seed`, the same noise at every call, so evaluations during a run compare), without
    /// gradients; the marginal predictor's random chunks come from all of `data`.
    public static func evaluate(model: TrainableCALM, data: TokenData, batches: Int, rows: Int, length: Int,
                                targetSamples: Int = 100, seed: UInt64 = 1234, pool: ComputePool? = .shared) throws -> HeldOutEnergy {
        let c = model.config
        let k = c.patchSize, z = c.latentSize, sCount = c.numSamples
        let chunks = data.ids.count / k
        guard chunks > 0 else { throw TrainingError.invalidInput("the held-out data has no whole chunk of \(k) tokens") }
        let available = max(1, data.blockCount(length: length) / max(rows, 1))
        let n = max(1, min(batches, available))
        var modelSum = 0.0, marginalSum = 0.0, positions = 0
        for i in 0..<n {
            let batch = try data.batch(step: i, rows: rows, length: length)
            let rng = SeededRandomness(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i))
            var drawn: EnergyTrainingNoise?
            let r = try lossAndGradients(model: model, inputIDs: batch, noise: { count in
                let noise = EnergyTrainingNoise.draw(positions: count, config: c, targetSamples: targetSamples, rng: rng)
                drawn = noise
                return noise
            }, gradients: false, pool: pool)
            guard let noise = drawn else { continue }
            let targetIDs = try targets(labels: batch, patchSize: k).targetIDs
            let target = posterior(model.autoencoder, ids: targetIDs, pool: pool)
            let y = posteriorSamples(mean: target.mean, logStd: target.logStd, eps: noise.targetEps, samples: targetSamples)
            // The marginal predictor: the posterior of a random held-out chunk per head sample.
            let pick = SeededRandomness(seed: (seed ^ 0x5851_F42D_4C95_7F2D) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i))
            var ids: [Int] = []
            ids.reserveCapacity(sCount * r.positions * k)
            for _ in 0..<(sCount * r.positions) {
                let start = Int(pick.next() % UInt64(chunks)) * k
                ids += data.ids[start..<(start + k)]
            }
            let random = posterior(model.autoencoder, ids: ids, pool: pool)
            let x = posteriorSamples(mean: random.mean, logStd: random.logStd, eps: pick.normalFloats(count: ids.count / k * z), samples: 1)
            let marginal = EnergyScoreOp.forward(x: x, y: y, samples: sCount, targets: targetSamples, positions: r.positions, z: z)
            modelSum += Double(r.loss) * Double(r.positions)
            marginalSum += Double(marginal.loss) * Double(r.positions)
            positions += r.positions
        }
        guard positions > 0 else { throw TrainingError.invalidInput("no held-out position to score") }
        return HeldOutEnergy(loss: modelSum / Double(positions), marginalLoss: marginalSum / Double(positions), positions: positions)
    }
}
