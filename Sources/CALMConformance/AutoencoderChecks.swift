import CALMModel
import Foundation

/// `enc.*` and `dec.*`: the autoencoder alone.
enum AutoencoderChecks {
    static func encoder(_ ae: Autoencoder, keys: [String], _ ctx: GoldenContext) {
        do {
            let ids = try ctx.ints("enc.input_ids")
            var recorded: [String: [Float]] = [:]
            let stats = ae.encode(ids, pool: .shared) { recorded[$0] = $1 }
            let z = ae.config.latentSize
            let rows = stats.count / (2 * z)
            recorded["mean"] = (0..<rows).flatMap { stats[($0 * 2 * z)..<($0 * 2 * z + z)] }
            recorded["log_std"] = (0..<rows).flatMap { stats[($0 * 2 * z + z)..<(($0 + 1) * 2 * z)] }
            var checked: Set<String> = ["enc.input_ids"]
            for key in keys where key != "enc.input_ids" {
                let name = String(key.dropFirst("enc.".count))
                guard let ours = recorded[name] else { continue }
                ctx.check(key, floats: ours)
                checked.insert(key)
            }
            ctx.reportUnchecked(keys, checked: checked)
        } catch { ctx.fail("enc.*", "\(error)") }
    }

    static func decoder(_ ae: Autoencoder, keys: [String], _ ctx: GoldenContext) {
        var checked: Set<String> = []
        let k = ae.config.patchSize
        for variant in ["mean", "rand"] {
            let input = "dec.latents_\(variant)"
            guard ctx.has(input) else { continue }
            checked.insert(input)
            do {
                let latents = try ctx.floats(input)
                let rows = latents.count / ae.config.latentSize
                var recorded: [String: [Float]] = [:]
                let logits = ae.decodeLogits(latents, rows: rows, pool: .shared) { recorded[$0] = $1 }
                let tokens = ae.decodeTokens(latents, rows: rows, pool: .shared).map(Int.init)
                if variant == "mean" {
                    for key in keys {
                        let name = String(key.dropFirst("dec.".count))
                        if let ours = recorded[name] { ctx.check(key, floats: ours); checked.insert(key) }
                    }
                }
                for (key, action) in [("dec.logits_\(variant)", 0), ("dec.argmax_\(variant)", 1)] where ctx.has(key) {
                    if action == 0 { ctx.check(key, floats: logits) } else { ctx.check(key, ints: tokens) }
                    checked.insert(key)
                }
                _ = k
            } catch { ctx.fail(input, "\(error)") }
        }
        ctx.reportUnchecked(keys, checked: checked)
    }
}
