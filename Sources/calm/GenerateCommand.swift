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

      PROMPT               prompt text (same as --prompt TEXT; after `--` it may start with a dash)
      --prompt TEXT        prompt text (needs a tokenizer in the model folder or --tokenizer)
      --prompt-ids LIST    prompt as comma-separated token ids
    \(EngineOptions.modelHelp)
    \(EngineOptions.samplingHelp)
      --ids                print token ids instead of text
      --stats              print a JSON line of statistics on stderr at the end
                           (with --diagnostics, Token Maturation prints one JSON line per token instead of text)
    """

    static func run(_ raw: [String]) async throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        let (stops, rest) = extractRepeated("stop", from: raw)
        var a = try Arguments(rest, switches: EngineOptions.switches.union(["stats", "ids"]), values: EngineOptions.values.union(["prompt", "prompt-ids"]))
        let options = try EngineOptions(&a, stops: stops)
        if a.positional.count > 1 {
            throw UsageError("one prompt at most: quote it (\"\(a.positional.joined(separator: " "))\")")
        }
        if a.positional.count == 1, a.string("prompt") != nil { throw UsageError("give the prompt once: as PROMPT or as --prompt") }
        let promptText = a.string("prompt") ?? a.positional.first
        let promptIDsText = a.string("prompt-ids")
        let stats = a.flag("stats")
        let printIDs = a.flag("ids")
        try a.finish()
        if promptText != nil && promptIDsText != nil { throw UsageError("give either --prompt or --prompt-ids, not both") }
        guard promptText != nil || promptIDsText != nil else { throw UsageError("give a prompt with --prompt or --prompt-ids") }
        let engine = try options.engine(kvCacheBytes: 256 << 20, tokenizerRequired: promptText != nil || !stops.isEmpty)
        let prompt: Prompt = try promptIDsText.map { .tokens(try parseIDs($0, option: "prompt-ids")) } ?? .text(promptText ?? "")
        var info: CompletionInfo?
        var logprobSum = 0.0
        let stream: GenerationStream
        stream = try engine.generate(prompt: prompt, parameters: options.parameters)
        for await event in stream {
            switch event {
            case let .chunk(c):
                logprobSum += c.logprobs?.reduce(0, +) ?? 0
                if let diagnostics = c.diagnostics {
                    for d in diagnostics { writeStdout(try Self.diagnosticsLine(d, tokenizer: engine.tokenizer) + "\n") }
                } else if printIDs || engine.tokenizer == nil {
                    writeStdout(c.tokens.map(String.init).joined(separator: " ") + (c.tokens.isEmpty ? "" : " "))
                } else {
                    writeStdout(c.text)
                }
            case let .completed(i): info = i
            }
        }
        if options.parameters.maturation?.diagnostics != true { writeStdout("\n") }
        if case let .error(message)? = info?.reason { throw UsageError("generation failed: \(message)") }
        if let info, info.sampler.truncatedSteps > 0 {
            printError("warning: the exact sampler hit --max-draws at \(info.sampler.truncatedSteps) of \(info.chunks) steps; those chunks are not exact samples at T = \(options.parameters.temperature)")
        }
        if stats, let info {
            var json: [String: Any] = [
                "family": engine.family.name,
                "prompt_tokens": info.promptTokens,
                "generated_tokens": info.generatedTokens,
                "steps": info.chunks,
                "time_to_first_chunk_s": info.timeToFirstChunk ?? 0,
                "decode_tokens_per_s": info.tokensPerSecond,
                "seconds": info.totalSeconds,
                "stop_reason": info.reason.description,
                "samples_drawn": info.sampler.samplesDrawn,
                "argmax_rows": info.sampler.argmaxRows,
                "truncated_steps": info.sampler.truncatedSteps,
                "isa": KernelISA.active.rawValue,
            ]
            if options.parameters.logprobs { json["logprob_sum"] = logprobSum }
            // the batch approximation's steps by cascade level: all at level 1 means T acted as T = 1
            if !info.sampler.cascadeLevels.isEmpty {
                json["cascade_levels"] = Dictionary(uniqueKeysWithValues: info.sampler.cascadeLevels.map { (String($0.key), $0.value) })
            }
            let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }

    /// One committed token's maturation statistics as a JSON line (spec §2.10).
    static func diagnosticsLine(_ d: TokenMaturationDiagnostics, tokenizer: (any TextTokenizer)?) throws -> String {
        var o: [String: Any] = ["token": d.token, "entropy": d.entropy, "top_k": d.topK, "cosine": Double(d.cosine),
                                "gap": Double(d.gap), "updates": d.updates, "lock_step": d.lockStep,
                                "unique_candidates": d.uniqueCandidates]
        if let tokenizer { o["text"] = tokenizer.decode([d.token]) }
        return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
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
