import CALMModel
import Foundation

/// GPT-2 goldens (`golden_gpt2_*.safetensors`, written by transformers' `GPT2LMHeadModel`):
/// `ids.*` (hidden states of every layer and logits for a batch of ids), `embeds.*`
/// (`inputs_embeds` at positions that do not start at 0) and `cache.*` (a prefix, then a step on its
/// KV cache; also run with scratch rows, `persist` < rows). Every shape comes from the golden
/// tensors and the folder's config. Each folder the golden applies to (every layout of the same
/// weights) is checked on its own; check names end in " (<folder>)".
enum GPT2Checks {
    static func run(folders: [URL], groups: [String: [String]], _ ctx: GoldenContext) {
        let known: Set<String> = ["ids", "embeds", "cache"]
        for group in groups.keys.sorted() where !known.contains(group) {
            ctx.unknownGroup(group, keys: groups[group] ?? [])
        }
        for folder in folders {
            let name = folder.lastPathComponent
            let local = GoldenContext(file: ctx.file, golden: ctx.golden, manifestName: ctx.manifestName, manifest: ctx.manifest) { check in
                var c = check
                c.name += " (\(name))"
                ctx.emit(c)
            }
            let model: GPT2CausalLM
            do { model = try GPT2CausalLM.load(directory: folder) } catch {
                local.fail("load", "\(error)")
                continue
            }
            if let keys = groups["ids"] { ids(model, keys: keys.sorted(), local) }
            if let keys = groups["embeds"] { embeds(model, keys: keys.sorted(), local) }
            if let keys = groups["cache"] { cache(model, keys: keys.sorted(), local) }
        }
    }

