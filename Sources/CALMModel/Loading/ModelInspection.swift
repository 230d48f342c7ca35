import CALMTensor
import Foundation

/// A summary of a model folder without loading its weights: config, parameter counts by part,
/// dtypes and size on disk. Reads CALM, autoencoder, Llama (`LlamaForCausalLM`), GPT-2
/// (`GPT2LMHeadModel`) and Token Maturation folders.
public struct ModelInspection: Sendable {
    public var path: String
    public var kind: ModelKind
    public var config: [String: String]
    /// Unique parameters per part (aliases such as `generative_head.*` counted once): CALM
    /// folders have `backbone`, `head`, `chunk_embedding`, `token_embedding` and `autoencoder`;
    /// Llama folders `token_embedding`, `backbone` and `lm_head`; GPT-2 folders `token_embedding`,
    /// `position_embedding`, `backbone` (and `lm_head` when untied); Token Maturation folders
    /// `token_embedding`, `backbone` and `token_maturation`.
    public var parameters: [String: Int]
    /// Tensors per dtype.
    public var dtypes: [String: Int]
    public var bytesOnDisk: Int
    public var weightFiles: [String]

    public init(directory: URL) throws {
        let (_, json, path) = try ModelFolder.configData(directory)
        self.path = directory.path
        kind = try ModelFolder.kind(of: json, path: path)
        config = json.mapValues { "\($0)" }
        let source = try ModelFolder.openWeights(directory)
        var params: [String: Int] = [:]
        var dtypes: [String: Int] = [:]
        for name in source.tensorNames {
            guard let info = source.info(name) else { continue }
            // Aliases hold the same tensor twice; count one name of each pair.
            if name.hasPrefix("generative_head."), source.info("mlp_generator." + name.dropFirst("generative_head.".count)) != nil { continue }
            if name.hasSuffix("decoder.lm_head_weight"), source.info(name.replacingOccurrences(of: "decoder.lm_head_weight", with: "encoder.embed_tokens.weight")) != nil { continue }
            let part: String
            if kind == .tokenMaturation {
                // the backbone's Hugging Face names (Llama or GPT-2), then the tm.* modules
                if name.hasPrefix("tm.") { part = "token_maturation" }
                else if name.hasPrefix("model.embed_tokens") || name.hasPrefix("transformer.wte") { part = "token_embedding" }
                else if name.hasPrefix("model.") || name.hasPrefix("transformer.") { part = "backbone" }
                else { part = "other" }
            }
            else if kind == .gpt2 {
                // transformers names, with or without `transformer.`: wte, wpe, h.* and ln_f, lm_head.
                let stem = name.hasPrefix("transformer.") ? String(name.dropFirst("transformer.".count)) : name
                // The causal-mask buffers of Hub checkpoints are not parameters.
                if stem.hasSuffix(".attn.bias") || stem.hasSuffix(".attn.masked_bias") { continue }
                if stem.hasPrefix("wte.") { part = "token_embedding" }
                else if stem.hasPrefix("wpe.") { part = "position_embedding" }
                else if stem.hasPrefix("h.") || stem.hasPrefix("ln_f.") { part = "backbone" }
                else if stem.hasPrefix("lm_head.") { part = "lm_head" }
                else { part = "other" }
            }
            else if kind == .llama {
                // Hugging Face names: model.embed_tokens, model.layers.* and model.norm, lm_head.
                if name.hasPrefix("model.embed_tokens") { part = "token_embedding" }
                else if name.hasPrefix("model.") { part = "backbone" }
                else if name.hasPrefix("lm_head.") { part = "lm_head" }
                else { part = "other" }
            }
            else if name.hasPrefix("ae_model.") || kind == .autoencoder { part = "autoencoder" }
            else if name.hasPrefix("transformer.embed_tokens") { part = "token_embedding" }
            else if name.hasPrefix("transformer.") { part = "backbone" }
            else if name.hasPrefix("mlp_generator.") || name.hasPrefix("generative_head.") { part = "head" }
            else if name.hasPrefix("embed_proj.") { part = "chunk_embedding" }
            else { part = "other" }
            params[part, default: 0] += info.shape.reduce(1, *)
            dtypes[info.dtype.rawValue, default: 0] += 1
        }
        if kind == .calm, params["autoencoder"] == nil,
           let aeDir = CALMModel.resolveAutoencoderDirectory(config: try ModelFolder.decode(CALMConfig.self, from: try Data(contentsOf: directory.appendingPathComponent("config.json")), path: path), directory: directory, override: nil),
           let ae = try? ModelInspection(directory: aeDir) {
            params["autoencoder"] = ae.parameters.values.reduce(0, +)
        }
        parameters = params
        self.dtypes = dtypes
        let files = (try? FileManager.default.subpathsOfDirectory(atPath: directory.path)) ?? []
        weightFiles = files.filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".bin") }.sorted()
        bytesOnDisk = files.reduce(0) { total, f in
            let attrs = try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(f).path)
            return total + ((attrs?[.type] as? FileAttributeType) == .typeRegular ? (attrs?[.size] as? Int ?? 0) : 0)
        }
    }

    /// JSON-ready form.
    public var dictionary: [String: Any] {
        ["path": path, "kind": kind.rawValue, "config": config, "parameters": parameters,
         "total_parameters": parameters.values.reduce(0, +), "dtypes": dtypes, "bytes_on_disk": bytesOnDisk,
         "weight_files": weightFiles]
    }

    /// Human-readable form.
    public var text: String {
        var s = "\(path)  (\(kind.displayName))\n\nconfig:\n"
        for key in config.keys.sorted() { s += "  \(key): \(config[key]!)\n" }
        s += "\nparameters:\n"
        for key in parameters.keys.sorted() { s += "  \(key): \(Self.format(parameters[key]!))\n" }
        s += "  total: \(Self.format(parameters.values.reduce(0, +)))\n"
        s += "\ndtypes: " + dtypes.keys.sorted().map { "\($0) × \(dtypes[$0]!)" }.joined(separator: ", ") + "\n"
        s += "files: " + weightFiles.joined(separator: ", ") + "\n"
        s += String(format: "size on disk: %.1f MB\n", Double(bytesOnDisk) / 1e6)
        return s
    }

    static func format(_ n: Int) -> String {
        n >= 1_000_000 ? String(format: "%.1f M (%d)", Double(n) / 1e6, n) : "\(n)"
    }
}
