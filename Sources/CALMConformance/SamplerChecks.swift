import CALMModel
import Foundation

/// `ts_real.*`: the batch-approximation sampler on real head samples, with the selection draws
/// from `manifest.json` (`ts_real.rows[b].call.u`); with the full decode, then with lazy decoding
/// (checks named "… [lazy decoding]": same selection, pool entries prefixes of the golden chunks).
enum SamplerChecks {
    static func realPool(_ model: CALMModel, keys: [String], _ ctx: GoldenContext) {
        do {
            let hidden = try ctx.floats("ts_real.hidden")
            let uniform = try ctx.floats("ts_real.uniform")
            let shape = ctx.shape("ts_real.uniform")
            guard shape.count == 3 else { ctx.fail("ts_real.uniform", "expected shape (B, N, noise), got \(shape)"); return }
            let (batch, samples, eps) = (shape[0], shape[1], shape[2])
            let info = ctx.manifest.group(ctx.manifestName, "ts_real")
            let temperature = info?["temperature"] as? Double ?? 0.5
            let rowsInfo = info?["rows"] as? [[String: Any]] ?? []
            guard rowsInfo.count == batch else {
                ctx.fail("ts_real.selected", "manifest.json lacks ts_real.rows[b].call.u for \(batch) rows")
                return
            }
            func recorded() -> [ScriptedRandomness] {
                (0..<batch).map { b in
                    let u = (rowsInfo[b]["call"] as? [String: Any])?["u"] as? Double
                    return ScriptedRandomness(floats: Array(uniform[(b * samples * eps)..<((b + 1) * samples * eps)]),
                                              doubles: u.map { [$0] } ?? [])
                }
            }
            let randomness = recorded()
            let selectors = try (0..<batch).map { _ in try Sampler.batchApproximation(samples: samples).makeSelector(temperature: temperature) }
            let draws = try model.sampleChunks(hidden: hidden, selectors: selectors, randomness: randomness, decoding: .full)
            var checked: Set<String> = ["ts_real.hidden", "ts_real.uniform"]
            if ctx.has("ts_real.noise") { ctx.check("ts_real.noise", floats: uniform.map { $0 - 0.5 }); checked.insert("ts_real.noise") }
            if ctx.has("ts_real.pool_tokens") {
                ctx.check("ts_real.pool_tokens", ints: draws.flatMap { $0.pool.flatMap { $0.tokens.map(Int.init) } })
                checked.insert("ts_real.pool_tokens")
            }
            if ctx.has("ts_real.selected") {
                ctx.check("ts_real.selected", ints: draws.flatMap { $0.chunk.map(Int.init) })
                checked.insert("ts_real.selected")
            }
            // Candidates and weights against the recorded random.choices call.
            for (b, row) in rowsInfo.enumerated() {
                guard let call = row["call"] as? [String: Any], let selection = draws[b].selection else { continue }
                let population = (call["population"] as? [[Int]]) ?? []
                let weights = (call["weights"] as? [Double]) ?? (call["weights"] as? [Int])?.map(Double.init) ?? []
                let index = call["index"] as? Int ?? -1
                let ok = selection.candidates.map { $0.map(Int.init) } == population && selection.weights == weights && selection.index == index
                ctx.emit(ConformanceCheck(file: ctx.file, name: "ts_real.rows[\(b)] candidates/weights/index", passed: ok,
                                          detail: ok ? "exact (\(population.count) candidates, level \(selection.level))"
                                                     : "ours \(selection.weights) index \(selection.index), reference \(weights) index \(index)"))
            }
            ctx.reportUnchecked(keys, checked: checked)

            // Lazy decoding: the same selections from the same recorded values.
            let tag = " [lazy decoding]"
            let lazyRandomness = recorded()
            let lazy = try model.sampleChunks(hidden: hidden, selectors: selectors, randomness: lazyRandomness, decoding: .lazy)
            if ctx.has("ts_real.selected") { ctx.check("ts_real.selected", ints: lazy.flatMap { $0.chunk.map(Int.init) }, as: "ts_real.selected" + tag) }
            if ctx.has("ts_real.pool_tokens") {
                let r = LazyPoolCheck.compare(lazy.map(\.pool), golden: try ctx.ints("ts_real.pool_tokens"), chunkSize: model.patchSize)
                ctx.emit(ConformanceCheck(file: ctx.file, name: "ts_real.pool_tokens" + tag, passed: r.passed, detail: r.detail))
            }
            let sameSelections = lazy.count == draws.count && zip(lazy, draws).allSatisfy { l, f in
                l.selection?.level == f.selection?.level && l.selection?.weights == f.selection?.weights && l.selection?.index == f.selection?.index
            }
            let sameDraws = zip(randomness, lazyRandomness).allSatisfy { $0.consumed == $1.consumed }
            ctx.emit(ConformanceCheck(file: ctx.file, name: "ts_real candidates/weights/index" + tag, passed: sameSelections && sameDraws,
                                      detail: sameSelections && sameDraws ? "the full decode's level, weights and index, the same recorded values consumed"
                                                                          : "selections or consumed values differ from the full decode's"))
        } catch { ctx.fail("ts_real.*", "\(error)") }
    }
}
