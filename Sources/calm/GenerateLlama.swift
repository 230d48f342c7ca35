import CALMModel
import CALMTensor
import CALMTokenizer
import Foundation

/// `calm generate` for a discrete Llama folder: ordinary temperature sampling, tokens streamed.
enum GenerateLlama {
    static func run(modelDir: URL, promptText: String?, promptIDsText: String?, tokenizerDir: URL?,
                    parameters: GenerationParameters, dtypeName: String?, printIDs: Bool, stats: Bool) throws {
        guard parameters.temperature.isFinite, parameters.temperature >= 0 else {
            throw UsageError("option --temperature: must be ≥ 0 for a Llama model")
        }
        var options = LoadOptions()
        if let dtypeName {
            guard let d = DType(userName: dtypeName) else { throw UsageError("option --weights-dtype: '\(dtypeName)' is not f32, f16 or bf16") }
            options.weightDType = d
        }
        let model = try LlamaCausalLM.load(directory: modelDir, options: options)
        let tokenizer = try GenerateCommand.loadTokenizer(explicit: tokenizerDir, model: modelDir, required: promptText != nil)
        let promptIDs: [Int]
        if let promptIDsText {
            promptIDs = try promptIDsText.split(separator: ",").map { part in
                guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else { throw UsageError("option --prompt-ids: '\(part)' is not an integer") }
                return id
            }
        } else {
            promptIDs = tokenizer!.encode(promptText!, addBOS: true, allowSpecialTokens: true)
        }
        var detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0) }
        let result = try model.generate(promptIDs: promptIDs, maxTokens: parameters.maxTokens, temperature: parameters.temperature,
                                        seed: parameters.seed, stopAtEndToken: parameters.stopAtEndToken) { token in
            if printIDs || detokenizer == nil { writeStdout("\(token) ") } else { writeStdout(detokenizer!.append([token])) }
            return true
        }
        if let tail = detokenizer?.finish(), !printIDs { writeStdout(tail) }
        writeStdout("\n")
        if stats {
            let decodeSeconds = max(result.seconds - result.timeToFirstToken, 1e-9)
            let json: [String: Any] = [
                "prompt_tokens": result.promptTokens, "generated_tokens": result.tokens.count,
                "time_to_first_token_s": result.timeToFirstToken,
                "decode_tokens_per_s": result.tokens.count > 1 ? Double(result.tokens.count - 1) / decodeSeconds : 0,
                "seconds": result.seconds, "stop_reason": result.stopReason.rawValue,
            ]
            let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }
}
