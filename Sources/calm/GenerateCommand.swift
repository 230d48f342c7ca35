import CALMDefaultModel
import CALMEngine
import CALMModel
import CALMTensor
import CALMTokenizer
import Foundation

/// `calm generate`: streams a generation to stdout as chunks are produced (through the engine).
enum GenerateCommand {
    static let help = """
    usage: calm generate [PROMPT] [--model DIR] [--prompt TEXT | --prompt-ids 1,2,3] [options]

      PROMPT               prompt text (same as --prompt TEXT)
      --model DIR          model folder (config.json + weights; default: the built-in model, see README)
      --prompt TEXT        prompt text (needs a tokenizer in the model folder or --tokenizer)
      --prompt-ids LIST    prompt as comma-separated token ids
      --tokenizer DIR      tokenizer folder (tokenizer.json, or tokenizer.model + tokenizer_config.json)
      --max-tokens N       most tokens to generate (default 64)
      --temperature T      CALM: in (0, 1] (default 0.5; a fraction such as 1/3 is accepted). Llama (LlamaForCausalLM folders): any T ≥ 0,
                           softmax(logits / T); 0 is greedy
      --sampler NAME       batch (the reference's batch approximation, T = 1/n; default),
                           exact (the paper's Algorithm 1, any T), or single (T = 1)
      --samples N          head samples per step for the batch sampler (default 200)
      --max-draws N        most draws per step for the exact sampler (default 10000)
      --seed S             random seed (default: random)
      --stop TEXT          stop before this text (may be repeated)
      --weights-dtype D    hold weights as f32, f16 or bf16 in memory (default: as in the file)
      --ae-path DIR        autoencoder folder, overriding the config's ae_path (used only when the
                           checkpoint has no ae_model.* weights)
      --ids                print token ids instead of text
      --stats              print a JSON line of statistics on stderr at the end
    """

