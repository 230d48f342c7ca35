import CALMEngine
import CALMModel
import Foundation
import Testing

/// A bounded soak: waves of mixed requests over every family's engine — every sampler, random
/// cancellations (leaving the loop, cancelling the task), stalled consumers, pathological and
/// invalid parameters — checking that every stream ends exactly once, the KV pool is full again
/// after every wave, resident memory is flat across waves, and a seeded re-run of a wave gives the
/// same tokens to every request it read to the end.
///
/// It needs a process of its own for the memory reading to mean anything, so it runs only when
/// `CALM_SOAK` is set: `.ci/run` runs `CALM_SOAK=1 swift test --filter Soak` after the main suite.
@Suite("Soak", .enabled(if: SoakPlan.enabled, "set CALM_SOAK=1 to run the soak (.ci/run does, in a process of its own)"))
struct SoakTests {
    @Test func wavesOfMixedRequestsLeaveNothingBehind() async throws {
        let waves = SoakPlan.waves
        var engines: [TestFamily: CALMEngine] = [:]
        for f in TestFamily.allCases { engines[f] = try f.engine(kvCacheBytes: 32 << 20, streamBufferLimit: 2) }
        let full = engines.mapValues(\.kvBlocksFree)

        var residentAfterWave: [Int] = []
        var firstWave: [String: [Int]] = [:]
        var tally = SoakTally()
        for wave in 0..<waves {
            // The last wave replays the first one's plan: same requests, same seeds.
            let planSeed = wave == waves - 1 ? 0 : UInt64(wave)
            var outputs: [String: [Int]] = [:]
            for family in TestFamily.allCases {
                guard let engine = engines[family] else { continue }
                let r = try await SoakPlan.runWave(engine: engine, family: family, seed: planSeed)
                tally.add(r.tally)
                for (k, v) in r.completedTokens { outputs["\(family)/\(k)"] = v }
                try await waitUntil { engine.kvBlocksFree == full[family] }
                #expect(engine.kvBlocksFree == full[family], "wave \(wave) \(family): KV pool back to full")
            }
            if wave == 0 { firstWave = outputs }
            if wave == waves - 1 {
                let shared = Set(firstWave.keys).intersection(outputs.keys)
                #expect(shared.count >= 20, "enough requests read to the end in both runs: \(shared.count)")
                for k in shared.sorted() { #expect(firstWave[k] == outputs[k], "seeded re-run of \(k)") }
            }
            residentAfterWave.append(SoakPlan.residentBytes())
        }
        let mib = residentAfterWave.map { Double($0) / 1048576 }
        print("soak: \(waves) waves, \(tally); resident MiB after each wave: \(mib.map { String(format: "%.1f", $0) })")
        #expect(tally.endedTwice == 0 && tally.eventsAfterEnd == 0 && tally.neverEnded == 0)
        #expect(tally.typedErrors > 0 && tally.cancelled > 0 && tally.stalled > 0 && tally.completed > 0)
        // Flat: after two warm-up waves, resident memory grows by less than 8 MiB over the rest (0.7 MiB measured).
        if mib.count > 3, let last = mib.last {
            let grown = last - mib[2]
            #expect(grown < 8, "resident memory grew \(grown) MiB after the warm-up: \(mib)")
        }
    }
}

/// What a soak wave saw.
struct SoakTally: CustomStringConvertible, Sendable {
    var completed = 0, cancelled = 0, stalled = 0, typedErrors = 0, errors = 0
    var endedTwice = 0, eventsAfterEnd = 0, neverEnded = 0
    mutating func add(_ o: SoakTally) {
        completed += o.completed; cancelled += o.cancelled; stalled += o.stalled; typedErrors += o.typedErrors
        errors += o.errors; endedTwice += o.endedTwice; eventsAfterEnd += o.eventsAfterEnd; neverEnded += o.neverEnded
    }
    var description: String {
        "completed \(completed), cancelled \(cancelled), stalled then read \(stalled), typed errors at the call \(typedErrors), "
            + "ended with an error \(errors), ended twice \(endedTwice), events after the end \(eventsAfterEnd), never ended \(neverEnded)"
    }
}

enum SoakPlan {
    static var enabled: Bool { ProcessInfo.processInfo.environment["CALM_SOAK"] != nil }
    /// Waves (`CALM_SOAK_WAVES`, default 6; at least 4, since the last replays the first).
    static var waves: Int { max(4, Int(ProcessInfo.processInfo.environment["CALM_SOAK_WAVES"] ?? "") ?? 6) }
    static let requestsPerWave = 40

    /// How a request's consumer behaves.
    enum Behaviour: CaseIterable { case read, breakAfter, cancelTask, stall, pathological }

