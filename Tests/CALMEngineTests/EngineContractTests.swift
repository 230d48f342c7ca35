import CALMEngine
import CALMModel
import Foundation
import Testing

/// Contract tests: concurrency, batch invariance, cancellation, memory accounting, limits.
@Suite("Engine contracts")
struct EngineContractTests {
    @Test func sixtyFourConcurrentRequestsComplete() async throws {
        let engine = try EngineFixtures.engine()
        let free = engine.kvBlocksFree
        let results = try await withThrowingTaskGroup(of: (Int, CompletionInfo?).self) { group in
            for i in 0..<64 {
                let stream = try engine.generate(prompt: .tokens(EngineFixtures.prompt(i)), parameters: SamplingParameters(
                    maxTokens: 10 + i % 7, temperature: 1, seed: UInt64(i), stopAtEndToken: false, sampler: .single))
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

    @Test(arguments: [Sampler.single, .batchApproximation(samples: 12), .exactRejection(maxDraws: 64)])
    func seededOutputIsIndependentOfTheBatch(sampler: Sampler) async throws {
        let temperature: Double
        switch sampler { case .single: temperature = 1; case .batchApproximation: temperature = 0.5; case .exactRejection: temperature = 0.7 }
        func parameters(_ seed: UInt64) -> SamplingParameters {
            SamplingParameters(maxTokens: 16, temperature: temperature, seed: seed, stopAtEndToken: false, sampler: sampler)
        }
        let target = EngineFixtures.prompt(3, length: 9)
        let alone = await EngineFixtures.collect(try EngineFixtures.engine().generate(prompt: .tokens(target), parameters: parameters(99))).tokens
        #expect(alone.count == 16)
        for others in [1, 7, 63] {
            let engine = try EngineFixtures.engine()
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
            let index = others / 2
            #expect(outputs[index] == alone, "batched with \(others) others")
        }
    }

    @Test func cancellingMidwayReturnsEveryBlock() async throws {
        let engine = try EngineFixtures.engine()
        let free = engine.kvBlocksFree
        let stream = try engine.generate(prompt: .tokens(EngineFixtures.prompt(1)), parameters: SamplingParameters(
            maxTokens: 200, temperature: 1, seed: 1, stopAtEndToken: false, sampler: .single))
        var chunks = 0
        for await e in stream {
            if case .chunk = e { chunks += 1 }
            if chunks == 3 { break }   // leaving the loop cancels the request
        }
        #expect(chunks == 3)
        try await waitUntil { engine.kvBlocksFree == free }
        #expect(engine.kvBlocksFree == free)

        // Cancelling the consuming task does the same.
        let task = Task {
            var n = 0
            for await _ in try engine.generate(prompt: .tokens(EngineFixtures.prompt(2)), parameters: SamplingParameters(
                maxTokens: 400, temperature: 1, seed: 2, stopAtEndToken: false, sampler: .single)) { n += 1 }
            return n
        }
        try await Task.sleep(nanoseconds: 20_000_000)
        task.cancel()
        _ = try await task.value
        try await waitUntil { engine.kvBlocksFree == free }
        #expect(engine.kvBlocksFree == free)
    }

    @Test func fullPoolQueuesAndServesLater() async throws {
        // Room for exactly one request of this size at a time.
        let blockChunks = 4
        let engine = try EngineFixtures.engine(kvCacheBytes: 3 * EngineFixtures.blockBytes(blockChunks: blockChunks), blockChunks: blockChunks)
        #expect(engine.kvBlocksTotal == 3)
        let p = SamplingParameters(maxTokens: 36, temperature: 1, seed: 5, stopAtEndToken: false, sampler: .single)  // 2 + 9 chunks = 3 blocks
        let streams = try (0..<4).map { try engine.generate(prompt: .tokens(EngineFixtures.prompt($0)), parameters: p) }
        let infos = await withTaskGroup(of: CompletionInfo?.self) { group in
            for s in streams { group.addTask { await EngineFixtures.collect(s).info } }
            var r: [CompletionInfo?] = []
            for await i in group { r.append(i) }
            return r
        }
        #expect(infos.allSatisfy { $0?.reason == .maxTokens && $0?.generatedTokens == 36 })
        #expect(engine.kvBlocksFree == 3)
        #expect(engine.kvBlocksPeak == 3)
    }

    @Test func impossibleRequestsFailFast() throws {
        let engine = try EngineFixtures.engine(kvCacheBytes: 2 * EngineFixtures.blockBytes(blockChunks: 4))
        #expect(throws: EngineError.self) {
            try engine.generate(prompt: .tokens([1, 2, 3]), parameters: SamplingParameters(maxTokens: 100, temperature: 1, sampler: .single))
        }
        let big = try EngineFixtures.engine()
        #expect(throws: EngineError.self) {
            try big.generate(prompt: .tokens([Int](repeating: 1, count: 256 * 4)), parameters: SamplingParameters(maxTokens: 4, temperature: 1, sampler: .single))
        }
        #expect(throws: EngineError.self) { try big.generate(prompt: .tokens([]), parameters: SamplingParameters()) }
        #expect(throws: EngineError.self) { try big.generate(prompt: .tokens([100_000]), parameters: SamplingParameters()) }
        #expect(throws: EngineError.noTokenizer) { try big.generate(prompt: "hello", parameters: SamplingParameters()) }
    }

    @Test func invalidParametersThrowAtTheCall() throws {
        let engine = try EngineFixtures.engine()
        let bad: [(SamplingParameters, String)] = [
            (SamplingParameters(maxTokens: 0), "maxTokens"),
            (SamplingParameters(temperature: 0), "temperature"),
            (SamplingParameters(temperature: 0.7, sampler: .batchApproximation(samples: 10)), "temperature"),
            (SamplingParameters(temperature: 0.5, sampler: .single), "sampler"),
            (SamplingParameters(sampler: .batchApproximation(samples: 0)), "samples"),
            (SamplingParameters(temperature: 0.7, sampler: .exactRejection(maxDraws: 0)), "maxDraws"),
        ]
        for (p, name) in bad {
            #expect {
                try engine.generate(prompt: .tokens([1]), parameters: p)
            } throws: { error in
                guard case let EngineError.invalidParameter(n, _) = error else { return false }
                return n == name
            }
        }
    }

