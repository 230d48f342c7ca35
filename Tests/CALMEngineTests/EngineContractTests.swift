import CALMEngine
import CALMModel
import Foundation
import Testing

/// Contract tests, each over every model family: concurrency, batch invariance, cancellation,
/// memory accounting, limits.
@Suite("Engine contracts")
struct EngineContractTests {
    @Test(arguments: TestFamily.allCases)
    func sixtyFourConcurrentRequestsComplete(family: TestFamily) async throws {
        let engine = try family.engine()
        let free = engine.kvBlocksFree
        let results = try await withThrowingTaskGroup(of: (Int, CompletionInfo?).self) { group in
            for i in 0..<64 {
                let stream = try engine.generate(prompt: .tokens(EngineFixtures.prompt(i)),
                                                 parameters: family.plain(maxTokens: 10 + i % 7, seed: UInt64(i)))
                group.addTask { (i, await EngineFixtures.collect(stream).info) }
            }
            var all: [(Int, CompletionInfo?)] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 64)
        for (i, info) in results {
            #expect(info?.reason == .maxTokens)
            #expect(info?.generatedTokens == 10 + i % 7)
        }
        #expect(engine.kvBlocksFree == free, "every KV block returned")
    }

    static let familySamplers: [(TestFamily, Int)] = TestFamily.allCases.flatMap { f in f.samplers.indices.map { (f, $0) } }

    @Test(arguments: familySamplers)
    func seededOutputIsIndependentOfTheBatch(family: TestFamily, samplerIndex: Int) async throws {
        let (name, base) = family.samplers[samplerIndex]
        func parameters(_ seed: UInt64) -> SamplingParameters {
            var p = base
            p.maxTokens = 16; p.seed = seed; p.stopAtEndToken = false
            return p
        }
        let target = EngineFixtures.prompt(3, length: 9)
        let alone = await EngineFixtures.collect(try family.engine().generate(prompt: .tokens(target), parameters: parameters(99))).tokens
        #expect(alone.count == 16)
        for others in [1, 7, 63] {
            let engine = try family.engine()
            var streams: [GenerationStream] = []
            // The target arrives in the middle of the others, with other prompt lengths and seeds.
            for i in 0..<others {
                if i == others / 2 { streams.append(try engine.generate(prompt: .tokens(target), parameters: parameters(99))) }
                streams.append(try engine.generate(prompt: .tokens(EngineFixtures.prompt(i + 10, length: 3 + i % 11)),
                                                   parameters: parameters(UInt64(i))))
            }
            let outputs = await withTaskGroup(of: (Int, [Int]).self) { group in
                for (i, s) in streams.enumerated() { group.addTask { (i, await EngineFixtures.collect(s).tokens) } }
                var r = [Int: [Int]]()
                for await (i, t) in group { r[i] = t }
                return r
            }
            #expect(outputs[others / 2] == alone, "\(family) \(name): batched with \(others) others")
        }
    }

    @Test(arguments: TestFamily.allCases)
    func cancellingMidwayReturnsEveryBlock(family: TestFamily) async throws {
        let engine = try family.engine()
        let free = engine.kvBlocksFree
        let stream = try engine.generate(prompt: .tokens(EngineFixtures.prompt(1)), parameters: family.plain(maxTokens: 200, seed: 1))
        var chunks = 0
        for await e in stream {
            if case .chunk = e { chunks += 1 }
            if chunks == 3 { break }   // leaving the loop cancels the request
        }
        #expect(chunks == 3)
        try await waitUntil { engine.kvBlocksFree == free }
        #expect(engine.kvBlocksFree == free)

        // Cancelling the consuming task does the same, and the stream still ends with `.completed`.
        let task = Task { () -> (Int, CompletionInfo?) in
            var n = 0
            var last: CompletionInfo?
            for await e in try engine.generate(prompt: .tokens(EngineFixtures.prompt(2)), parameters: family.plain(maxTokens: 400, seed: 2)) {
                switch e {
                case .chunk: n += 1; try? await Task.sleep(nanoseconds: 2_000_000)   // a slow reader: still running at cancel
                case let .completed(info): last = info
                }
            }
            return (n, last)
        }
        try await Task.sleep(nanoseconds: 20_000_000)
        task.cancel()
        let (_, info) = try await task.value
        #expect(info?.reason == .cancelled)
        #expect(info?.promptTokens == 7)
        try await waitUntil { engine.kvBlocksFree == free }
        #expect(engine.kvBlocksFree == free)

        // complete() in a cancelled task reports what happened, never made-up numbers.
        let completeTask = Task { try await engine.complete(prompt: .tokens(EngineFixtures.prompt(3)), parameters: family.plain(maxTokens: 400, seed: 3)) }
        try await Task.sleep(nanoseconds: 20_000_000)
        completeTask.cancel()
        do {
            let c = try await completeTask.value
            #expect(c.info.reason == .cancelled || c.info.reason == .maxTokens || c.info.reason == .contextFull)
            #expect(c.info.promptTokens == 7 && c.info.generatedTokens >= c.tokens.count)  // chunks after the cancel are dropped
        } catch is CancellationError {}
        try await waitUntil { engine.kvBlocksFree == free }
        #expect(engine.kvBlocksFree == free)
    }

