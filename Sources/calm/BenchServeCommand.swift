import CALMEngine
import CALMModel
import CALMServer
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
      --http URL           send the requests to a running server (http://HOST:PORT, `calm serve` on the
                           same model, or nginx in front of replicas) as streamed /v1/completions,
                           one client thread per request in flight; the model folder gives the prompts
      --compare-http       run in-process (after an untimed warm-up of C requests), then the same
                           requests through an HTTP server started here on 127.0.0.1 over the same
                           engine; reports the HTTP overhead in tokens/s
      --api-key KEY        sent as Authorization: Bearer KEY with --http
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
        var a = try Arguments(rest, switches: EngineOptions.switches.union(["verify", "json", "compare-http"]),
                              values: EngineOptions.values.union(["requests", "concurrency", "prompt-tokens", "kv-mib", "http", "api-key"]))
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
        let compareHTTP = a.flag("compare-http")
        let httpURL = a.string("http")
        let apiKey = a.string("api-key")
        try a.finish()
        if compareHTTP && httpURL != nil { throw UsageError("give --http URL or --compare-http, not both") }
        if verify && httpURL != nil { throw UsageError("--verify re-runs requests in-process; it does not go with --http") }
        let remote = try httpURL.map { try HTTPLoadGenerator.Endpoint(url: $0, apiKey: apiKey) }
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
        /// The requests through the engine's own API, as an embedding app sees it.
        func inProcess(count requests: Int = requests) async -> ([String: Any], [RequestResult?]) {
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
            try? await Task.sleep(nanoseconds: 50_000_000)
            return ([
                "completed": completed, "failed": failed + (done.count - completed),
                "seconds": wall,
                "aggregate_tokens_per_s": Double(tokens) / wall,
                "aggregate_chunks_per_s": Double(chunks) / wall,
                "time_to_first_chunk_s": ["p50": percentile(ttfc, 0.5), "p99": percentile(ttfc, 0.99)],
                "time_per_chunk_s": ["p50": percentile(perChunk, 0.5), "p99": percentile(perChunk, 0.99)],
                "peak_kv_blocks": engine.kvBlocksPeak,
                "kv_blocks_total": engine.kvBlocksTotal,
                "kv_blocks_free_at_start": freeAtStart,
                "kv_blocks_after": engine.kvBlocksFree,
                "step_seconds": ["steps": engine.statistics.steps, "backbone": engine.statistics.backboneSeconds,
                                 "sampling": engine.statistics.samplingSeconds, "wall": engine.statistics.wallSeconds],
                "samples_decoded": engine.statistics.samplesDecoded,
                "argmax_rows": engine.statistics.argmaxRows,
            ], results)
        }

        /// The same requests as streamed HTTP completions (with `stream_options.include_usage`,
        /// so the token counts are the server's).
        func overHTTP(_ endpoint: HTTPLoadGenerator.Endpoint) async -> [String: Any] {
            let bodies = (0..<requests).map { i -> String in
                let (prompt, parameters) = request(i)
                return CompletionRequest.body(prompt: prompt, parameters: parameters, stream: true, streamUsage: true).serialized
            }
            let (outcomes, wall) = await HTTPLoadGenerator(endpoint: endpoint).run(requests: requests, concurrency: concurrency) { bodies[$0] }
            let ok = outcomes.filter { $0.error == nil && $0.finished }
            let tokens = ok.reduce(0) { $0 + $1.completionTokens }
            var summary: [String: Any] = [
                "completed": ok.count, "failed": requests - ok.count,
                "seconds": wall,
                "aggregate_tokens_per_s": Double(tokens) / wall,
                "time_to_first_event_s": ["p50": percentile(ok.compactMap(\.timeToFirstEvent), 0.5), "p99": percentile(ok.compactMap(\.timeToFirstEvent), 0.99)],
                "time_per_event_s": ["p50": percentile(ok.flatMap(\.eventGaps), 0.5), "p99": percentile(ok.flatMap(\.eventGaps), 0.99)],
                "latency_s": ["p50": percentile(ok.compactMap(\.latency), 0.5), "p99": percentile(ok.compactMap(\.latency), 0.99)],
            ]
            if let firstError = outcomes.lazy.compactMap(\.error).first { summary["first_error"] = firstError }
            return summary
        }
        var out: [String: Any] = [
            "requests": requests, "concurrency": concurrency, "max_tokens": maxTokens, "prompt_tokens": promptTokens,
            "temperature": temperature, "sampler": samplerName, "family": family.name,
            "decoding": options.chunkDecoding.rawValue, "isa": KernelISA.active.rawValue, "isa_selection": KernelISA.selection,
        ]
        var results = [RequestResult?](repeating: nil, count: requests)
        if let remote {
            out["http"] = remote.host + ":" + String(remote.port)
            out.merge(await overHTTP(remote), uniquingKeysWith: { $1 })
        } else {
            if compareHTTP {
                // untimed warm-up (first touches of the weights and buffers), so that the first of
                // the two timed runs is not the one that pays for it
                _ = await inProcess(count: min(requests, concurrency))
                engine.resetStatistics()
            }
            let (summary, r) = await inProcess()
            results = r
            out.merge(summary, uniquingKeysWith: { $1 })
        }
        if compareHTTP {
            let configuration = ServerConfiguration(port: 0, maxConnections: max(256, concurrency + 8), maxRequestsInFlight: max(1024, concurrency))
            let handler = OpenAIHandler(engine: engine, modelName: "bench", configuration: configuration)
            let server = HTTPServer(configuration: configuration, handler: handler)
            try server.start()
            let http = await overHTTP(HTTPLoadGenerator.Endpoint(host: "127.0.0.1", port: server.port, apiKey: nil))
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread { server.shutdown(grace: 10); done.resume() }.start()  // it waits: off the cooperative pool
            }
            let inProcessRate = out["aggregate_tokens_per_s"] as? Double ?? 0
            let httpRate = http["aggregate_tokens_per_s"] as? Double ?? 0
            out["over_http"] = http
            out["http_overhead_percent"] = inProcessRate > 0 ? (inProcessRate - httpRate) / inProcessRate * 100 : 0
        }

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
