import CALMModel
import CALMTensor
import CALMTokenizer
import Foundation

/// `calm generate`: streams a generation to stdout as chunks are produced.
enum GenerateCommand {
    static let help = """
    usage: calm generate --model DIR [--prompt TEXT | --prompt-ids 1,2,3] [options]

      --model DIR          model folder (config.json + weights)
      --prompt TEXT        prompt text (needs a tokenizer in the model folder or --tokenizer)
      --prompt-ids LIST    prompt as comma-separated token ids
      --tokenizer DIR      tokenizer folder (tokenizer.json, or tokenizer.model + tokenizer_config.json)
      --max-tokens N       most tokens to generate (default 64)
      --temperature T      CALM: in (0, 1]; T < 1 uses the batch approximation, so T = 1/n (default 0.5).
                           Llama (LlamaForCausalLM folders): any T ≥ 0, softmax(logits / T); 0 is greedy
      --samples N          head samples per step for T < 1 (default 200)
      --seed S             random seed (default: random)
      --weights-dtype D    store weights as f32, f16 or bf16 in memory (default: as in the file)
      --ids                print token ids instead of text
      --stats              print a JSON line of statistics on stderr at the end
    """

    static func run(_ raw: [String]) throws {
        if raw.contains("--help") || raw.contains("-h") { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: ["stats", "ids"])
        let modelDir = URL(fileURLWithPath: try a.required("model"))
        let promptText = a.string("prompt")
        let promptIDsText = a.string("prompt-ids")
        let tokenizerDir = a.string("tokenizer").map { URL(fileURLWithPath: $0) }
        var parameters = GenerationParameters(maxTokens: 64)
        if let v = try a.int("max-tokens") { parameters.maxTokens = v }
        if let v = try a.double("temperature") { parameters.temperature = v }
        if let v = try a.int("samples") { parameters.samples = v }
        if let v = a.string("seed") {
            guard let s = UInt64(v) else { throw UsageError("option --seed: '\(v)' is not a non-negative integer") }
            parameters.seed = s
        }
        let dtypeName = a.string("weights-dtype")
        let stats = a.flag("stats")
        let printIDs = a.flag("ids")
        try a.finish()
        if promptText != nil && promptIDsText != nil { throw UsageError("give either --prompt or --prompt-ids, not both") }
        guard promptText != nil || promptIDsText != nil else { throw UsageError("give a prompt with --prompt or --prompt-ids") }
        if try ModelLoader.kind(directory: modelDir) == .llama {
            // Discrete Llama baseline: ordinary temperature sampling over the softmax.
            return try GenerateLlama.run(modelDir: modelDir, promptText: promptText, promptIDsText: promptIDsText,
                                         tokenizerDir: tokenizerDir, parameters: parameters, dtypeName: dtypeName,
                                         printIDs: printIDs, stats: stats)
        }
        _ = try parameters.samplingMethod()

        var options = LoadOptions()
        if let dtypeName {
            guard let d = DType(userName: dtypeName) else { throw UsageError("option --weights-dtype: '\(dtypeName)' is not f32, f16 or bf16") }
            options.weightDType = d
        }
        let model = try CALMModel.load(directory: modelDir, options: options)
        let tokenizer = try loadTokenizer(explicit: tokenizerDir, model: modelDir, required: promptText != nil && promptIDsText == nil)

        let promptIDs: [Int]
        if let promptIDsText {
            promptIDs = try promptIDsText.split(separator: ",").map { part in
                guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw UsageError("option --prompt-ids: '\(part)' is not an integer")
                }
                return id
            }
        } else {
            promptIDs = tokenizer!.encode(promptText!, addBOS: true, allowSpecialTokens: true)
        }

        var detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0) }
        let result = try model.generate(promptIDs: promptIDs, parameters: parameters) { chunk in
            if printIDs || detokenizer == nil {
                writeStdout(chunk.map(String.init).joined(separator: " ") + (chunk.isEmpty ? "" : " "))
            } else {
                writeStdout(detokenizer!.append(chunk))
            }
            return true
        }
        if let tail = detokenizer?.finish(), !printIDs { writeStdout(tail) }
        writeStdout("\n")
        if stats {
            let generated = result.tokens.count
            let decodeSeconds = max(result.seconds - result.timeToFirstChunk, 1e-9)
            let decodeRate = result.steps > 1 ? Double(generated - min(generated, model.patchSize)) / decodeSeconds : 0
            let json: [String: Any] = [
                "prompt_tokens": result.promptTokens,
                "generated_tokens": generated,
                "steps": result.steps,
                "time_to_first_chunk_s": result.timeToFirstChunk,
                "decode_tokens_per_s": decodeRate,
                "seconds": result.seconds,
                "stop_reason": result.stopReason.rawValue,
            ]
            let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }

    /// The tokenizer from --tokenizer, else from the model folder; nil if none and not required.
    static func loadTokenizer(explicit: URL?, model: URL, required: Bool) throws -> (any TextTokenizer)? {
        if let explicit { return try TokenizerLoader.load(directory: explicit) }
        let fm = FileManager.default
        if fm.fileExists(atPath: model.appendingPathComponent("tokenizer.json").path)
            || fm.fileExists(atPath: model.appendingPathComponent("tokenizer.model").path) {
            return try TokenizerLoader.load(directory: model)
        }
        if required { throw UsageError("no tokenizer in \(model.path): pass --tokenizer DIR or use --prompt-ids") }
        return nil
    }
}
