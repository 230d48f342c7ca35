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
    /// number of kept positions N is known.
    public static func lossAndGradients(model: TrainableCALM, inputIDs: [[Int]], labels: [[Int]]? = nil,
                                        noise: (Int) -> EnergyTrainingNoise, accumulate: Bool = false,
                                        recordIntermediates: Bool = false, pool: ComputePool? = .shared) throws -> Result {
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
        if !accumulate { model.parameters.zeroGrad() }

        // Targets from the frozen autoencoder.
        let ae = model.autoencoder.module
        let targetLatent = ae.encode(targetIDs, pool: pool).latent
        let (tMean, tLogStd) = LatentSplit.split(targetLatent, rows: n, z: z)

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
        var y = [Float](repeating: 0, count: mCount * n * z)
        for m in 0..<mCount {
            for i in 0..<(n * z) {
                y[m * n * z + i] = tMean[i] + injected.targetEps[m * n * z + i] * expf(tLogStd[i])
            }
        }
        let score = EnergyScoreOp.forward(x: x, y: y, samples: sCount, targets: mCount, positions: n, z: z)

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
}
