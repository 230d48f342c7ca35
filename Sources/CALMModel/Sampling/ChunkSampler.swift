import Foundation

/// How the next chunk is drawn from the model's implicit distribution.
public enum ChunkSamplingMethod: Sendable, Equatable {
    /// T = 1: one head sample, decoded by argmax.
    case single
    /// The reference's batch approximation for T = 1/n: `samples` head samples per step,
    /// selection among repeats (Algorithm 2).
    case batchApproximation(temperature: Double, samples: Int)

    /// Validates the parameters (T = 1/n with n ≥ 1, samples ≥ 1). T = 1 becomes `.single`, as
    /// in the reference, whatever the sample count.
    public func validated() throws -> ChunkSamplingMethod {
        if case let .batchApproximation(t, samples) = self {
            let level = try BatchApproximation.level(forTemperature: t)
            guard samples >= 1 else {
                throw ModelError.invalidParameter(name: "samples", reason: "must be at least 1, got \(samples)")
            }
            if level == 1 { return .single }
        }
        return self
    }
}

/// One sequence's draw for one step.
public struct ChunkDraw: Sendable {
    /// The chosen chunk (K ids), before any end-of-text masking.
    public var chunk: [Int32]
    /// Head samples drawn.
    public var samplesDrawn: Int
    /// The decoded pool (batch approximation only; N chunks).
    public var pool: [[Int32]] = []
    /// The selection (batch approximation only).
    public var selection: BatchApproximation.Selection?
    /// The latent behind `chunk` (single sampling only).
    public var latent: [Float] = []
}

extension CALMModel {
    /// Draws the next chunk for each of `rows` hidden states (rows × hidden). Row r's noise and
    /// selection draws come from `randomness[r]` only, so a row's result is independent of the
    /// others (the kernels' rows are independent too).
    public func sampleChunks(hidden: [Float], rows: Int, method: ChunkSamplingMethod,
                             randomness: [SequenceRandomness], record: ActivationRecorder? = nil) throws -> [ChunkDraw] {
        precondition(randomness.count == rows && hidden.count == rows * config.hiddenSize)
        let k = patchSize
        let eps = config.noiseSize
        switch try method.validated() {
        case .single:
            var noise: [Float] = []
            noise.reserveCapacity(rows * eps)
            for r in 0..<rows { noise += randomness[r].uniformFloats(count: eps).map { $0 - 0.5 } }
            let latents = head.sample(hiddenStates: hidden, rows: rows, samplesPerRow: 1, noise: noise, pool: pool, record: record)
            let tokens = autoencoder.decodeTokens(latents, rows: rows, pool: pool)
            let z = config.latentSize
            return (0..<rows).map { r in
                ChunkDraw(chunk: Array(tokens[(r * k)..<((r + 1) * k)]), samplesDrawn: 1,
                          latent: Array(latents[(r * z)..<((r + 1) * z)]))
            }
        case let .batchApproximation(t, n):
            let level = try BatchApproximation.level(forTemperature: t)
            var noise: [Float] = []
            noise.reserveCapacity(rows * n * eps)
            for r in 0..<rows { noise += randomness[r].uniformFloats(count: n * eps).map { $0 - 0.5 } }
            let latents = head.sample(hiddenStates: hidden, rows: rows, samplesPerRow: n, noise: noise, pool: pool, record: record)
            let tokens = autoencoder.decodeTokens(latents, rows: rows * n, pool: pool)
            return (0..<rows).map { r in
                let pool = (0..<n).map { j in Array(tokens[((r * n + j) * k)..<((r * n + j + 1) * k)]) }
                let selection = BatchApproximation.select(pool: pool, level: level, u: randomness[r].uniformDouble())
                return ChunkDraw(chunk: selection.chunk, samplesDrawn: n, pool: pool, selection: selection)
            }
        }
    }
}