    /// Resident set size of this process (Linux `/proc/self/statm`).
    static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = s.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    /// A bad or extreme request for `family`: invalid ones must be typed errors at the call; the
    /// CALM exact sampler at T = 0.01 is valid but can never resolve, so it pauses between steps.
    static func pathological(_ family: TestFamily, _ pick: Int) -> SamplingParameters {
        var p: SamplingParameters
        switch (family, pick % 4) {
        case (.calm, 0): p = SamplingParameters(temperature: 0.01, sampler: .exactRejection(maxDraws: Sampler.maxDrawsLimit))
        case (.calm, 1): p = SamplingParameters(temperature: 1e-20, sampler: .batchApproximation(samples: 8))
        case (.calm, 2): p = SamplingParameters(temperature: 0.5, sampler: .batchApproximation(samples: .max))
        case (.calm, _): p = SamplingParameters(temperature: .nan, sampler: .exactRejection(maxDraws: 10))
        case (.llama, 0): p = SamplingParameters(temperature: .infinity)
        case (.llama, 1): p = SamplingParameters(topK: .min)
        case (.llama, 2): p = SamplingParameters(temperature: 0.5, minP: -1)
        case (.llama, _): p = SamplingParameters(presencePenalty: .infinity)
        case (.tm, 0): p = SamplingParameters(maturation: TokenMaturationParameters(tailLength: .max))
        case (.tm, 1): p = SamplingParameters(maturation: TokenMaturationParameters(guidanceScale: .nan))
        case (.tm, 2): p = SamplingParameters(maturation: { var m = TokenMaturationParameters(); m.innerIterations = .max; return m }())
        case (.tm, _): p = SamplingParameters(maturation: { var m = TokenMaturationParameters(); m.tailNoise = -.infinity; return m }())
        }
        p.maxTokens = .max
        p.seed = UInt64(pick)
        return p
    }

    /// One wave on one engine: `requestsPerWave` requests whose parameters and consumers are drawn
    /// from `seed`. Returns the tokens of every request read to the end, keyed by its index.
    static func runWave(engine: CALMEngine, family: TestFamily, seed: UInt64) async throws -> (completedTokens: [Int: [Int]], tally: SoakTally) {
        var rng = SplitMix(seed: seed &* 0x9E37_79B9 &+ UInt64(TestFamily.allCases.firstIndex(of: family) ?? 0))
        var tally = SoakTally()
        return try await withThrowingTaskGroup(of: (Int, [Int]?, SoakTally).self) { group in
            for i in 0..<requestsPerWave {
                let behaviour = Behaviour.allCases[Int(rng.next() % UInt64(Behaviour.allCases.count))]
                let sampler = family.samplers[Int(rng.next() % UInt64(family.samplers.count))].1
                var p = sampler
                p.maxTokens = family.unit * (1 + Int(rng.next() % 10))
                p.seed = UInt64(i) &+ seed &* 1000
                p.stopAtEndToken = rng.next() % 2 == 0
                let promptLength = 1 + Int(rng.next() % 20)
                let cutAfter = 1 + Int(rng.next() % 4)
                if behaviour == .pathological { p = pathological(family, Int(rng.next() % 1000)) }
                let stream: GenerationStream
                do {
                    stream = try engine.generate(prompt: .tokens(EngineFixtures.prompt(i + Int(seed) * 7, length: promptLength)), parameters: p)
                } catch is EngineError {
                    tally.typedErrors += 1
                    continue
                }
                group.addTask {
                    var t = SoakTally()
                    switch behaviour {
                    case .read, .stall:
                        if behaviour == .stall { try await Task.sleep(nanoseconds: 50_000_000); t.stalled += 1 }
                        let (tokens, ends, after) = await readToEnd(stream)
                        t.record(ends: ends, after: after)
                        if case .error? = ends.first { t.errors += 1; return (i, nil, t) }
                        t.completed += 1
                        return (i, tokens, t)
                    case .breakAfter:
                        var n = 0
                        for await e in stream { if case .chunk = e { n += 1 }; if n >= cutAfter { break } }
                        t.cancelled += 1
                        return (i, nil, t)
                    case .cancelTask, .pathological:
                        let reader = Task { await readToEnd(stream) }
                        try await Task.sleep(nanoseconds: UInt64(cutAfter) * 3_000_000)
                        reader.cancel()
                        let (_, ends, after) = await reader.value
                        t.record(ends: ends, after: after)
                        t.cancelled += 1
                        return (i, nil, t)
                    }
                }
            }
            var tokens: [Int: [Int]] = [:]
            for try await (i, out, t) in group {
                tally.add(t)
                if let out { tokens[i] = out }
            }
            return (tokens, tally)
        }
    }

    /// Reads a stream to its end: its tokens, every `.completed` reason it saw, and events after the first.
    static func readToEnd(_ stream: GenerationStream) async -> ([Int], [CompletionReason], Int) {
        var tokens: [Int] = [], ends: [CompletionReason] = [], after = 0
        for await e in stream {
            if !ends.isEmpty { after += 1 }
            switch e {
            case let .chunk(c): tokens += c.tokens
            case let .completed(info): ends.append(info.reason)
            }
        }
        return (tokens, ends, after)
    }
}

extension SoakTally {
    mutating func record(ends: [CompletionReason], after: Int) {
        if ends.isEmpty { neverEnded += 1 }
        if ends.count > 1 { endedTwice += 1 }
        eventsAfterEnd += after
    }
}

/// A small seeded generator for the plan (SplitMix64), independent of the engine's randomness.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
