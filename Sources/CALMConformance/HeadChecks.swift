import CALMModel
import Foundation

/// `head.*`: the energy head on explicit hidden states and noise, then the decoder on its latents.
enum HeadChecks {
    static func run(_ model: CALMModel, keys: [String], _ ctx: GoldenContext) {
        do {
            let hidden = try ctx.floats("head.hidden")
            let uniform = try ctx.floats("head.uniform")
            let rows = hidden.count / model.config.hiddenSize
            let noise = uniform.map { $0 - 0.5 }
            var recorded: [String: [Float]] = ["noise": noise]
            let latent = model.head.sample(hiddenStates: hidden, rows: rows, samplesPerRow: 1, noise: noise, pool: model.pool) { recorded[$0] = $1 }
            recorded["decoded_logits"] = model.autoencoder.decodeLogits(latent, rows: rows, pool: model.pool)
            var checked: Set<String> = ["head.hidden", "head.uniform"]
            for key in keys {
                let name = String(key.dropFirst("head.".count))
                if name == "decoded_tokens" {
                    ctx.check(key, ints: model.autoencoder.decodeTokens(latent, rows: rows, pool: model.pool).map(Int.init))
                    checked.insert(key)
                } else if let ours = recorded[name] {
                    ctx.check(key, floats: ours)
                    checked.insert(key)
                }
            }
            ctx.reportUnchecked(keys, checked: checked)
        } catch { ctx.fail("head.*", "\(error)") }
    }
}
