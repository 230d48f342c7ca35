import CALMModel
import Foundation

/// One planned step: which ids each sequence feeds, and whether it samples a chunk this step
/// (decoding sequences and the last slice of a prefill do; earlier prefill slices do not).
struct StepPlan: @unchecked Sendable {
    struct Entry {
        let sequence: SequenceState
        let chunks: [Int]
        let samples: Bool
    }
    var entries: [Entry] = []
    var isEmpty: Bool { entries.isEmpty }
}

/// A sequence's sampled chunk for one step.
struct StepDraw: Sendable {
    var chunk: [Int]
    var samplesDrawn: Int
    var level: Int?
    var truncated: Bool
}

/// Runs a step on the compute thread: one backbone pass for every sequence's new chunks (one
/// batched multiply per weight matrix), then the head and decoder once for all samples of all
/// sequences (repeated in rounds only for exact-rejection sequences still undecided).
enum StepExecutor {
    static func run(model: CALMModel, plan: StepPlan, drawsPerRound: Int, statistics: EngineStatisticsRecorder) -> [StepDraw?] {
        let start = DispatchTime.now().uptimeNanoseconds
        let caches = plan.entries.map { $0.sequence.cache! }
        let hidden: [Float]
        do { hidden = try model.forward(chunks: plan.entries.map(\.chunks), caches: caches) } catch {
            preconditionFailure("forward failed after validation: \(error)")
        }
        let forwardDone = DispatchTime.now().uptimeNanoseconds
        var decoded = 0
        defer {
            let end = DispatchTime.now().uptimeNanoseconds
            statistics.record(backbone: Double(forwardDone - start) / 1e9, sampling: Double(end - forwardDone) / 1e9,
                              samples: decoded, rows: hidden.count / model.config.hiddenSize)
        }
        let h = model.config.hiddenSize, k = model.patchSize, eps = model.config.noiseSize
        // The last position of each sampling sequence.
        var samplers: [(entry: Int, hidden: ArraySlice<Float>)] = []
        var row = 0
        for (i, e) in plan.entries.enumerated() {
            row += e.chunks.count / k
            if e.samples { samplers.append((i, hidden[((row - 1) * h)..<(row * h)])) }
        }
        var draws = [StepDraw?](repeating: nil, count: plan.entries.count)
        guard !samplers.isEmpty else { return draws }

        enum Mode { case single, batch(level: Int, samples: Int), exact(ExactRejectionSampler<[Int32]>) }
        var modes: [Mode] = samplers.map { s in
            let p = plan.entries[s.entry].sequence.parameters
            switch p.sampler {
            case .single: return .single
            case let .batchApproximation(n):
                let level = (try? BatchApproximation.level(forTemperature: p.temperature)) ?? 1
                return level == 1 ? .single : .batch(level: level, samples: n)
            case let .exactRejection(maxDraws):
                if p.temperature == 1 { return .single }
                return .exact(try! ExactRejectionSampler<[Int32]>(temperature: p.temperature, maxDraws: maxDraws))
            }
        }
        var unresolved = Array(samplers.indices)
        var drawn = [Int](repeating: 0, count: samplers.count)
        while !unresolved.isEmpty {
            let counts = unresolved.map { j -> Int in
                switch modes[j] {
                case .single: return 1
                case let .batch(_, n): return n
                case let .exact(s): return min(drawsPerRound, s.maxDraws - s.draws)
                }
            }
            var rowsHidden: [Float] = []
            var noise: [Float] = []
            for (j, c) in zip(unresolved, counts) {
                rowsHidden += samplers[j].hidden
                noise += plan.entries[samplers[j].entry].sequence.randomness.uniformFloats(count: c * eps).map { $0 - 0.5 }
            }
            let latents = model.head.sample(hiddenStates: rowsHidden, sampleCounts: counts, noise: noise, pool: model.pool)
            let tokens = model.autoencoder.decodeTokens(latents, rows: counts.reduce(0, +), pool: model.pool)
            decoded += counts.reduce(0, +)
            var offset = 0
            var still: [Int] = []
            for (j, c) in zip(unresolved, counts) {
                let chunks = (0..<c).map { Array(tokens[((offset + $0) * k)..<((offset + $0 + 1) * k)]) }
                offset += c
                drawn[j] += c
                let e = samplers[j].entry
                let rng = plan.entries[e].sequence.randomness
                switch modes[j] {
                case .single:
                    draws[e] = StepDraw(chunk: chunks[0].map(Int.init), samplesDrawn: 1, level: nil, truncated: false)
                case let .batch(level, n):
                    let s = BatchApproximation.select(pool: chunks, level: level, u: rng.uniformDouble())
                    draws[e] = StepDraw(chunk: s.chunk.map(Int.init), samplesDrawn: n, level: s.level, truncated: false)
                case var .exact(sampler):
                    var accepted: [Int32]?
                    for chunk in chunks where accepted == nil {
                        accepted = sampler.consume(chunk) { rng.uniformDouble() }
                    }
                    modes[j] = .exact(sampler)
                    if let accepted {
                        draws[e] = StepDraw(chunk: accepted.map(Int.init), samplesDrawn: drawn[j], level: nil, truncated: sampler.truncated)
                    } else {
                        still.append(j)
                    }
                }
            }
            unresolved = still
        }
        return draws
    }
}