    /// `ids.input_ids` (B, T) as B rows.
    static func inputRows(_ ctx: GoldenContext) throws -> [[Int]] {
        let shape = ctx.shape("ids.input_ids")
        guard shape.count == 2 else { throw GoldenShapeError(detail: "ids.input_ids has shape \(shape), expected (batch, length)") }
        let ids = try ctx.ints("ids.input_ids")
        return (0..<shape[0]).map { Array(ids[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
    }

    /// The batch's hidden states after every layer and its logits.
    static func ids(_ model: GPT2CausalLM, keys: [String], _ ctx: GoldenContext) {
        var checked: Set<String> = ["ids.input_ids"]
        do {
            let rows = try inputRows(ctx)
            let caches = rows.map { _ in model.makeCache() }
            var recorded: [String: [Float]] = [:]
            let hidden = try model.forward(tokens: rows, caches: caches) { recorded[$0] = $1 }
            let layers = model.backbone.layerCount
            if ctx.has("ids.hidden_states") {
                checked.insert("ids.hidden_states")
                // transformers' output_hidden_states: the embedding sum, every block's output, and
                // the last block's output with ln_f applied.
                let shape = ctx.shape("ids.hidden_states")
                let reference = try ctx.floats("ids.hidden_states")
                if shape.first != layers + 1 {
                    ctx.fail("ids.hidden_states", "shape \(shape): \(shape.first ?? 0) entries, the model has \(layers) layers (expected \(layers + 1))")
                } else {
                    let per = reference.count / (layers + 1)
                    for i in 0...layers {
                        let ours = i == 0 ? recorded["layer0_input"] : i == layers ? hidden : recorded["layer\(i - 1)_output"]
                        let r = Compare.floats(ours ?? [], Array(reference[(i * per)..<((i + 1) * per)]))
                        let what = i == 0 ? "embedding sum" : i == layers ? "block \(i) output, ln_f applied" : "block \(i) output"
                        ctx.emit(ConformanceCheck(file: ctx.file, name: "ids.hidden_states[\(i)]", passed: r.passed, detail: "\(what), \(r.detail)"))
                    }
                }
            }
            if ctx.has("ids.logits") {
                checked.insert("ids.logits")
                ctx.check("ids.logits", floats: model.logits(hidden, rows: rows.reduce(0) { $0 + $1.count }))
            }
            for c in caches { c.release() }
        } catch { ctx.fail("ids.*", "\(error)") }
        ctx.reportUnchecked(keys, checked: checked)
    }

    /// Vectors fed instead of ids, at absolute positions from `embeds.position_ids`.
    static func embeds(_ model: GPT2CausalLM, keys: [String], _ ctx: GoldenContext) {
        var checked: Set<String> = ["embeds.inputs_embeds", "embeds.position_ids"]
        do {
            let shape = ctx.shape("embeds.position_ids")
            guard shape.count == 2 else { throw GoldenShapeError(detail: "embeds.position_ids has shape \(shape), expected (batch, length)") }
            let (batch, length) = (shape[0], shape[1])
            let positions = try ctx.ints("embeds.position_ids")
            let inputs = try ctx.floats("embeds.inputs_embeds")
            let caches = (0..<batch).map { _ in model.makeCache() }
            defer { for c in caches { c.release() } }
            var slices: [BackboneSlice] = []
            for b in 0..<batch {
                let row = Array(positions[(b * length)..<((b + 1) * length)])
                // A slice's rows sit at consecutive positions from its first one.
                guard row.enumerated().allSatisfy({ $0.element == row[0] + $0.offset }) else {
                    throw GoldenShapeError(detail: "embeds.position_ids row \(b) is not consecutive (\(row)); the backbone takes consecutive positions")
                }
                slices.append(BackboneSlice(cache: caches[b], rows: length, firstPosition: row[0]))
            }
            let hidden = try model.forward(inputsEmbeds: inputs, slices: slices)
            if ctx.has("embeds.last_hidden") {
                checked.insert("embeds.last_hidden")
                ctx.check("embeds.last_hidden", floats: hidden)
            }
        } catch { ctx.fail("embeds.*", "\(error)") }
        ctx.reportUnchecked(keys, checked: checked)
    }

    /// A prefix, then the next rows on its KV cache; then the same step with scratch rows.
    static func cache(_ model: GPT2CausalLM, keys: [String], _ ctx: GoldenContext) {
        var checked: Set<String> = []
        do {
            let rows = try inputRows(ctx)
            let prefixShape = ctx.shape("cache.prefix_last_hidden"), stepShape = ctx.shape("cache.step_last_hidden")
            guard prefixShape.count == 3, stepShape.count == 3, prefixShape[0] == rows.count, stepShape[0] == rows.count,
                  prefixShape[1] + stepShape[1] <= rows.first?.count ?? 0 else {
                throw GoldenShapeError(detail: "cache.prefix_last_hidden \(prefixShape) and cache.step_last_hidden \(stepShape) do not fit ids.input_ids (\(rows.count) × \(rows.first?.count ?? 0))")
            }
            checked = ["cache.prefix_last_hidden", "cache.step_last_hidden"]
            let p = prefixShape[1], s = stepShape[1], e = model.config.nEmbd
            let prefix = rows.map { Array($0[0..<p]) }, step = rows.map { Array($0[p..<(p + s)]) }
            let reference = try ctx.floats("cache.step_last_hidden")

            let caches = rows.map { _ in model.makeCache(blockPositions: 4) }
            defer { for c in caches { c.release() } }
            ctx.check("cache.prefix_last_hidden", floats: try model.forward(tokens: prefix, caches: caches))
            ctx.check("cache.step_last_hidden", floats: try model.forward(tokens: step, caches: caches))

            // Scratch rows: the step again on a fresh prefix cache, keeping only its first row.
            let scratch = rows.map { _ in model.makeCache(blockPositions: 4) }
            defer { for c in scratch { c.release() } }
            _ = try model.forward(tokens: prefix, caches: scratch)
            let kept = try model.forward(inputsEmbeds: model.backbone.wte.lookup(step.flatMap { $0 }),
                                         slices: scratch.map { BackboneSlice(cache: $0, rows: s, persist: 1) })
            var r = Compare.floats(kept, reference)
            let counts = scratch.map(\.count)
            ctx.emit(ConformanceCheck(file: ctx.file, name: "cache.step_last_hidden (\(s) rows, persist 1)",
                                      passed: r.passed && counts.allSatisfy { $0 == p + 1 },
                                      detail: "\(r.detail), cache.count \(p) → \(counts)"))
            // A pass of other vectors that keeps nothing, then the rest of the step: the scratch
            // slots are overwritten, never read.
            let other = model.backbone.wte.lookup(step.flatMap { $0.map { ($0 * 7 + 3) % model.vocabSize } })
            _ = try model.forward(inputsEmbeds: other, slices: scratch.map { BackboneSlice(cache: $0, rows: s, persist: 0) })
            if s > 1 {
                let rest = try model.forward(tokens: step.map { Array($0.dropFirst()) }, caches: scratch)
                var expected: [Float] = []
                for b in 0..<rows.count {
                    let start = (b * s + 1) * e, end = (b + 1) * s * e
                    expected += reference[start..<end]
                }
                r = Compare.floats(rest, expected)
                let after = scratch.map(\.count)
                ctx.emit(ConformanceCheck(file: ctx.file, name: "cache.step_last_hidden (rows 2…\(s) after a scratch pass)",
                                          passed: r.passed && after.allSatisfy { $0 == p + s },
                                          detail: "\(r.detail), cache.count → \(after)"))
            }
        } catch { ctx.fail("cache.*", "\(error)") }
        ctx.reportUnchecked(keys, checked: checked)
    }
}

/// A golden tensor whose shape the checks cannot use.
struct GoldenShapeError: Error, CustomStringConvertible {
    let detail: String
    var description: String { detail }
}
