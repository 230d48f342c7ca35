import CALMModel
import CALMTensor
import Foundation

/// `gen.*`, `gen_eos.*`, `gen_T<t>.*`: the reference generate loop replayed with the recorded
/// per-step noise (and selection draws for T < 1), with the full decode (the reference path: every
/// key), then again with lazy decoding (`DecodingStrategy.lazy`), whose chosen tokens must match the
/// same goldens, with the same recorded values consumed (checks named "… [lazy decoding]").
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
            func recorded() -> [ScriptedRandomness] {
                (0..<batch).map { b in
                    var floats: [Float] = []
                    for s in 0..<steps { floats += uniform[((s * batch + b) * perRowPerStep)..<((s * batch + b + 1) * perRowPerStep)] }
                    let doubles = choiceU.isEmpty ? [] : (0..<steps).map { choiceU[$0 * batch + b] }
                    return ScriptedRandomness(floats: floats, doubles: doubles)
                }
            }
            let randomness = recorded()
            let k = model.patchSize
            let paddedLength = (length + k - 1) / k * k
            let maxLength = info?["max_length"] as? Int ?? (paddedLength + steps * k)
            let eos = info?["eos_token_id"] as? Int
            let result = try model.referenceGenerate(prompts: prompts, maxLength: maxLength, temperature: temperature,
                                                     sampler: .batchApproximation(samples: samples),
                                                     randomness: randomness, eosTokenID: eos, decoding: .full)
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
                case "step_pool_tokens": ctx.check(key, ints: stepRows { $0.pool.flatMap { $0.tokens.map(Int.init) } })
                case "choice_index": ctx.check(key, ints: stepRows { [$0.selection?.index ?? -1] })
                case "raw_ids": ctx.check(key, ints: result.rawIDs.flatMap { $0 })
                case "output_ids": ctx.check(key, ints: result.outputIDs.flatMap { $0 })
                default: continue
                }
                checked.insert(key)
            }
            ctx.reportUnchecked(keys, checked: checked)

            // Lazy decoding: the same replay, the same chosen tokens and recorded values consumed.
            let lazyRandomness = recorded()
            let lazy = try model.referenceGenerate(prompts: prompts, maxLength: maxLength, temperature: temperature,
                                                   sampler: .batchApproximation(samples: samples),
                                                   randomness: lazyRandomness, eosTokenID: eos, decoding: .lazy)
            func lazyRows<T>(_ f: (ChunkDraw) -> [T]) -> [T] { lazy.steps.flatMap { $0.draws.flatMap(f) } }
            let tag = " [lazy decoding]"
            ctx.emit(ConformanceCheck(file: ctx.file, name: p + "steps" + tag, passed: lazy.steps.count == steps,
                                      detail: "\(lazy.steps.count) steps, reference \(steps)"))
            let same = zip(randomness, lazyRandomness).allSatisfy { $0.consumed == $1.consumed && $0.exhausted == $1.exhausted }
            ctx.emit(ConformanceCheck(file: ctx.file, name: p + "random draws" + tag, passed: same,
                                      detail: same ? "the same recorded noise and selection draws consumed"
                                                   : "consumed \(lazyRandomness.map(\.consumed)), full decoding \(randomness.map(\.consumed))"))
            for key in keys {
                let name = String(key.dropFirst(p.count))
                switch name {
                case "step_latent": ctx.check(key, floats: lazyRows { $0.latent }, as: key + tag)
                case "step_sampled_tokens", "step_selected_tokens": ctx.check(key, ints: lazyRows { $0.chunk.map(Int.init) }, as: key + tag)
                case "choice_index": ctx.check(key, ints: lazyRows { [$0.selection?.index ?? -1] }, as: key + tag)
                case "raw_ids": ctx.check(key, ints: lazy.rawIDs.flatMap { $0 }, as: key + tag)
                case "output_ids": ctx.check(key, ints: lazy.outputIDs.flatMap { $0 }, as: key + tag)
                case "step_pool_tokens":
                    do {
                        let r = LazyPoolCheck.compare(lazy.steps.flatMap { $0.draws.map(\.pool) }, golden: try ctx.ints(key), chunkSize: model.patchSize)
                        ctx.emit(ConformanceCheck(file: ctx.file, name: key + tag, passed: r.passed, detail: r.detail))
                    } catch { ctx.fail(key + tag, "\(error)") }
                default: continue
                }
            }
        } catch { ctx.fail(p + "*", "\(error)") }
    }
}

/// A lazily decoded pool against the golden's whole chunks: every entry is a prefix of its chunk,
/// whole where the chunk occurs more than once in its pool, and (so) entries compare like chunks.
enum LazyPoolCheck {
    static func compare(_ pools: [[PartialChunk]], golden: [Int], chunkSize k: Int) -> (passed: Bool, detail: String) {
        let total = pools.reduce(0) { $0 + $1.count }
        guard total * k == golden.count else { return (false, "\(total) entries of \(k) ids, golden holds \(golden.count) ids") }
        var offset = 0, whole = 0
        for (p, pool) in pools.enumerated() {
            let chunks = (0..<pool.count).map { i in golden[((offset + i) * k)..<((offset + i + 1) * k)].map(Int32.init) }
            offset += pool.count
            var counts: [[Int32]: Int] = [:]
            for c in chunks { counts[c, default: 0] += 1 }
            for (i, entry) in pool.enumerated() {
                guard entry.size == k, Array(chunks[i].prefix(entry.tokens.count)) == entry.tokens else {
                    return (false, "pool \(p) entry \(i): \(entry) is not a prefix of the golden \(chunks[i])")
                }
                if entry.isComplete { whole += 1 }
                if counts[chunks[i], default: 0] > 1 && !entry.isComplete {
                    return (false, "pool \(p) entry \(i): \(chunks[i]) occurs \(counts[chunks[i], default: 0]) times but was decoded only to \(entry)")
                }
                for (j, other) in pool.enumerated() where j != i && (other.tokens == entry.tokens) != (chunks[j] == chunks[i]) {
                    return (false, "pool \(p) entries \(i) and \(j) compare unlike their chunks")
                }
            }
        }
        return (true, "\(total) entries, every one a prefix of its chunk; \(whole) decoded whole")
    }
}