    @Test(arguments: TestFamily.allCases)
    func fullPoolQueuesAndServesLater(family: TestFamily) async throws {
        // Room for exactly one request of this size at a time.
        let blockChunks = 4
        let maxTokens = 36, prompt = 7
        let positions = (prompt + family.unit - 1) / family.unit + maxTokens / family.unit + family.scratchPositions
        let blocksEach = (positions + blockChunks - 1) / blockChunks
        let engine = try family.engine(kvCacheBytes: blocksEach * family.blockBytes(blockChunks: blockChunks), blockChunks: blockChunks)
        #expect(engine.kvBlocksTotal == blocksEach)
        let p = family.plain(maxTokens: maxTokens, seed: 5)
        let streams = try (0..<4).map { try engine.generate(prompt: .tokens(EngineFixtures.prompt($0)), parameters: p) }
        let infos = await withTaskGroup(of: CompletionInfo?.self) { group in
            for s in streams { group.addTask { await EngineFixtures.collect(s).info } }
            var r: [CompletionInfo?] = []
            for await i in group { r.append(i) }
            return r
        }
        #expect(infos.allSatisfy { $0?.reason == .maxTokens && $0?.generatedTokens == maxTokens })
        #expect(engine.kvBlocksFree == blocksEach)
        #expect(engine.kvBlocksPeak == blocksEach)
    }

