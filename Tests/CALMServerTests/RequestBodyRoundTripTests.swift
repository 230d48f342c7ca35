@testable import CALMServer
import CALMEngine
import CALMModel
import CALMTestSupport
import Testing

/// `CompletionRequest.body` (what `calm bench-serve --http` sends) reads back as the parameters it
/// was made from: the sampling-option table's writer and reader are each other's inverse.
@Suite("Request body round trip")
struct RequestBodyRoundTripTests {
    /// A seeded stream of parameter sets that the engine would accept, most fields varied.
    static func randomParameters(_ seed: UInt64) -> SamplingParameters {
        var g = TestRandom(seed)
        var p = SamplingParameters(maxTokens: 1 + Int(g.next() % 4000), temperature: [0.5, 1, 1.0 / 3, 0.25, 0.7][Int(g.next() % 5)],
                                   seed: g.next() % 3 == 0 ? nil : g.next() >> 1)
        p.stopSequences = g.next() % 2 == 0 ? [] : ["\n\n", "end \u{e9}\"\\"]
        p.stopAtEndToken = g.next() % 2 == 0
        switch g.next() % 4 {
        case 0: p.sampler = nil
        case 1: p.sampler = .single
        case 2: p.sampler = .batchApproximation(samples: 1 + Int(g.next() % 500))
        default: p.sampler = .exactRejection(maxDraws: 1 + Int(g.next() % 100_000))
        }
        if g.next() % 2 == 0 { p.topK = 1 + Int(g.next() % 100) }
        if g.next() % 2 == 0 { p.topP = Double(g.next() % 1000 + 1) / 1000 }
        if g.next() % 2 == 0 { p.minP = Double(g.next() % 1000) / 1000 }
        if g.next() % 2 == 0 { p.repetitionPenalty = 1 + Double(g.next() % 100) / 64 }
        if g.next() % 2 == 0 { p.presencePenalty = Double(g.next() % 200) / 100 - 1 }
        if g.next() % 2 == 0 { p.frequencyPenalty = Double(g.next() % 200) / 100 - 1 }
        p.logprobs = g.next() % 2 == 0
        if g.next() % 2 == 0 {
            var m = TokenMaturationParameters()
            if g.next() % 2 == 0 { m.tailLength = 1 + Int(g.next() % 32) }
            if g.next() % 2 == 0 { m.guidanceScale = Float(g.next() % 50) / 10 }
            if g.next() % 2 == 0 { m.maturityMax = Float(g.next() % 100) / 100 }
            if g.next() % 2 == 0 { m.alignment = g.next() % 2 == 0 ? .shift : .same }
            if g.next() % 2 == 0 { m.tailNoise = Float(g.next() % 100) / 1000 }
            m.innerIterations = 1 + Int(g.next() % 3)
            m.renormalizeTail = g.next() % 2 == 0
            p.maturation = m
        }
        return p
    }

    @Test func bodiesReadBackAsTheirParameters() throws {
        for seed in 0..<500 as Range<UInt64> {
            let p = Self.randomParameters(seed)
            let prompt: Prompt = seed % 2 == 0 ? .tokens([1, 2, Int(seed)]) : .text("say \"hi\"\n")
            let stream = seed % 3 != 0
            let body = CompletionRequest.body(prompt: prompt, parameters: p, stream: stream, streamUsage: stream && seed % 2 == 0,
                                              choices: 1 + Int(seed % 3))
            let read = try CompletionRequest(body: Array(body.serialized.utf8), maxChoices: 16)
            #expect(read.parameters == p, "seed \(seed): \(body.serialized)")
            #expect(read.stream == stream && read.streamUsage == (stream && seed % 2 == 0) && read.choices == 1 + Int(seed % 3))
            switch (read.prompt, prompt) {
            case let (.tokens(a), .tokens(b)): #expect(a == b)
            case let (.text(a), .text(b)): #expect(a == b)
            default: Issue.record("seed \(seed): prompt \(read.prompt) for \(prompt)")
            }
        }
    }
}