    @Test func stalledConsumerDoesNotBlockOthers() async throws {
        let engine = try EngineFixtures.engine(streamBufferLimit: 2)
        let p = SamplingParameters(maxTokens: 80, temperature: 1, seed: 3, stopAtEndToken: false, sampler: .single)
        let stalled = try engine.generate(prompt: .tokens(EngineFixtures.prompt(1)), parameters: p)
        let reference = await EngineFixtures.collect(try EngineFixtures.engine().generate(prompt: .tokens(EngineFixtures.prompt(1)), parameters: p))
        // Another request runs to completion while the first is not read at all.
        let other = await EngineFixtures.collect(try engine.generate(prompt: .tokens(EngineFixtures.prompt(2)), parameters: p))
        #expect(other.info?.reason == .maxTokens && other.tokens.count == 80)
        // Then the stalled stream resumes and loses nothing.
        let late = await EngineFixtures.collect(stalled)
        #expect(late.tokens == reference.tokens)
        #expect(late.info?.chunks == 20)
    }

    @Test func sharedPromptPrefixIsPrefilledOnceAndGivesTheSameOutput() async throws {
        let blockChunks = 2
        let engine = try EngineFixtures.engine(blockChunks: blockChunks)
        let free = engine.kvBlocksFree
        let prompt = EngineFixtures.prompt(4, length: 40)   // 10 chunks: 4 whole shareable blocks
        let p = SamplingParameters(maxTokens: 8, temperature: 1, seed: 8, stopAtEndToken: false, sampler: .single)
        let alone = await EngineFixtures.collect(try EngineFixtures.engine(blockChunks: blockChunks).generate(prompt: .tokens(prompt), parameters: p)).tokens
        let streams = try (0..<5).map { _ in try engine.generate(prompt: .tokens(prompt), parameters: p) }
        let outputs = await withTaskGroup(of: [Int].self) { group in
            for s in streams { group.addTask { await EngineFixtures.collect(s).tokens } }
            var r: [[Int]] = []
            for await t in group { r.append(t) }
            return r
        }
        #expect(outputs.allSatisfy { $0 == alone })
        // Five separate copies would need 5 × 6 blocks; sharing 4 blocks needs 4 + 5 × 2.
        #expect(engine.kvBlocksPeak <= 4 + 5 * 2)
        #expect(engine.kvBlocksFree == free)
    }
}

/// Polls `condition` for up to two seconds (cancellation is processed asynchronously).
func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<200 where !condition() { try await Task.sleep(nanoseconds: 10_000_000) }
}
