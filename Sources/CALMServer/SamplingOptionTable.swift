import CALMEngine
import CALMModel
import Foundation

/// The one table of sampling options, shared by the CLI (`calm generate`, `bench-serve`, …) and
/// the HTTP server (`POST /v1/completions`): which option sets which `SamplingParameters` field,
/// and how. Option names are the CLI's; the server reads the same names with `_` for `-`.
public enum SamplingOptionTable {
    /// The value options the table reads, with CALM's head-sample count under `samplesOption`.
    public static func valueOptions(samplesOption: String = "samples") -> Set<String> {
        maturationValues.union(["max-tokens", "temperature", "seed", "sampler", samplesOption, "max-draws", "top-k", "top-p",
                                "min-p", "repetition-penalty", "presence-penalty", "frequency-penalty"])
    }
    /// The switches the table reads.
    public static let switches: Set<String> = maturationSwitches.union(["logprobs"])
    /// Token Maturation's switches (read by `maturation(from:)`).
    public static let maturationSwitches: Set<String> = ["renormalize-tail", "diagnostics"]
    /// Token Maturation's value options (read by `maturation(from:)`).
    public static let maturationValues: Set<String> = ["tail", "cfg-scale", "alpha-max", "rate", "embryo", "alignment", "tail-noise",
                                                       "history-noise", "target-ema", "history-ema", "inner-iterations"]

    /// The option that sets each `SamplingParameters` / `TokenMaturationParameters` field, by the
    /// parameter name `EngineError.invalidParameter` carries (so an error can name what the user wrote).
    public static let optionForParameter: [String: String] = [
        "maxTokens": "max-tokens", "temperature": "temperature", "samples": "samples", "maxDraws": "max-draws",
        "stopSequences": "stop", "sampler": "sampler", "topK": "top-k", "topP": "top-p", "minP": "min-p",
        "repetitionPenalty": "repetition-penalty", "presencePenalty": "presence-penalty", "frequencyPenalty": "frequency-penalty",
        "logprobs": "logprobs", "maturation": "tail (and the other Token Maturation options)", "tailLength": "tail",
        "guidanceScale": "cfg-scale", "maturityMax": "alpha-max", "maturationRate": "rate", "embryoScale": "embryo",
        "alignment": "alignment", "tailNoise": "tail-noise", "historyNoise": "history-noise", "targetEMA": "target-ema",
        "historyEMA": "history-ema", "innerIterations": "inner-iterations",
    ]

    /// Reads every sampling option `source` has into `parameters` (stop sequences excepted: the CLI
    /// repeats `--stop`, a request gives a string or an array). CALM's head-sample count is read
    /// from `samplesOption`.
    public static func read<Source: SamplingOptionSource>(from source: inout Source, samplesOption: String = "samples",
                                                          into parameters: inout SamplingParameters) throws {
        var p = parameters
        if let v = try source.int("max-tokens") {
            guard v >= 1 else { throw source.invalidValue("max-tokens", "must be at least 1, got \(v)") }
            p.maxTokens = v
        }
        if let v = try source.fraction("temperature") { p.temperature = v }
        if let v = try source.unsigned("seed") { p.seed = v }
        let samples = try source.int(samplesOption), maxDraws = try source.int("max-draws")
        switch try source.string("sampler") {
        case nil:
            if let samples { p.sampler = .batchApproximation(samples: samples) }
            else if let maxDraws { p.sampler = .exactRejection(maxDraws: maxDraws) }
        case "batch": p.sampler = .batchApproximation(samples: samples ?? 200)
        case "exact": p.sampler = .exactRejection(maxDraws: maxDraws ?? 10_000)
        case "single": p.sampler = .single
        case let other?: throw source.invalidValue("sampler", "'\(other)' is not batch, exact or single")
        }
        if let v = try source.int("top-k") { p.topK = v }
        if let v = try source.double("top-p") { p.topP = v }
        if let v = try source.double("min-p") { p.minP = v }
        if let v = try source.double("repetition-penalty") { p.repetitionPenalty = v }
        if let v = try source.double("presence-penalty") { p.presencePenalty = v }
        if let v = try source.double("frequency-penalty") { p.frequencyPenalty = v }
        if try source.flag("logprobs") { p.logprobs = true }
        if let m = try maturation(from: &source) { p.maturation = m }
        parameters = p
    }