    static func run(_ raw: [String]) async throws {
        if raw.contains("--help") || raw.contains("-h") { writeStdout(help + "\n"); return }
        let (stops, rest) = extractRepeated("stop", from: raw)
        var a = try Arguments(rest, switches: ["stats", "ids"])
        let modelDir = try a.string("model").map { URL(fileURLWithPath: $0) } ?? DefaultModel.directory()
        if a.positional.count > 1 {
            throw UsageError("one prompt at most: quote it (\"\(a.positional.joined(separator: " "))\")")
        }
        if a.positional.count == 1, a.string("prompt") != nil { throw UsageError("give the prompt once: as PROMPT or as --prompt") }
        let promptText = a.string("prompt") ?? a.positional.first
        let promptIDsText = a.string("prompt-ids")
        let tokenizerDir = a.string("tokenizer").map { URL(fileURLWithPath: $0) }
        var parameters = SamplingParameters(maxTokens: 64, stopSequences: stops)
        if let v = try a.int("max-tokens") { parameters.maxTokens = v }
        if let v = try a.fraction("temperature") { parameters.temperature = v }
        let samples = try a.int("samples") ?? 200
        let maxDraws = try a.int("max-draws") ?? 10_000
        switch a.string("sampler") ?? "batch" {
        case "batch": parameters.sampler = .batchApproximation(samples: samples)
        case "exact": parameters.sampler = .exactRejection(maxDraws: maxDraws)
        case "single": parameters.sampler = .single
        case let other: throw UsageError("option --sampler: '\(other)' is not batch, exact or single")
        }
        if let v = a.string("seed") {
            guard let s = UInt64(v) else { throw UsageError("option --seed: '\(v)' is not a non-negative integer") }
            parameters.seed = s
        }
        let dtypeName = a.string("weights-dtype")
        let aePath = a.string("ae-path")
        let stats = a.flag("stats")
        let printIDs = a.flag("ids")
        try a.finish()
        if promptText != nil && promptIDsText != nil { throw UsageError("give either --prompt or --prompt-ids, not both") }
        guard promptText != nil || promptIDsText != nil else { throw UsageError("give a prompt with --prompt or --prompt-ids") }
        if try ModelLoader.kind(directory: modelDir) == .llama {
            // Discrete Llama baseline: ordinary temperature sampling over the softmax.
            let llamaParameters = GenerationParameters(maxTokens: parameters.maxTokens, temperature: parameters.temperature,
                                                       samples: samples, seed: parameters.seed)
            return try GenerateLlama.run(modelDir: modelDir, promptText: promptText, promptIDsText: promptIDsText,
                                         tokenizerDir: tokenizerDir, parameters: llamaParameters, dtypeName: dtypeName,
                                         printIDs: printIDs, stats: stats)
        }
        try parameters.validate()

        var options = LoadOptions()
        options.autoencoderPath = aePath.map { URL(fileURLWithPath: $0) }
        if let dtypeName {
            guard let d = DType(userName: dtypeName) else { throw UsageError("option --weights-dtype: '\(dtypeName)' is not f32, f16 or bf16") }
            options.weightDType = d
        }
        let model = try CALMModel.load(directory: modelDir, options: options)
        let tokenizer = try loadTokenizer(explicit: tokenizerDir, model: modelDir, required: promptText != nil)
        let engine = try CALMEngine(model: model, tokenizer: printIDs ? nil : tokenizer,
                                    configuration: EngineConfiguration(kvCacheBytes: 256 << 20))
        let prompt: Prompt
        if let promptIDsText {
            prompt = .tokens(try parseIDs(promptIDsText, option: "prompt-ids"))
        } else {
            prompt = .tokens(tokenizer!.encode(promptText!, addBOS: true, allowSpecialTokens: true))
        }
        var info: CompletionInfo?
        for await event in try engine.generate(prompt: prompt, parameters: parameters) {
            switch event {
            case let .chunk(c):
                if engine.tokenizer == nil {
                    writeStdout(c.tokens.map(String.init).joined(separator: " ") + (c.tokens.isEmpty ? "" : " "))
                } else {
                    writeStdout(c.text)
                }
            case let .completed(i): info = i
            }
        }
        writeStdout("\n")
        if case let .error(message)? = info?.reason { throw UsageError("generation failed: \(message)") }
        if stats, let info {
            let decodeSeconds = max(info.totalSeconds - (info.timeToFirstChunk ?? 0), 1e-9)
            let firstChunkTokens = min(info.generatedTokens, model.patchSize)
            let json: [String: Any] = [
                "prompt_tokens": info.promptTokens,
                "generated_tokens": info.generatedTokens,
                "steps": info.chunks,
                "time_to_first_chunk_s": info.timeToFirstChunk ?? 0,
                "decode_tokens_per_s": info.chunks > 1 ? Double(info.generatedTokens - firstChunkTokens) / decodeSeconds : 0,
                "seconds": info.totalSeconds,
                "stop_reason": info.reason.description,
                "samples_drawn": info.sampler.samplesDrawn,
                "isa": KernelISA.active.rawValue,
            ]
            let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }

    /// The tokenizer from --tokenizer, else from the model folder; nil if none and not required.
    static func loadTokenizer(explicit: URL?, model: URL, required: Bool) throws -> (any TextTokenizer)? {
        if let found = try TokenizerLoader.discover(explicit: explicit, modelDirectory: model) { return found }
        if required { throw UsageError("no tokenizer in \(model.path): pass --tokenizer DIR or use --prompt-ids") }
        return nil
    }
}

func parseIDs(_ text: String, option: String) throws -> [Int] {
    try text.split(separator: ",").map { part in
        guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
            throw UsageError("option --\(option): '\(part)' is not an integer")
        }
        return id
    }
}

/// Pulls every `--name VALUE` out of `args` (options that may be repeated).
func extractRepeated(_ name: String, from args: [String]) -> ([String], [String]) {
    var values: [String] = [], rest: [String] = []
    var i = 0
    while i < args.count {
        if args[i] == "--\(name)", i + 1 < args.count { values.append(args[i + 1]); i += 2; continue }
        rest.append(args[i]); i += 1
    }
    return (values, rest)
}
