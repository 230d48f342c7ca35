import CALMEngine
import CALMEvaluation
import CALMModel
import Foundation

/// `calm eval-repetition`: diversity and repetition (Dist-n, Rep-n, Loop %) of generations from a
/// prompt file, run through the engine for any model family.
enum EvalRepetitionCommand {
    static let help = """
    usage: calm eval-repetition [--model DIR | --family F] (--prompts FILE | --prompt-ids-file FILE)
                                [--samples N] [--max-tokens N] [sampling options] [--json]

      Generates N continuations of every prompt through the engine (all requests in flight together,
      continuously batched; sample i of a prompt uses seed S + i, so a run is reproducible) and
      measures them over token ids, each continuation on its own (the prompt excluded; a final
      end-of-text id dropped). Definitions (Docs/Evaluation.md):
        Dist-n   distinct n-grams / n-grams of a sample, averaged over the samples with ≥ n ids
        Rep-n    1 − Dist-n: the share of a sample's n-grams that repeat an earlier one, same average
        Loop %   share of all samples with some trigram twice
      Prints Dist-1, Dist-2, Rep-2, Rep-3 and Loop % as a table, or one JSON row.

      --prompts FILE          text prompts, one a line (blank lines skipped; needs a tokenizer: the
                              model folder's or --tokenizer; beginning-of-text is prepended)
      --prompt-ids-file FILE  prompts as comma-separated token ids, one a line (no tokenizer needed)
      --samples N             continuations per prompt (default 1)
      --concurrency C         requests in flight at once (default 64)
      --dictionary FILE       also report the share of the continuations' words (decoded text) that
                              FILE (one word a line, e.g. /usr/share/dict/words) holds (Docs/Evaluation.md)
      --json                  print one JSON row: model, family, settings, prompts, samples, tokens,
                              dist_1, dist_2, rep_2, rep_3, loop_percent, seconds (+ real_word_percent,
                              words, dictionary with --dictionary)
    \(EngineOptions.modelHelp)
    \(EngineOptions.samplingHelpText(samplesOption: "head-samples"))
      (--seed S is the base seed, default 0; CALM's batch-sampler sample count is --head-samples here)
    """