    /// The options that `read` turns back into `parameters`, as request fields (`_` for `-`), in
    /// the table's order: what a client such as `calm bench-serve --http` sends. Defaults are left
    /// out; stop sequences, `stopAtEndToken`, and Token Maturation's `flushTail` and
    /// `diagnosticsTopK` are not in the table.
    public static func requestFields(for parameters: SamplingParameters) -> [(String, JSONValue)] {
        let p = parameters
        let d = SamplingParameters()
        var out: [(String, JSONValue)] = [("max_tokens", .integer(p.maxTokens)), ("temperature", .number(p.temperature))]
        if let seed = p.seed {
            // beyond Int's range a seed has no exact JSON integer here; read() then refuses it
            out.append(("seed", seed <= UInt64(Int.max) ? .integer(Int(seed)) : .number(Double(seed))))
        }
        switch p.sampler {
        case nil: break
        case .single?: out.append(("sampler", .string("single")))
        case let .batchApproximation(samples)?: out += [("sampler", .string("batch")), ("samples", .integer(samples))]
        case let .exactRejection(maxDraws)?: out += [("sampler", .string("exact")), ("max_draws", .integer(maxDraws))]
        }
        if let k = p.topK { out.append(("top_k", .integer(k))) }
        if p.topP != d.topP { out.append(("top_p", .number(p.topP))) }
        if p.minP != d.minP { out.append(("min_p", .number(p.minP))) }
        if p.repetitionPenalty != d.repetitionPenalty { out.append(("repetition_penalty", .number(p.repetitionPenalty))) }
        if p.presencePenalty != d.presencePenalty { out.append(("presence_penalty", .number(p.presencePenalty))) }
        if p.frequencyPenalty != d.frequencyPenalty { out.append(("frequency_penalty", .number(p.frequencyPenalty))) }
        if p.logprobs { out.append(("logprobs", .bool(true))) }
        if let m = p.maturation {
            func float(_ name: String, _ v: Float?) { if let v { out.append((name, .number(Double(v)))) } }
            if let k = m.tailLength { out.append(("tail", .integer(k))) }
            float("cfg_scale", m.guidanceScale)
            float("alpha_max", m.maturityMax)
            float("rate", m.maturationRate)
            float("embryo", m.embryoScale)
            if let a = m.alignment { out.append(("alignment", .string(a.rawValue))) }
            float("tail_noise", m.tailNoise)
            float("history_noise", m.historyNoise)
            float("target_ema", m.targetEMA)
            float("history_ema", m.historyEMA)
            out.append(("inner_iterations", .integer(m.innerIterations)))  // always: it marks the settings as given
            if m.renormalizeTail { out.append(("renormalize_tail", .bool(true))) }
            if m.diagnostics { out.append(("diagnostics", .bool(true))) }
        }
        return out
    }

    /// Token Maturation's settings, nil when no Token Maturation option was given (so other
    /// families see none).
    public static func maturation<Source: SamplingOptionSource>(from source: inout Source) throws -> TokenMaturationParameters? {
        var m = TokenMaturationParameters()
        var any = false
        func float(_ name: String) throws -> Float? {
            guard let v = try source.double(name) else { return nil }
            any = true
            return Float(v)
        }
        if let v = try source.int("tail") { m.tailLength = v; any = true }
        m.guidanceScale = try float("cfg-scale")
        m.maturityMax = try float("alpha-max")
        m.maturationRate = try float("rate")
        m.embryoScale = try float("embryo")
        if let v = try source.string("alignment") {
            guard let alignment = TokenMaturationAlignment(rawValue: v) else { throw source.invalidValue("alignment", "'\(v)' is not shift or same") }
            m.alignment = alignment
            any = true
        }
        if let v = try float("tail-noise") { m.tailNoise = v }
        if let v = try float("history-noise") { m.historyNoise = v }
        if let v = try float("target-ema") { m.targetEMA = v }
        if let v = try float("history-ema") { m.historyEMA = v }
        if let v = try source.int("inner-iterations") { m.innerIterations = v; any = true }
        if try source.flag("renormalize-tail") { m.renormalizeTail = true; any = true }
        if try source.flag("diagnostics") { m.diagnostics = true; any = true }
        return any ? m : nil
    }
}
