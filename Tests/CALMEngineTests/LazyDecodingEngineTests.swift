import CALMEngine
import CALMModel
import Foundation
import Testing

/// The engine's CALM family decodes lazily by default (`EngineConfiguration.chunkDecoding`); an
/// engine that decodes in full serves the same tokens for every sampler, with several requests
/// batched together, and its statistics keep their meaning (samples decoded) while the argmax rows
/// show the saving.
@Suite("Engine: lazy decoding = full decoding")
struct LazyDecodingEngineTests {
    static let samplers: [(String, SamplingParameters)] = TestFamily.calm.samplers + [
        ("batch N=200", SamplingParameters(temperature: 0.5, sampler: .batchApproximation(samples: 200))),
        ("batch T=1/3 N=30", SamplingParameters(temperature: 1.0 / 3, sampler: .batchApproximation(samples: 30))),
        ("exact T=0.4", SamplingParameters(temperature: 0.4, sampler: .exactRejection(maxDraws: 40))),
    ]

    func engine(_ decoding: DecodingStrategy) throws -> CALMEngine {
        try CALMEngine(family: TestFamily.calm.makeFamily(), configuration: EngineConfiguration(
            kvCacheBytes: 64 << 20, blockChunks: 4, prefillChunksPerStep: 64, chunkDecoding: decoding))
    }

    /// Serves every request at once and returns each one's tokens and completion info.
    func serve(_ engine: CALMEngine, _ requests: [SamplingParameters], prompts: [[Int]]) async throws -> [([Int], CompletionInfo?)] {
        try await withThrowingTaskGroup(of: (Int, [Int], CompletionInfo?).self) { group in
            for (i, p) in requests.enumerated() {
                let stream = try engine.generate(prompt: .tokens(prompts[i]), parameters: p)
                group.addTask {
                    let r = await EngineFixtures.collect(stream)
                    return (i, r.tokens, r.info)
                }
            }
            var out = [([Int], CompletionInfo?)](repeating: ([], nil), count: requests.count)
            for try await (i, tokens, info) in group { out[i] = (tokens, info) }
            return out
        }
    }

    @Test func sameTokensForEverySamplerBatched() async throws {
        let full = try engine(.full), lazy = try engine(.lazy)
        #expect(EngineConfiguration().chunkDecoding == .lazy, "lazy is the default")
        // Every sampler twice, with different seeds, all in flight together.
        var requests: [SamplingParameters] = []
        var prompts: [[Int]] = []
        for (i, (_, base)) in Self.samplers.enumerated() {
            for j in 0..<2 {
                var p = base
                p.maxTokens = 20; p.seed = UInt64(300 + 10 * i + j); p.stopAtEndToken = false
                requests.append(p)
                prompts.append(EngineFixtures.prompt(i + 5 * j, length: 5 + i))
            }
        }
        let a = try await serve(full, requests, prompts: prompts)
        let b = try await serve(lazy, requests, prompts: prompts)
        for (i, ((tf, f), (tl, l))) in zip(a, b).enumerated() {
            let name = Self.samplers[i / 2].0
            #expect(tf == tl && !tf.isEmpty, "\(name), request \(i)")
            #expect(f?.sampler.samplesDrawn == l?.sampler.samplesDrawn && f?.sampler.cascadeLevels == l?.sampler.cascadeLevels
                    && f?.sampler.truncatedSteps == l?.sampler.truncatedSteps, "\(name), request \(i)")
            #expect(f?.sampler.argmaxRows == (f?.sampler.samplesDrawn ?? 0) * 4, "\(name): full decoding argmaxes every position")
            #expect((l?.sampler.argmaxRows ?? 0) <= (f?.sampler.argmaxRows ?? 0), "\(name), request \(i)")
        }
        let sf = full.statistics, sl = lazy.statistics
        #expect(sf.samplesDecoded == sl.samplesDecoded, "samples decoded keep their meaning")
        #expect(sf.argmaxRows == sf.samplesDecoded * 4)
        #expect(sl.argmaxRows < sf.argmaxRows, "lazy \(sl.argmaxRows) rows, full \(sf.argmaxRows)")
    }
}
