import CALMEngine
import CALMModel
import Foundation
import Synchronization
import Testing

/// A family that wraps a real one and fails chosen sequences: those whose prompt starts with
/// `marker`, from their `afterSteps`-th step on, either alone (`.failed`) or by throwing the
/// whole step.
final class FaultyFamily: ModelFamily {
    enum Mode { case failSequence, throwStep }
    let inner: any ModelFamily
    let marker: Int
    let afterSteps: Int
    let mode: Mode
    private let steps = Mutex<[Int: Int]>([:])

    init(_ inner: any ModelFamily, marker: Int, afterSteps: Int, mode: Mode) {
        self.inner = inner; self.marker = marker; self.afterSteps = afterSteps; self.mode = mode
    }

    var name: String { "faulty-\(inner.name)" }
    var tokensPerPosition: Int { inner.tokensPerPosition }
    var vocabularySize: Int { inner.vocabularySize }
    var contextPositions: Int { inner.contextPositions }
    var endTokenIDs: Set<Int> { inner.endTokenIDs }
    var paddingTokenID: Int? { inner.paddingTokenID }
    func kvLayout(blockPositions: Int) -> KVLayout { inner.kvLayout(blockPositions: blockPositions) }
    func validate(_ parameters: SamplingParameters) throws { try inner.validate(parameters) }

    struct InjectedFault: Error, CustomStringConvertible { var description: String { "injected fault" } }

    func step(_ batch: StepBatch) throws -> [StepOutcome] {
        let failing = Set(batch.entries.filter { e in
            guard e.history.first == marker else { return false }
            let n = steps.withLock { s -> Int in s[e.requestID, default: 0] += 1; return s[e.requestID]! }
            return n > afterSteps
        }.map(\.requestID))
        if failing.isEmpty { return try inner.step(batch) }
        if mode == .throwStep { throw InjectedFault() }
        let healthy = try inner.step(batch.filtered { !failing.contains($0.requestID) })
        var it = healthy.makeIterator()
        return batch.entries.map { e in failing.contains(e.requestID) ? .failed("injected fault in request \(e.requestID)") : (it.next() ?? .fed) }
    }
}

@Suite("Fault injection")
struct FaultInjectionTests {
    static let marker = 499

    @Test(arguments: TestFamily.allCases)
    func aFailingSequenceEndsWithErrorAndTheOthersAreUntouched(family: TestFamily) async throws {
        let engine = try CALMEngine(family: FaultyFamily(try family.makeFamily(), marker: Self.marker, afterSteps: 3, mode: .failSequence),
                                    configuration: EngineConfiguration(kvCacheBytes: 64 << 20, blockChunks: 4))
        let free = engine.kvBlocksFree
        let prompts = (0..<6).map { i in i == 2 ? [Self.marker] + EngineFixtures.prompt(i, length: 6) : EngineFixtures.prompt(i) }
        let p = { (i: Int) in family.plain(maxTokens: 12 * family.unit, seed: UInt64(i)) }
        let streams = try prompts.enumerated().map { try engine.generate(prompt: .tokens($0.element), parameters: p($0.offset)) }
        let results = await withTaskGroup(of: (Int, [Int], CompletionInfo?).self) { group in
            for (i, s) in streams.enumerated() { group.addTask { let r = await EngineFixtures.collect(s); return (i, r.tokens, r.info) } }
            var all: [(Int, [Int], CompletionInfo?)] = []
            for await r in group { all.append(r) }
            return all.sorted { $0.0 < $1.0 }
        }
        for (i, tokens, info) in results {
            if i == 2 {
                guard case let .error(message)? = info?.reason else { Issue.record("request 2 ended with \(String(describing: info?.reason))"); continue }
                #expect(message.contains("injected fault"))
                #expect(tokens.count == 3 * family.unit)   // three good steps, then the fault
            } else {
                let solo = await EngineFixtures.collect(try family.engine().generate(prompt: .tokens(prompts[i]), parameters: p(i)))
                #expect(info?.reason == .maxTokens)
                #expect(tokens == solo.tokens, "request \(i) equals its solo run")
            }
        }
        try await waitUntil { engine.kvBlocksFree == free }
        #expect(engine.kvBlocksFree == free)
    }

    @Test(arguments: TestFamily.allCases)
    func aThrowingStepFailsItsSequencesAndTheEngineGoesOn(family: TestFamily) async throws {
        let engine = try CALMEngine(family: FaultyFamily(try family.makeFamily(), marker: Self.marker, afterSteps: 1, mode: .throwStep),
                                    configuration: EngineConfiguration(kvCacheBytes: 64 << 20, blockChunks: 4))
        let free = engine.kvBlocksFree
        let bad = await EngineFixtures.collect(try engine.generate(prompt: .tokens([Self.marker, 1, 2, 3]),
                                                                  parameters: family.plain(maxTokens: 40, seed: 1)))
        guard case let .error(message)? = bad.info?.reason else { Issue.record("ended with \(String(describing: bad.info?.reason))"); return }
        #expect(message.contains("step failed") && message.contains("injected fault"))
        // The engine still serves, and every block came back.
        let good = await EngineFixtures.collect(try engine.generate(prompt: .tokens([1, 2, 3, 4]), parameters: family.plain(maxTokens: 8, seed: 2)))
        #expect(good.info?.reason == .maxTokens && good.tokens.count == 8)
        try await waitUntil { engine.kvBlocksFree == free }
        #expect(engine.kvBlocksFree == free)
    }
}
