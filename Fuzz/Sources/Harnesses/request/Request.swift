// The request validator: random bytes decoded into an EngineConfiguration (every field, any Int)
// and a SamplingParameters (every field: maxTokens up to Int.max, any temperature including NaN,
// ±∞, denormals; every CALM sampler with any size; the discrete-model controls; Token Maturation
// `maturation` settings, every field) plus a prompt (ids or text), served by an engine over one of
// four tiny random models (CALM, Llama, GPT-2, Token Maturation) with a small tokenizer.
//
// The engine is created (`CALMEngine.init` validates the configuration) and `generate` called (the
// shared and the family's validation, admission arithmetic): each either accepts or throws an
// EngineError. An accepted request is read for a few events (half a second at most), then
// cancelled; it must not end in `.error`, and every KV block must come back.
//
// To keep one input cheap, a kvCacheBytes the engine would accept but which exceeds 8 MiB is
// lowered to 8 MiB (the pool is allocated up front); refused values are passed as they are.
import CALMEngine
import CALMModel
import CALMTokenizer
import EngineFuzzSupport
import Foundation
import FuzzSupport

nonisolated(unsafe) var families: [any ModelFamily] = []
nonisolated(unsafe) var tokenizer: HuggingFaceBPETokenizer!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    do {
        let root = Harness.folder("models")
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        c.maxPositionEmbeddings = 256
        try RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: root.appendingPathComponent("calm"), seed: 3,
                                    embedAutoencoder: true)
        var llama = RandomModelWriter.LlamaShape.llamaTiny.config
        llama.maxPositionEmbeddings = 512
        try RandomModelWriter.writeLlama(config: llama, dtype: .bf16, to: root.appendingPathComponent("llama"), seed: 4)
        try RandomModelWriter.writeGPT2(config: RandomModelWriter.GPT2Shape.gpt2Tiny.config, dtype: .f16,
                                        to: root.appendingPathComponent("gpt2"), seed: 5)
        var tm = RandomModelWriter.TokenMaturationShape.tmTiny.config
        tm.maxPositions = 256
        tm.llama?.maxPositionEmbeddings = 256
        try RandomModelWriter.writeTokenMaturation(config: tm, dtype: .f32, to: root.appendingPathComponent("tm"), seed: 6)
        families = try ["calm", "llama", "gpt2", "tm"].map { try ModelFamilyRegistry.load(directory: root.appendingPathComponent($0)) }
        tokenizer = try HuggingFaceBPETokenizer(definition: TokenizerSeeds.definition(vocabularySize: 300))
    } catch {
        Harness.fail("request: cannot build the tiny models: \(error)")
    }
    return 0
}

let physicalMemory: Int = {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
    let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
    return overflow ? Int.max : bytes
}()

func decodeConfiguration(_ input: inout FuzzInput) -> EngineConfiguration {
    var c = EngineConfiguration(kvCacheBytes: 4 << 20, blockChunks: 4, prefillChunksPerStep: 64)
    if input.bool() { c.kvCacheBytes = input.int() }
    if c.kvCacheBytes > 8 << 20 && c.kvCacheBytes <= physicalMemory { c.kvCacheBytes = 8 << 20 }
    if input.bool() { c.blockChunks = input.int() }
    if input.bool() { c.prefillChunksPerStep = input.int() }
    if input.bool() { c.streamBufferLimit = input.int() }
    if input.bool() { c.exactRejectionDrawsPerRound = input.int() }
    return c
}

func decodeParameters(_ input: inout FuzzInput) -> SamplingParameters {
    var p = SamplingParameters()
    p.maxTokens = input.bool() ? input.int() : input.int(in: 1...64)
    p.temperature = input.double()
    p.seed = input.optional { $0.uint64() }
    p.stopSequences = (0..<Int(input.byte() % 3)).map { _ in input.string(maxBytes: 8) }
    p.stopAtEndToken = input.bool()
    switch input.byte() % 4 {
    case 0: p.sampler = nil
    case 1: p.sampler = .single
    case 2: p.sampler = .batchApproximation(samples: input.int())
    default: p.sampler = .exactRejection(maxDraws: input.int())
    }
    if input.bool() {   // the discrete-model controls
        p.topK = input.optional { $0.int() }
        p.topP = input.double()
        p.minP = input.double()
        p.repetitionPenalty = input.double()
        p.presencePenalty = input.double()
        p.frequencyPenalty = input.double()
        p.logprobs = input.bool()
    }
    if input.bool() {   // Token Maturation's settings, every field
        var m = TokenMaturationParameters()
        m.tailLength = input.optional { $0.int() }
        m.guidanceScale = input.optional { $0.float() }
        m.maturityMax = input.optional { $0.float() }
        m.maturationRate = input.optional { $0.float() }
        m.embryoScale = input.optional { $0.float() }
        m.alignment = input.optional { $0.pick(TokenMaturationAlignment.allCases) }
        if input.bool() { m.tailNoise = input.float() }
        if input.bool() { m.historyNoise = input.float() }
        if input.bool() { m.targetEMA = input.float() }
        if input.bool() { m.historyEMA = input.float() }
        if input.bool() { m.innerIterations = input.int() }
        m.renormalizeTail = input.bool()
        m.flushTail = input.bool()
        m.diagnostics = input.bool()
        if input.bool() { m.diagnosticsTopK = input.int() }
        // Overridden by the request's own, but set anyway.
        m.seed = input.optional { $0.uint64() }
        if input.bool() { m.maxTokens = input.int() }
        m.stopAtEndToken = input.bool()
        p.maturation = m
    }
    return p
}

