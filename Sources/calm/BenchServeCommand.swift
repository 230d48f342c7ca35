import CALMEngine
import CALMModel
import CALMTensor
import Foundation

/// `calm bench-serve`: R seeded requests through one engine, at most C in flight.
enum BenchServeCommand {
    static let help = """
    usage: calm bench-serve --model DIR --requests R --concurrency C --max-tokens N [options] [--json]

      Request i uses seed S+i and a prompt of P random ids drawn from that seed. Any model family.
      --prompt-tokens P    prompt length (default 32)
      --seed S             base seed (default 0)
      --kv-mib M           KV-cache budget in MiB (default 1024)
      --verify             re-run every request alone afterwards and count token mismatches
      --json               print one JSON object
    \(EngineOptions.modelHelp)
    \(EngineOptions.samplingHelp)
      (bench-serve's default temperature is 1: CALM's single sampler, Llama's plain softmax sampling)
    """

    struct RequestResult: Sendable {
        var tokens: [Int]
        var info: CompletionInfo?
    }

    static func run(_ raw: [String]) async throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        let (stops, rest) = extractRepeated("stop", from: raw)
        var a = try Arguments(rest, switches: EngineOptions.switches.union(["verify", "json"]), values: EngineOptions.values.union(["requests", "concurrency", "prompt-tokens", "kv-mib"]))
        let temperatureGiven = rest.contains { $0 == "--temperature" || $0.hasPrefix("--temperature=") }
        let baseSeedText = a.string("seed")
        var options = try EngineOptions(&a, stops: stops, defaultModel: false)
        guard let requests = try a.int("requests"), requests >= 1 else { throw UsageError("--requests must be a positive integer") }
        guard let concurrency = try a.int("concurrency"), concurrency >= 1 else { throw UsageError("--concurrency must be a positive integer") }
        guard rest.contains(where: { $0 == "--max-tokens" || $0.hasPrefix("--max-tokens=") }) else {
            throw UsageError("missing required option --max-tokens")
        }
        let promptTokens = try a.int("prompt-tokens") ?? 32
        let kvMiB = try a.int("kv-mib") ?? 1024
        let verify = a.flag("verify")
        let json = a.flag("json")
        try a.finish()
        guard promptTokens >= 1 else { throw UsageError("--prompt-tokens must be positive") }
        guard kvMiB >= 1, kvMiB <= 1 << 20 else { throw UsageError("--kv-mib must be in 1…1048576") }
        var baseSeed: UInt64 = 0
        if let baseSeedText {
            guard let s = UInt64(baseSeedText) else { throw UsageError("option --seed: '\(baseSeedText)' is not a non-negative integer") }
            baseSeed = s
        }
        let engine = try options.engine(kvCacheBytes: kvMiB << 20, tokenizerRequired: !stops.isEmpty)
        if !temperatureGiven {
            options.parameters.temperature = 1
            if engine.family is CALMFamily && options.parameters.sampler == nil { options.parameters.sampler = .single }
        }
        let base = options.parameters
        let freeAtStart = engine.kvBlocksFree
        let family = engine.family
        // prompt ids below the special ids (CALM: BOS/EOS/PAD sit at the top of the vocabulary)
        let idLimit = max(1, min(family.vocabularySize, family.paddingTokenID ?? family.vocabularySize,
                                 family.endTokenIDs.min() ?? family.vocabularySize) - 1)
        let samplerName = base.sampler.map { "\($0)" } ?? family.name + " default"
        let maxTokens = base.maxTokens, temperature = base.temperature
        func request(_ i: Int) -> (Prompt, SamplingParameters) {
            let seed = baseSeed &+ UInt64(i)
            let rng = SeededRandomness(seed: seed ^ 0x5EED)
            let prompt = (0..<promptTokens).map { _ in Int(rng.uniformDouble() * Double(idLimit)) }
            var p = base
            p.seed = seed
            p.stopAtEndToken = false
            return (.tokens(prompt), p)
        }
        // Validate once up front so a bad parameter fails before the run.
        _ = try engine.generate(prompt: request(0).0, parameters: request(0).1)
        try await Task.sleep(nanoseconds: 1_000_000)
        let start = DispatchTime.now()
        var results = [RequestResult?](repeating: nil, count: requests)
        var failed = 0
        await withTaskGroup(of: (Int, RequestResult?).self) { group in
            var next = 0
            func launch() {
                let i = next
                next += 1
                let (prompt, parameters) = request(i)
                group.addTask {
                    guard let stream = try? engine.generate(prompt: prompt, parameters: parameters) else { return (i, nil) }
                    var tokens: [Int] = [], info: CompletionInfo?
                    for await e in stream {
                        switch e { case let .chunk(c): tokens += c.tokens; case let .completed(x): info = x }
                    }
                    return (i, RequestResult(tokens: tokens, info: info))
                }
            }
            while next < min(concurrency, requests) { launch() }
            for await (i, r) in group {
                results[i] = r
                if r == nil { failed += 1 }
                if next < requests { launch() }
            }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let done = results.compactMap { $0 }
        let completed = done.filter { if case .error = $0.info?.reason { return false }; return $0.info != nil }.count
        let tokens = done.reduce(0) { $0 + $1.tokens.count }
        let chunks = done.reduce(0) { $0 + ($1.info?.chunks ?? 0) }
        let ttfc = done.compactMap { $0.info?.timeToFirstChunk }
        let perChunk = done.flatMap { $0.info.map { Array($0.chunkSeconds.dropFirst()) } ?? [] }
        try await Task.sleep(nanoseconds: 50_000_000)
        var out: [String: Any] = [
            "requests": requests, "completed": completed, "failed": failed + (done.count - completed),
            "concurrency": concurrency, "max_tokens": maxTokens, "prompt_tokens": promptTokens,
            "temperature": temperature, "sampler": samplerName,
            "seconds": wall,
            "aggregate_tokens_per_s": Double(tokens) / wall,
            "aggregate_chunks_per_s": Double(chunks) / wall,
            "time_to_first_chunk_s": ["p50": percentile(ttfc, 0.5), "p99": percentile(ttfc, 0.99)],
            "time_per_chunk_s": ["p50": percentile(perChunk, 0.5), "p99": percentile(perChunk, 0.99)],
            "peak_kv_blocks": engine.kvBlocksPeak,
            "kv_blocks_total": engine.kvBlocksTotal,
            "kv_blocks_free_at_start": freeAtStart,
            "kv_blocks_after": engine.kvBlocksFree,
            "family": family.name,
            "step_seconds": ["steps": engine.statistics.steps, "backbone": engine.statistics.backboneSeconds,
                             "sampling": engine.statistics.samplingSeconds, "wall": engine.statistics.wallSeconds],
            "samples_decoded": engine.statistics.samplesDecoded,
            "argmax_rows": engine.statistics.argmaxRows,
            "decoding": options.chunkDecoding.rawValue,
            "isa": KernelISA.active.rawValue,
            "isa_selection": KernelISA.selection,
        ]
        if verify {
            var mismatches = 0
            for i in 0..<requests {
                let (prompt, parameters) = request(i)
                var tokens: [Int] = []
                for await e in try engine.generate(prompt: prompt, parameters: parameters) {
                    if case let .chunk(c) = e { tokens += c.tokens }
                }
                if tokens != results[i]?.tokens { mismatches += 1 }
            }
            out["verify_mismatches"] = mismatches
        }
        let data = try JSONSerialization.data(withJSONObject: out, options: json ? [.sortedKeys] : [.sortedKeys, .prettyPrinted])
        writeStdout(String(decoding: data, as: UTF8.self) + "\n")
    }

    static func percentile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let s = values.sorted()
        return s[min(s.count - 1, Int((Double(s.count - 1) * q).rounded()))]
    }
}
