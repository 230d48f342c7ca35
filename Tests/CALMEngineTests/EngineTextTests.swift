@testable import CALMEngine
import CALMModel
import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

/// Text-level behaviour with the Llama 3 tokenizer: stop sequences cut exactly (also across
/// chunks) and streamed text never splits a UTF-8 character.
@Suite("Engine text", .enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
struct EngineTextTests {
    let tokenizer: any TextTokenizer

    init() throws {
        tokenizer = try TokenizerLoader.load(directory: try SharedFixtures.require().appendingPathComponent("data/llama3"))
    }

    func engine(_ family: TestFamily) throws -> CALMEngine {
        try CALMEngine(family: family.makeFamily(), tokenizer: tokenizer, configuration: EngineConfiguration(kvCacheBytes: 32 << 20))
    }

    func run(_ engine: CALMEngine, _ p: SamplingParameters) async throws -> (chunks: [GeneratedChunk], info: CompletionInfo?) {
        var chunks: [GeneratedChunk] = [], info: CompletionInfo?
        for await e in try engine.generate(prompt: .tokens([1, 2, 3, 4, 5]), parameters: p) {
            switch e { case let .chunk(c): chunks.append(c); case let .completed(i): info = i }
        }
        return (chunks, info)
    }

    @Test(arguments: TestFamily.allCases)
    func stopSequenceSpanningTwoStepsIsCutExactly(family: TestFamily) async throws {
        let engine = try engine(family)
        let base = family.plain(maxTokens: 64, seed: 11)
        let free = try await run(engine, base)
        let texts = free.chunks.map(\.text)
        let full = texts.joined()
        // A stop string made of the end of one chunk's text and the start of the next.
        guard let i = texts.indices.dropFirst(2).first(where: { texts[$0 - 1].count >= 2 && texts[$0].count >= 2 }) else {
            Issue.record("no two consecutive non-trivial chunks in \(texts)"); return
        }
        let stop = String(texts[i - 1].suffix(2)) + String(texts[i].prefix(2))
        var p = base
        p.stopSequences = [stop]
        let stopped = try await run(engine, p)
        let streamed = stopped.chunks.map(\.text).joined()
        let expected = String(full[..<full.range(of: stop)!.lowerBound])
        #expect(streamed == expected)
        #expect(!streamed.contains(stop))
        #expect(stopped.info?.reason == .stopSequence(stop))
        #expect(stopped.info?.generatedTokens == stopped.chunks.flatMap(\.tokens).count)
        // The stream ended in the output processor; the request it stopped gives its blocks back.
        let deadline = ContinuousClock.now + .seconds(10)
        while engine.kvBlocksFree != engine.kvBlocksTotal && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(engine.kvBlocksFree == engine.kvBlocksTotal)
    }

    @Test(arguments: TestFamily.allCases)
    func streamedTextNeverSplitsACharacter(family: TestFamily) async throws {
        // A tiny vocabulary of Llama 3 ids below 512 includes lone UTF-8 lead and continuation
        // bytes, so random generations exercise the hold-back of incomplete characters.
        let engine = try engine(family)
        for seed in 0..<6 {
            let r = try await run(engine, family.plain(maxTokens: 96, seed: UInt64(seed)))
            let tokens = r.chunks.flatMap(\.tokens)
            let whole = tokenizer.decode(tokens)
            #expect(r.chunks.map(\.text).joined() == whole)
            // Every piece is valid UTF-8 on its own (a split character would have been replaced).
            for c in r.chunks { #expect(Array(c.text.utf8) == Array(String(decoding: Array(c.text.utf8), as: UTF8.self).utf8)) }
        }
        // Emoji and CJK: the ids of a multi-byte text, streamed one id at a time.
        let ids = tokenizer.encode("日本語のテキスト 🎉👩‍👩‍👧 ok", addBOS: false, allowSpecialTokens: false)
        var d = StreamingDetokenizer(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(d.append([id])) }
        pieces.append(d.finish())
        #expect(pieces.joined() == "日本語のテキスト 🎉👩‍👩‍👧 ok")
        #expect(!pieces.joined().contains("\u{FFFD}"))
    }

    @Test func textPromptsAreTokenizedWithBOS() async throws {
        let engine = try engine(.calm)
        // Llama 3 BOS (128000) is outside the tiny model's vocabulary: a clear error at the call.
        #expect(throws: EngineError.self) { try engine.generate(prompt: "Hello", parameters: SamplingParameters()) }
    }

    @Test func outputProcessorCutsAtAStopFlushesHeldTextAndCountsWhatItHides() throws {
        let ids = tokenizer.encode("Hello world, stop here please", addBOS: false, allowSpecialTokens: false)
        var sampler = SamplerStatistics()
        sampler.accepted = 1
        // Stop sequence inside the text: the chunk is cut before it and the stream ends there.
        var p = OutputProcessor(tokenizer: tokenizer, stopSequences: [" here"], promptTokens: 3)
        var text = "", ended = false, info: CompletionInfo?
        for (k, id) in ids.enumerated() where !ended {
            let out = p.process(.tokens(ids: [id], logprobs: nil, diagnostics: nil, at: Double(k + 1), sampler: sampler))
            for e in out.events {
                switch e { case let .chunk(c): text += c.text; case let .completed(i): info = i }
            }
            ended = out.ended
            if ended { #expect(out.stoppedEarly) }
        }
        #expect(text == "Hello world, stop")
        #expect(info?.reason == .stopSequence(" here"))
        #expect(info?.timeToFirstChunk == 1)
        // Text that might have started a stop sequence is released when the request ends.
        var q = OutputProcessor(tokenizer: tokenizer, stopSequences: [" world!"], promptTokens: 3)
        var released = ""
        for (k, id) in ids.prefix(2).enumerated() {
            for case let .chunk(c) in q.process(.tokens(ids: [id], logprobs: nil, diagnostics: nil, at: Double(k), sampler: sampler)).events { released += c.text }
        }
        #expect(released == "Hello")
        let end = q.process(.finished(reason: .maxTokens, at: 9, sampler: sampler))
        #expect(end.ended && !end.stoppedEarly)
        #expect(end.events.count == 2)
        if case let .chunk(c) = end.events.first { #expect(c.text == " world") } else { Issue.record("no flushed chunk") }
        if case let .completed(i) = end.events.last {
            #expect(i.reason == .maxTokens && i.generatedTokens == 2 && i.chunks == 2 && i.totalSeconds == 9)
        } else { Issue.record("no completion") }
        // A cancelled reader sees no chunks, but the summary counts them.
        var r = OutputProcessor(tokenizer: tokenizer, stopSequences: [], promptTokens: 3)
        #expect(r.process(.tokens(ids: [ids[0], ids[1]], logprobs: nil, diagnostics: nil, at: 1, sampler: sampler), emitChunks: false).events.isEmpty)
        let cancelled = r.process(.finished(reason: .cancelled, at: 2, sampler: sampler), emitChunks: false)
        if case let .completed(i) = cancelled.events.last { #expect(i.reason == .cancelled && i.generatedTokens == 2) } else { Issue.record("no completion") }
    }
}