func decodePrompt(_ input: inout FuzzInput, vocabulary: Int) -> Prompt {
    if input.byte() % 4 == 0 { return .text(input.string(maxBytes: 48)) }
    let count = Int(input.byte() % 12)
    return .tokens((0..<count).map { _ in input.bool() ? input.int() : input.int(in: 0...(vocabulary - 1)) })
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let family = families[Int(input.byte()) % families.count]
    let configuration = decodeConfiguration(&input)
    let parameters = decodeParameters(&input)
    let prompt = decodePrompt(&input, vocabulary: family.vocabularySize)
    let context = "request (\(family.name))"
    // The public pieces generate uses, called whatever the parameters (they must not trap either).
    _ = family.scratchPositions(for: parameters)
    _ = family.prefixSharingKey(for: parameters)
    if let sampler = parameters.sampler {
        do { _ = try sampler.makeSelector(temperature: parameters.temperature) }
        catch let e as ModelError { Harness.refused(e) } catch { Harness.untyped(error, "Sampler.makeSelector") }
    }
    let engine: CALMEngine
    do {
        engine = try CALMEngine(family: family, tokenizer: tokenizer, configuration: configuration)
    } catch let e as EngineError {
        Harness.refused(e)
        return 0
    } catch {
        Harness.untyped(error, "\(context): CALMEngine.init")
    }
    do {
        let info = try Request.run(engine, prompt: prompt, parameters: parameters, maxEvents: 3, seconds: 0.5)
        Harness.note("accepted: \(family.name) \(parameters) → \(info.map { "\($0.reason)" } ?? "cancelled")")
        if case .error(let message) = info?.reason {
            Harness.fail("\(context): an accepted request failed at run time: \(message)")
        }
    } catch let e as EngineError {
        Harness.refused(e)
    } catch {
        Harness.untyped(error, "\(context): generate")
    }
    return 0
}

/// Valid requests for each family (each sampler, the discrete controls, maturation settings, a
/// stop sequence and a text prompt), written in the order `testOneInput` reads them.
func seeds() throws -> [(String, [UInt8])] {
    func request(_ name: String, family: UInt8, _ parameters: (inout FuzzInputWriter) -> Void) -> (String, [UInt8]) {
        var w = FuzzInputWriter()
        w.byte(family)
        for _ in 0..<5 { w.bool(false) }          // the default engine configuration
        parameters(&w)
        return (name, w.bytes)
    }
    func common(_ w: inout FuzzInputWriter, maxTokens: Int, temperature: (Int, Int), sampler: UInt8, samplerSize: Int? = nil) {
        w.bool(false); w.offset(maxTokens - 1)
        w.double(temperature.0, over: temperature.1)
        w.bool(true); w.byte(7); for _ in 0..<7 { w.byte(0) }   // seed
        w.byte(1); w.string("\n\n")                // one stop sequence
        w.bool(true)                               // stopAtEndToken
        w.byte(sampler)
        if let samplerSize { w.int(samplerSize) }
    }
    func tokens(_ w: inout FuzzInputWriter, _ ids: [Int]) {
        w.byte(1); w.byte(UInt8(ids.count))
        for id in ids { w.bool(false); w.offset(id) }
    }
    return [
        request("calm-batch-approximation", family: 0) { w in
            common(&w, maxTokens: 8, temperature: (1, 2), sampler: 2, samplerSize: 200)
            w.bool(false); w.bool(false); tokens(&w, [5, 6, 7])
        },
        request("calm-exact", family: 0) { w in
            common(&w, maxTokens: 8, temperature: (1, 3), sampler: 3, samplerSize: 200)
            w.bool(false); w.bool(false); tokens(&w, [1, 2, 3, 4, 9])
        },
        request("calm-single-text", family: 0) { w in
            common(&w, maxTokens: 12, temperature: (1, 1), sampler: 1)
            w.bool(false); w.bool(false); w.byte(0); w.string("Once upon a time")
        },
        request("llama-controls", family: 1) { w in
            common(&w, maxTokens: 6, temperature: (4, 5), sampler: 0)
            w.bool(true)
            w.bool(true); w.int(40)                // topK
            w.double(9, over: 10); w.double(1, over: 20); w.double(6, over: 5); w.double(1, over: 2); w.double(1, over: 4)
            w.bool(true)                           // logprobs
            w.bool(false); tokens(&w, [10, 20, 30])
        },
        request("gpt2-greedy-text", family: 2) { w in
            common(&w, maxTokens: 6, temperature: (0, 1), sampler: 0)
            w.bool(false); w.bool(false); w.byte(0); w.string("The quick brown fox")
        },
        request("tm-maturation", family: 3) { w in
            common(&w, maxTokens: 6, temperature: (1, 2), sampler: 0)
            w.bool(false); w.bool(true)
            w.bool(true); w.int(4)                 // tailLength
            w.bool(true); w.float(2)               // guidanceScale
            w.bool(true); w.float(1, over: 2)      // maturityMax
            w.bool(true); w.float(1)               // maturationRate
            w.bool(true); w.float(1, over: 10)     // embryoScale
            w.bool(true); w.byte(0)                // alignment
            w.bool(true); w.float(1, over: 100)    // tailNoise
            w.bool(false); w.bool(true); w.float(1, over: 2); w.bool(false)
            w.bool(true); w.int(2)                 // innerIterations
            w.bool(true); w.bool(false); w.bool(true)
            w.bool(true); w.int(10)                // diagnosticsTopK
            w.bool(false); w.bool(false); w.bool(true)
            tokens(&w, [3, 4, 5, 6])
        },
    ]
}
