import CALMModel
import CALMTensor
import Foundation

/// `gen.*`, `gen_eos.*`, `gen_T<t>.*`: the reference generate loop replayed with the recorded
/// per-step noise (and selection draws for T < 1).
enum GenerationChecks {
    static func run(_ model: CALMModel, group: String, keys: [String], _ ctx: GoldenContext) {
        let p = group + "."
        do {
            let prompt = try ctx.ints(p + "prompt_ids")
            let promptShape = ctx.shape(p + "prompt_ids")
            let batch = promptShape.first ?? 1
            let length = prompt.count / max(batch, 1)
            let prompts = (0..<batch).map { Array(prompt[($0 * length)..<(($0 + 1) * length)]) }
            let uniform = try ctx.floats(p + "step_uniform")
            let uShape = ctx.shape(p + "step_uniform")
            let info = ctx.manifest.group(ctx.manifestName, group)
            let temperature: Double
            if group.hasPrefix("gen_T"), let t = Double(group.dropFirst("gen_T".count)) {
                temperature = t
            } else {
                temperature = info?["temperature"] as? Double ?? 1.0
            }
            let steps = uShape.first ?? 0
            let samples = uShape.count == 4 ? uShape[2] : 1
            let perRowPerStep = uniform.count / max(steps * batch, 1)
            var choiceU: [Double] = []
            if ctx.has(p + "choice_u") { choiceU = try ctx.golden.tensor(p + "choice_u").float64s() }
            let randomness: [ScriptedRandomness] = (0..<batch).map { b in
                var floats: [Float] = []
                for s in 0..<steps { floats += uniform[((s * batch + b) * perRowPerStep)..<((s * batch + b + 1) * perRowPerStep)] }
                let doubles = choiceU.isEmpty ? [] : (0..<steps).map { choiceU[$0 * batch + b] }
                return ScriptedRandomness(floats: floats, doubles: doubles)
            }
            let k = model.patchSize
            let paddedLength = (length + k - 1) / k * k
            let maxLength = info?["max_length"] as? Int ?? (paddedLength + steps * k)
            let eos = info?["eos_token_id"] as? Int
            let result = try model.referenceGenerate(prompts: prompts, maxLength: maxLength, temperature: temperature,
                                                     sampler: .batchApproximation(samples: samples),
                                                     randomness: randomness, eosTokenID: eos)
            var checked: Set<String> = [p + "prompt_ids", p + "step_uniform", p + "choice_u"]
            func stepRows<T>(_ f: (ChunkDraw) -> [T]) -> [T] { result.steps.flatMap { $0.draws.flatMap(f) } }
            let stepCountOK = result.steps.count == steps
            ctx.emit(ConformanceCheck(file: ctx.file, name: p + "steps", passed: stepCountOK,
                                      detail: "\(result.steps.count) steps, reference \(steps)"))
            let exhausted = randomness.contains { $0.exhausted }
            if exhausted { ctx.fail(p + "step_uniform", "the recorded noise ran out before the loop ended") }
            for key in keys where !checked.contains(key) {
                let name = String(key.dropFirst(p.count))
                switch name {
                case "padded_prompt_ids": ctx.check(key, ints: result.paddedPromptIDs.flatMap { $0 })
                case "step_noise": ctx.check(key, floats: uniform.map { $0 - 0.5 })
                case "step_hidden": ctx.check(key, floats: result.steps.flatMap(\.hidden))
                case "step_latent": ctx.check(key, floats: stepRows { $0.latent })
                case "step_sampled_tokens", "step_selected_tokens": ctx.check(key, ints: stepRows { $0.chunk.map(Int.init) })
                case "step_pool_tokens": ctx.check(key, ints: stepRows { $0.pool.flatMap { $0.map(Int.init) } })
                case "choice_index": ctx.check(key, ints: stepRows { [$0.selection?.index ?? -1] })
                case "raw_ids": ctx.check(key, ints: result.rawIDs.flatMap { $0 })
                case "output_ids": ctx.check(key, ints: result.outputIDs.flatMap { $0 })
                default: continue
                }
                checked.insert(key)
            }
            ctx.reportUnchecked(keys, checked: checked)
        } catch { ctx.fail(p + "*", "\(error)") }
    }
}