    static func run(_ raw: [String]) async throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        let (stops, rest) = extractRepeated("stop", from: raw)
        var a = try Arguments(rest, switches: EngineOptions.switches.union(["json"]),
                              values: EngineOptions.valueOptions(samplesOption: "head-samples")
                                .union(["prompts", "prompt-ids-file", "samples", "concurrency", "dictionary"]))
        let options = try EngineOptions(&a, stops: stops, samplesOption: "head-samples")
        let promptsPath = a.string("prompts"), idsPath = a.string("prompt-ids-file")
        let samples = try a.int("samples") ?? 1
        let concurrency = try a.int("concurrency") ?? 64
        let json = a.flag("json")
        let dictionaryPath = a.string("dictionary")
        try a.finish()
        guard samples >= 1 else { throw UsageError("option --samples: must be at least 1, got \(samples)") }
        guard concurrency >= 1 else { throw UsageError("option --concurrency: must be at least 1, got \(concurrency)") }
        if options.parameters.maturation?.diagnostics == true {
            throw UsageError("option --diagnostics: eval-repetition reports metrics, not per-token statistics (use calm generate --diagnostics)")
        }
        let prompts: [Prompt]
        var idPrompts: [(line: Int, ids: [Int])] = []
        switch (promptsPath, idsPath) {
        case let (path?, nil): prompts = try readTextPrompts(path).map { .text($0) }
        case let (nil, path?): idPrompts = try readIDPrompts(path); prompts = idPrompts.map { .tokens($0.ids) }
        case (nil, nil): throw UsageError("give the prompts with --prompts FILE (text) or --prompt-ids-file FILE (ids)")
        case (_?, _?): throw UsageError("give either --prompts or --prompt-ids-file, not both")
        }
        let textPrompts = promptsPath != nil
        let dictionary: RealWordShare.Dictionary?
        do {
            dictionary = try dictionaryPath.map { try RealWordShare.Dictionary(contentsOf: URL(fileURLWithPath: $0)) }
        } catch {
            throw UsageError("option --dictionary: \(error)")
        }
        let engine = try options.engine(kvCacheBytes: 1 << 30, tokenizerRequired: textPrompts || !stops.isEmpty || dictionary != nil)
        let vocabulary = engine.family.vocabularySize
        for (line, ids) in idPrompts {
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocabulary }) {
                throw UsageError("option --prompt-ids-file: \(idsPath ?? "") line \(line): token id \(bad) is outside the model's vocabulary (size \(vocabulary))")
            }
        }
        let base = options.parameters
        let baseSeed = base.seed ?? 0

        let start = DispatchTime.now()
        let requests = prompts.count * samples
        func request(_ r: Int) -> (Prompt, SamplingParameters) {
            var p = base
            p.seed = baseSeed &+ UInt64(r % samples)
            return (prompts[r / samples], p)
        }
        var outputs = [[Int]](repeating: [], count: requests)
        var failures: [String] = []
        try await withThrowingTaskGroup(of: (Int, [Int], CompletionReason?).self) { group in
            var next = 0
            func launch() throws {
                let r = next
                next += 1
                let (prompt, parameters) = request(r)
                // Invalid parameters and prompts throw here, at the call, and end the command.
                let stream = try engine.generate(prompt: prompt, parameters: parameters)
                group.addTask {
                    var tokens: [Int] = [], reason: CompletionReason?
                    for await event in stream {
                        switch event {
                        case let .chunk(c): tokens += c.tokens
                        case let .completed(info): reason = info.reason
                        }
                    }
                    return (r, tokens, reason)
                }
            }
            while next < min(concurrency, requests) { try launch() }
            for try await (r, tokens, reason) in group {
                outputs[r] = tokens
                if case let .error(message)? = reason { failures.append("prompt \(r / samples + 1), sample \(r % samples): \(message)") }
                if next < requests { try launch() }
            }
        }
        if let first = failures.first {
            throw UsageError("\(failures.count) of \(requests) generations failed; first: \(first)")
        }
        let ends = engine.family.endTokenIDs
        let continuations = outputs.map { tokens in
            tokens.last.map(ends.contains) == true ? Array(tokens.dropLast()) : tokens
        }
        let metrics = RepetitionMetrics(samples: continuations)
        let realWords = dictionary.flatMap { d in engine.tokenizer.map { t in RealWordShare(texts: continuations.map(t.decode), dictionary: d) } }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9

        let model = options.builtInFamily.map { "built-in \($0)" } ?? options.modelDirectory.path
        let settings = Self.settings(base, seed: baseSeed, samples: samples, family: engine.family)
        if json {
            var row = metrics.jsonObject
            row["model"] = model
            row["model_directory"] = options.modelDirectory.path
            row["family"] = engine.family.name
            row["settings"] = settings
            row["prompts"] = prompts.count
            row["prompt_format"] = textPrompts ? "text" : "ids"
            row["seconds"] = seconds
            if let realWords, let dictionary {
                row["real_word_percent"] = realWords.percent
                row["words"] = realWords.words
                row["dictionary"] = dictionary.source
            }
            let data = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
            writeStdout(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            var text = table(metrics, model: model, family: engine.family.name, settings: settings, prompts: prompts.count,
                             samples: samples, seconds: seconds)
            if let realWords, let dictionary {
                text += String(format: "Real words %.1f%%  (%d of %d words in %@)\n", realWords.percent, realWords.realWords,
                               realWords.words, dictionary.source)
            }
            writeStdout(text)
        }
    }

    /// Text prompts, one a line; blank lines are skipped.
    static func readTextPrompts(_ path: String) throws -> [String] {
        let lines = try lines(of: path, option: "prompts")
        let prompts = lines.map(\.text).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !prompts.isEmpty else { throw UsageError("option --prompts: \(path) holds no prompt") }
        return prompts
    }

    /// Id prompts (with their line numbers), comma-separated ids one prompt a line; blank lines are
    /// skipped. Errors name the file and line.
    static func readIDPrompts(_ path: String) throws -> [(line: Int, ids: [Int])] {
        var prompts: [(line: Int, ids: [Int])] = []
        for (number, text) in try lines(of: path, option: "prompt-ids-file") {
            guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            var ids: [Int] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                guard let id = Int(trimmed) else {
                    throw UsageError("option --prompt-ids-file: \(path) line \(number): '\(trimmed)' is not a token id")
                }
                ids.append(id)
            }
            prompts.append((number, ids))
        }
        guard !prompts.isEmpty else { throw UsageError("option --prompt-ids-file: \(path) holds no prompt") }
        return prompts
    }

    /// The file's lines with their 1-based numbers (a final newline ends the last line; CR LF is
    /// accepted).
    static func lines(of path: String, option: String) throws -> [(number: Int, text: String)] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw UsageError("option --\(option): \(path) does not exist")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let text = String(data: data, encoding: .utf8) else {
            throw UsageError("option --\(option): \(path) is not UTF-8 text")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { i, line in
            (i + 1, line.hasSuffix("\r") ? String(line.dropLast()) : String(line))
        }
    }

    /// The decoding settings the row reports: what every request shares, plus its family's own.
    static func settings(_ p: SamplingParameters, seed: UInt64, samples: Int, family: any ModelFamily) -> [String: Any] {
        var s: [String: Any] = ["max_tokens": p.maxTokens, "seed": seed, "samples_per_prompt": samples,
                                "stop_at_end_token": p.stopAtEndToken]
        if !p.stopSequences.isEmpty { s["stop"] = p.stopSequences }
        if let tm = family as? TokenMaturationFamily {
            var m = p.maturation ?? TokenMaturationParameters()
            m.maxTokens = p.maxTokens
            if let r = try? tm.model.resolved(m) {
                s["tail"] = r.tailLength
                // Floats as written (0.1, not 0.10000000149011612).
                func decimal(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }
                s["cfg_scale"] = r.guidanceScale.map(decimal)
                s["alpha_max"] = r.maturityMax.map(decimal)
                s["rate"] = r.maturationRate.map(decimal)
                s["embryo"] = r.embryoScale.map(decimal)
                s["alignment"] = r.alignment?.rawValue
                for (key, value) in [("tail_noise", r.tailNoise), ("history_noise", r.historyNoise), ("target_ema", r.targetEMA),
                                     ("history_ema", r.historyEMA)] where value != 0 {
                    s[key] = decimal(value)
                }
                if r.innerIterations != 1 { s["inner_iterations"] = r.innerIterations }
                if r.renormalizeTail { s["renormalize_tail"] = true }
            }
        } else if family is CALMFamily {
            s["temperature"] = p.temperature
            s["sampler"] = p.sampler.map { "\($0)" } ?? "default"
        } else {
            s["temperature"] = p.temperature
            if let k = p.topK { s["top_k"] = k }
            if p.topP != 1 { s["top_p"] = p.topP }
            if p.minP != 0 { s["min_p"] = p.minP }
            if p.repetitionPenalty != 1 { s["repetition_penalty"] = p.repetitionPenalty }
            if p.presencePenalty != 0 { s["presence_penalty"] = p.presencePenalty }
            if p.frequencyPenalty != 0 { s["frequency_penalty"] = p.frequencyPenalty }
        }
        return s
    }

    static func table(_ m: RepetitionMetrics, model: String, family: String, settings: [String: Any], prompts: Int,
                      samples: Int, seconds: Double) -> String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "n/a" }
        let described = settings.keys.sorted().map { key -> String in
            let value = settings[key].map { v -> String in
                if let d = v as? Double { return String(format: "%g", d) }
                if let list = v as? [String] { return list.map(\.debugDescription).joined(separator: ",") }
                return "\(v)"
            } ?? ""
            return "\(key)=\(value)"
        }.joined(separator: " ")
        var s = "model      \(model) (\(family))\n"
        s += "settings   \(described)\n"
        s += "samples    \(prompts) prompts × \(samples) = \(m.samples), \(m.tokens) ids generated"
        s += m.samples > 0 ? String(format: " (%.1f per sample), %.1f s\n\n", Double(m.tokens) / Double(m.samples), seconds) : "\n\n"
        s += "metric     value\n"
        s += "Dist-1     \(f(m.dist(1)))\n"
        s += "Dist-2     \(f(m.dist(2)))\n"
        s += "Rep-2      \(f(m.rep(2)))\n"
        s += "Rep-3      \(f(m.rep(3)))\n"
        s += "Loop %     \(String(format: "%.1f", m.loopPercent))   (\(m.loopingSamples) of \(m.samples) samples repeat a trigram)\n"
        for n in 2...3 where m.countedSamples(n) < m.samples {
            s += "note       \(m.samples - m.countedSamples(n)) samples shorter than \(n) ids are left out of Dist-\(n)/Rep-\(n)\n"
        }
        return s
    }
}
