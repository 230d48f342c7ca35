import CALMModel
import Foundation

/// `bb.*`: chunk embedding and backbone over a batch of two prompts, plus rotary tables; also the
/// KV-cache incremental path and, where the folder has one, the `pytorch_model.bin` copy.
enum BackboneChecks {
    static func run(_ model: CALMModel, keys: [String], _ ctx: GoldenContext, folder: URL) {
        do {
            let ids = try ctx.ints("bb.input_ids")
            let shape = ctx.shape("bb.input_ids")
            let batch = shape.first ?? 1
            let perRow = ids.count / max(batch, 1)
            let rows = (0..<batch).map { Array(ids[($0 * perRow)..<(($0 + 1) * perRow)]) }
            var recorded: [String: [Float]] = [:]
            let caches = rows.map { _ in model.makeCache() }
            let hidden = try model.forward(chunks: rows, caches: caches) { recorded[$0] = $1 }
            var checked: Set<String> = ["bb.input_ids"]
            for key in keys {
                let name = String(key.dropFirst("bb.".count))
                if let ours = recorded[name] { ctx.check(key, floats: ours); checked.insert(key) }
            }
            for (key, isCos) in [("bb.rope_cos", true), ("bb.rope_sin", false)] where ctx.has(key) {
                let positions = ctx.shape(key).first ?? 0
                let ours = (0..<positions).flatMap { p -> [Float] in
                    let t = model.backbone.ropeTables(position: p)
                    return isCos ? t.cos : t.sin
                }
                ctx.check(key, floats: ours)
                checked.insert(key)
            }
            ctx.reportUnchecked(keys, checked: checked)

            // Incremental: feeding row 0 one chunk at a time through the cache gives the same states.
            if ctx.has("bb.last_hidden_state") {
                let k = model.patchSize
                let cache = model.makeCache()
                var incremental: [Float] = []
                for c in 0..<(perRow / k) {
                    incremental += try model.forward(chunks: [Array(rows[0][(c * k)..<((c + 1) * k)])], caches: [cache])
                }
                let reference = Array(try ctx.floats("bb.last_hidden_state").prefix(incremental.count))
                let r = Compare.floats(incremental, reference)
                ctx.emit(ConformanceCheck(file: ctx.file, name: "bb.last_hidden_state (KV-cache incremental, row 0)", passed: r.passed, detail: r.detail))
            }
            // The authors' format, where present, must give the same numbers.
            let bin = folder.appendingPathComponent("pytorch_model.bin")
            if FileManager.default.fileExists(atPath: bin.path),
               FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) {
                let binOnly = try BinOnlyFolder(source: folder)
                let other = try CALMModel.load(directory: binOnly.url)
                let h2 = try other.forward(chunks: rows, caches: rows.map { _ in other.makeCache() })
                let r = Compare.floats(h2, try ctx.floats("bb.last_hidden_state"))
                let same = h2 == hidden
                ctx.emit(ConformanceCheck(file: ctx.file, name: "bb.last_hidden_state (loaded from pytorch_model.bin)",
                                          passed: r.passed && same, detail: r.detail + (same ? ", bit-identical to safetensors" : ", differs from safetensors")))
            }
        } catch { ctx.fail("bb.*", "\(error)") }
    }
}

/// A temporary folder exposing only `config.json` and `pytorch_model.bin` of a model folder
/// (symlinks), so the loader must take the `.bin` path.
struct BinOnlyFolder {
    let url: URL
    private let cleanup: Cleanup
    /// Deletes the temporary folder when the last `BinOnlyFolder` copy goes away.
    final class Cleanup: Sendable {
        let url: URL
        init(_ url: URL) { self.url = url }
        deinit { try? FileManager.default.removeItem(at: url) }
    }

    init(source: URL) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("calm-bin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        cleanup = Cleanup(url)
        for name in ["config.json", "pytorch_model.bin"] {
            try FileManager.default.createSymbolicLink(at: url.appendingPathComponent(name),
                                                       withDestinationURL: source.appendingPathComponent(name))
        }
        // ae_path is relative to the original folder; the checkpoint embeds the autoencoder anyway.
    }
}