    @Test(arguments: TestFamily.allCases)
    func impossibleRequestsFailFast(family: TestFamily) throws {
        let engine = try family.engine(kvCacheBytes: 2 * family.blockBytes(blockChunks: 4))
        #expect(throws: EngineError.self) {
            try engine.generate(prompt: .tokens([1, 2, 3]), parameters: family.plain(maxTokens: 100, seed: 1))
        }
        let big = try family.engine()
        #expect(throws: EngineError.self) {
            try big.generate(prompt: .tokens([Int](repeating: 1, count: 256 * 4)), parameters: family.plain(maxTokens: 4, seed: 1))
        }
        #expect(throws: EngineError.self) { try big.generate(prompt: .tokens([]), parameters: family.plain(maxTokens: 4, seed: 1)) }
        #expect(throws: EngineError.self) { try big.generate(prompt: .tokens([100_000]), parameters: family.plain(maxTokens: 4, seed: 1)) }
        #expect(throws: EngineError.noTokenizer) { try big.generate(prompt: "hello", parameters: family.plain(maxTokens: 4, seed: 1)) }
    }

    /// maxTokens beyond the context is clamped, never an arithmetic trap.
    @Test(arguments: TestFamily.allCases)
    func hugeMaxTokensIsClampedToTheContext(family: TestFamily) async throws {
        let engine = try family.engine(kvCacheBytes: 256 << 20)
        let info = await EngineFixtures.collect(try engine.generate(prompt: .tokens([1, 2, 3]),
                                                                   parameters: family.plain(maxTokens: .max, seed: 1))).info
        #expect(info?.reason == .contextFull)
    }

    @Test func invalidParametersThrowAtTheCall() throws {
        let bad: [(TestFamily, SamplingParameters, String)] = [
            (.calm, SamplingParameters(maxTokens: 0), "maxTokens"),
            (.calm, SamplingParameters(temperature: 0), "temperature"),
            (.calm, SamplingParameters(temperature: 0.7, sampler: .batchApproximation(samples: 10)), "temperature"),
            (.calm, SamplingParameters(temperature: 0.5, sampler: .single), "sampler"),
            (.calm, SamplingParameters(sampler: .batchApproximation(samples: 0)), "samples"),
            (.calm, SamplingParameters(temperature: 0.7, sampler: .exactRejection(maxDraws: 0)), "maxDraws"),
            (.calm, SamplingParameters(topP: 0.9), "topP"),
            (.calm, SamplingParameters(repetitionPenalty: 1.2), "repetitionPenalty"),
            (.calm, SamplingParameters(logprobs: true), "logprobs"),
            (.llama, SamplingParameters(maxTokens: 0), "maxTokens"),
            (.llama, SamplingParameters(temperature: -1), "temperature"),
            (.llama, SamplingParameters(sampler: .single), "sampler"),
            (.llama, SamplingParameters(topK: -1), "topK"),
            (.llama, SamplingParameters(topP: 0), "topP"),
            (.llama, SamplingParameters(minP: 2), "minP"),
            (.llama, SamplingParameters(repetitionPenalty: 0), "repetitionPenalty"),
            (.llama, SamplingParameters(presencePenalty: .nan), "presencePenalty"),
            (.llama, SamplingParameters(maturation: TokenMaturationParameters(tailLength: 4)), "maturation"),
            (.calm, SamplingParameters(maturation: TokenMaturationParameters()), "maturation"),
            (.tm, SamplingParameters(topP: 0.9), "topP"),
            (.tm, SamplingParameters(sampler: .single), "sampler"),
            (.tm, SamplingParameters(maturation: TokenMaturationParameters(tailLength: 0)), "tailLength"),
            (.tm, SamplingParameters(maturation: TokenMaturationParameters(tailLength: 65)), "tailLength"),
            (.tm, SamplingParameters(maturation: TokenMaturationParameters(guidanceScale: -1)), "guidanceScale"),
            (.tm, SamplingParameters(maturation: { var m = TokenMaturationParameters(); m.maturityMax = 2; return m }()), "maturityMax"),
            (.tm, SamplingParameters(maturation: { var m = TokenMaturationParameters(); m.historyNoise = .nan; return m }()), "historyNoise"),
            (.tm, SamplingParameters(maturation: { var m = TokenMaturationParameters(); m.flushTail = true; return m }()), "flushTail"),
        ]
        for (family, p, name) in bad {
            let engine = try family.engine()
            #expect {
                try engine.generate(prompt: .tokens([1]), parameters: p)
            } throws: { error in
                guard case let EngineError.invalidParameter(n, _) = error else { return false }
                return n == name
            }
        }
    }

    @Test(arguments: TestFamily.allCases)
    func stalledConsumerDoesNotBlockOthers(family: TestFamily) async throws {
        let engine = try family.engine(streamBufferLimit: 2)
        let p = family.plain(maxTokens: 80, seed: 3)
        let stalled = try engine.generate(prompt: .tokens(EngineFixtures.prompt(1)), parameters: p)
        let reference = await EngineFixtures.collect(try family.engine().generate(prompt: .tokens(EngineFixtures.prompt(1)), parameters: p))
        // Another request runs to completion while the first is not read at all.
        let other = await EngineFixtures.collect(try engine.generate(prompt: .tokens(EngineFixtures.prompt(2)), parameters: p))
        #expect(other.info?.reason == .maxTokens && other.tokens.count == 80)
        // Then the stalled stream resumes and loses nothing.
        let late = await EngineFixtures.collect(stalled)
        #expect(late.tokens == reference.tokens)
        #expect(late.info?.chunks == 80 / family.unit)
    }

    @Test(arguments: TestFamily.allCases)
    func sharedPromptPrefixIsPrefilledOnceAndGivesTheSameOutput(family: TestFamily) async throws {
        let blockChunks = 2
        let engine = try family.engine(blockChunks: blockChunks)
        let free = engine.kvBlocksFree
        let promptPositions = 10, maxPositions = 2
        let prompt = EngineFixtures.prompt(4, length: promptPositions * family.unit)   // 4 whole shareable blocks
        let p = family.plain(maxTokens: maxPositions * family.unit, seed: 8)
        let alone = await EngineFixtures.collect(try family.engine(blockChunks: blockChunks).generate(prompt: .tokens(prompt), parameters: p)).tokens
        let streams = try (0..<5).map { _ in try engine.generate(prompt: .tokens(prompt), parameters: p) }
        let outputs = await withTaskGroup(of: [Int].self) { group in
            for s in streams { group.addTask { await EngineFixtures.collect(s).tokens } }
            var r: [[Int]] = []
            for await t in group { r.append(t) }
            return r
        }
        #expect(outputs.allSatisfy { $0 == alone })
        // Five separate copies would need 5 × 6 blocks (more with scratch rows); sharing the 4 whole
        // prompt blocks needs 4 + 5 × the rest.
        let each = (promptPositions + maxPositions + family.scratchPositions + blockChunks - 1) / blockChunks
        #expect(engine.kvBlocksPeak <= 4 + 5 * (each - 4))
        #expect(engine.kvBlocksFree == free)
    }
}

/// Polls `condition` for up to two seconds (cancellation is processed asynchronously).
func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<200 where !condition() { try await Task.sleep(nanoseconds: 10_000_000) }
}
