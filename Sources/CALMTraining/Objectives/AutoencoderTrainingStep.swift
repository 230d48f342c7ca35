import CALMModel
import Foundation

/// The autoencoder's training objective (reference `Autoencoder.forward` in train mode):
/// token dropout → encode → z = μ + ε·σ → latent dropout → decode → CE; clamped KL;
/// loss = CE·K + kl_weight·KL.
public enum AutoencoderTrainingStep {
    public struct Result: Sendable {
        public var loss: Float
        public var ce: Float
        public var kl: Float
        /// Float intermediates by golden key (without `train.`), when requested.
        public var intermediates: [String: [Float]] = [:]
        /// Integer intermediates (`token_keep_mask`, `masked_input_ids`), when requested.
        public var intIntermediates: [String: [Int]] = [:]
        /// Number of tokens in the step.
        public var tokens: Int
    }

    /// Loss of `inputIDs` (any number of whole chunks, labels = inputs) and its gradients,
    /// accumulated into `model.parameters` (zeroed first unless `accumulate`).
    public static func lossAndGradients(model: TrainableAutoencoder, inputIDs: [Int], injected noise: AETrainingNoise,
                                        accumulate: Bool = false, recordIntermediates: Bool = false,
                                        pool: ComputePool? = .shared) throws -> Result {
        let c = model.config
        let k = c.patchSize, z = c.latentSize, v = c.vocabSize
        guard !inputIDs.isEmpty, inputIDs.count % k == 0 else {
            throw TrainingError.invalidInput("\(inputIDs.count) ids is not a positive multiple of the chunk size \(k)")
        }
        if let bad = inputIDs.first(where: { $0 < 0 || $0 >= v }) {
            throw TrainingError.invalidInput("token id \(bad) outside the vocabulary (\(v))")
        }
        let chunks = inputIDs.count / k
        guard noise.tokenDropoutUniform.count == chunks * k, noise.posteriorEps.count == chunks * z,
              noise.latentDropoutKeep.count == chunks * z else {
            throw TrainingError.invalidInput("injected noise has the wrong sizes for \(chunks) chunks")
        }
        if !accumulate { model.parameters.zeroGrad() }
        let ae = model.module
        let p = Float(c.aeDropout)
        let klClamp = Float(c.klClamp), klWeight = Float(c.klWeight)

        // Forward.
        let keep = TokenDropoutOp.keepMask(uniform: noise.tokenDropoutUniform, p: p)
        let masked = TokenDropoutOp.apply(inputIDs, keep: keep)
        let (latent, encSaved) = ae.encode(masked, pool: pool)
        let (mean, logStd) = LatentSplit.split(latent, rows: chunks, z: z)
        let zNoisy = GaussianSampleOp.forward(mean: mean, logStd: logStd, eps: noise.posteriorEps)
        let zDropped = DropoutOp.forward(zNoisy, keep: noise.latentDropoutKeep, p: p)
        let kl = ClampedKLOp.forward(mean: mean, logStd: logStd, rows: chunks, clamp: klClamp)
        var dLogits: [Float]
        let decSaved: AutoencoderModule.DecoderSaved
        (dLogits, decSaved) = ae.decode(zDropped, rows: chunks, pool: pool)
        // Fused softmax cross-entropy: the logits buffer becomes d loss / d logits in place (the
        // golden path keeps a copy of the logits for its intermediates).
        let logitsCopy = recordIntermediates ? dLogits : []
        let ce = CrossEntropyOp.fused(logits: &dLogits, labels: inputIDs, vocab: v, scale: Float(k), pool: pool)
        let loss = ce * Float(k) + klWeight * kl.loss

        // Backward.
        let tiedBefore = recordIntermediates ? ae.tied.grad : []
        let dzDropped = ae.decodeBackward(dLogits, saved: decSaved, rows: chunks, pool: pool)
        let tiedAfterDecoder = recordIntermediates ? ae.tied.grad : []
        let dzNoisy = DropoutOp.backward(dzDropped, keep: noise.latentDropoutKeep, p: p)
        var dMean = [Float](repeating: 0, count: chunks * z), dLogStd = dMean
        GaussianSampleOp.backward(dzNoisy, logStd: logStd, eps: noise.posteriorEps, dMean: &dMean, dLogStd: &dLogStd)
        ClampedKLOp.backward(weight: klWeight, mean: mean, logStd: logStd, perDim: kl.perDim, rows: chunks, clamp: klClamp,
                             dMean: &dMean, dLogStd: &dLogStd)
        let dLatent = LatentSplit.join(mean: dMean, logStd: dLogStd, rows: chunks, z: z)
        ae.encodeBackward(dLatent, saved: encSaved, pool: pool)

        var result = Result(loss: loss, ce: ce, kl: kl.loss, tokens: inputIDs.count)
        if recordIntermediates {
            let tiedAfter = ae.tied.grad
            result.intermediates = [
                "latent_states": latent, "mean": mean, "log_std": logStd, "posterior_eps": noise.posteriorEps,
                "z_noisy": zNoisy, "latent_dropout_keep": noise.latentDropoutKeep, "z_dropped": zDropped,
                "kl_per_dim": kl.perDim, "kl_per_dim_clamped": kl.clamped, "kl_loss": [kl.loss],
                "logits": logitsCopy, "ce_loss": [ce], "loss": [loss], "dloss_dlogits": dLogits,
                "dloss_dlatent_states": dLatent, "token_dropout_uniform": noise.tokenDropoutUniform,
                "tied_grad_decoder_lm_head_use": zip(tiedAfterDecoder, tiedBefore).map { $0 - $1 },
                "tied_grad_encoder_embedding_use": zip(tiedAfter, tiedAfterDecoder).map { $0 - $1 },
            ]
            result.intIntermediates = ["token_keep_mask": keep.map { $0 ? 1 : 0 }, "masked_input_ids": masked,
                                       "input_ids": inputIDs, "labels": inputIDs]
        }
        return result
    }

    /// Production variant: noise drawn from `rng`.
    public static func lossAndGradients(model: TrainableAutoencoder, inputIDs: [Int], rng: SeededRandomness,
                                        accumulate: Bool = false, pool: ComputePool? = .shared) throws -> Result {
        let chunks = inputIDs.count / max(model.config.patchSize, 1)
        return try lossAndGradients(model: model, inputIDs: inputIDs,
                                    injected: .draw(chunks: chunks, config: model.config, rng: rng),
                                    accumulate: accumulate, pool: pool)
    }
}
