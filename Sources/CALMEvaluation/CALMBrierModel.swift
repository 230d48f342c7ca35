import CALMModel
import Foundation

/// CALM under the BrierLM protocol: one backbone pass over all chunks of a block, every
/// position's head samples in one head call, and both Brier samples of all positions in one
/// decoder call; K < 4 continuations fork the block's KV cache per window and run one batched
/// backbone step, head call and decoder call per group and step.
public final class CALMBrierModel: BrierEvaluable {
    public let model: CALMModel
    /// Also compute the reference's energy loss (8 head samples per position and 100 posterior
    /// samples of the target chunk's latent), as `eval_loss`.
    public let energyLoss: Bool
    /// Head samples per position (the reference draws `num_samples` = 8; 2 suffice for Brier).
    public let samples: Int
    /// Posterior samples for the energy loss (the reference's 100).
    public let posteriorSamples: Int
    private var base: KVCache?
    private var forks: [Int: KVCache] = [:]

    public init(model: CALMModel, energyLoss: Bool = false, posteriorSamples: Int = 100) {
        self.model = model
        self.energyLoss = energyLoss
        self.samples = energyLoss ? max(model.config.numSamples, 2) : 2
        self.posteriorSamples = posteriorSamples
    }

    public var chunkSize: Int { model.patchSize }
    public var noiseWidth: Int { model.config.noiseSize }

    public func teacherForced(block: [Int], blockIndex: Int, noise: EvaluationNoise) throws -> TeacherForcedSamples {
        let k = model.patchSize, eps = model.config.noiseSize, z = model.config.latentSize
        let positions = block.count / k - 1
        let cache = model.makeCache()
        base = cache
        let hidden = try model.forward(chunks: [Array(block[0..<(positions * k)])], caches: [cache])
        // Reference order is (sample, position); the head wants position-major rows.
        let uniform = noise.teacherForcedUniforms(block: blockIndex, samples: samples, positions: positions, width: eps)
        var headNoise = [Float](repeating: 0, count: samples * positions * eps)
        uniform.withUnsafeBufferPointer { u in
            headNoise.withUnsafeMutableBufferPointer { n in
                for i in 0..<samples {
                    for p in 0..<positions {
                        let from = (i * positions + p) * eps, to = (p * samples + i) * eps
                        for e in 0..<eps { n[to + e] = u[from + e] - 0.5 }
                    }
                }
            }
        }
        let latents = model.head.sample(hiddenStates: hidden, rows: positions, samplesPerRow: samples, noise: headNoise, pool: model.pool)
        // Samples 1 and 2 of every position, decoded in one call: rows [s1 of all positions, s2 of all].
        var pair = [Float](repeating: 0, count: 2 * positions * z)
        for s in 0..<2 {
            for p in 0..<positions {
                let from = (p * samples + s) * z, to = (s * positions + p) * z
                for d in 0..<z { pair[to + d] = latents[from + d] }
            }
        }
        let tokens = model.autoencoder.decodeTokens(pair, rows: 2 * positions, pool: model.pool)
        var result = TeacherForcedSamples(first: Array(tokens[0..<(positions * k)]),
                                          second: Array(tokens[(positions * k)...]), positions: positions)
        if energyLoss {
            let normals = noise.posteriorNormals(block: blockIndex, count: posteriorSamples * positions * z)
            result.energyLoss = energyScoreLoss(block: block, latents: latents, positions: positions, normals: normals)
        }
        return result
    }

    /// The reference's energy loss: −mean over positions of D_x − 2·D_y with D_x the mean
    /// distance between distinct head samples and D_y the mean distance from head samples to
    /// posterior samples y = μ + η·σ of the target chunk's latent (β = 1).
    func energyScoreLoss(block: [Int], latents: [Float], positions: Int, normals: [Float]) -> Double {
        let k = model.patchSize, z = model.config.latentSize, m = posteriorSamples, s = samples
        let stats = model.autoencoder.encode(Array(block[k...]), pool: model.pool)
        var total = 0.0
        var y = [Float](repeating: 0, count: z)
        for p in 0..<positions {
            func sample(_ i: Int) -> ArraySlice<Float> { latents[((p * s + i) * z)..<((p * s + i + 1) * z)] }
            var dx = 0.0
            for i in 0..<s { for j in 0..<s where i != j { dx += distance(sample(i), sample(j)) } }
            dx /= Double(s * (s - 1))
            var dy = 0.0
            for mm in 0..<m {
                for d in 0..<z {
                    let mean = stats[p * 2 * z + d], logStd = stats[p * 2 * z + z + d]
                    y[d] = mean + normals[(mm * positions + p) * z + d] * expf(logStd)
                }
                for i in 0..<s { dy += distance(sample(i), y[...]) }
            }
            dy /= Double(s * m)
            total += dx - 2 * dy
        }
        return -total / Double(positions)
    }

    public func `continue`(windows: [Int], feed: [[Int]], step: Int, blockIndex: Int, noise: EvaluationNoise) throws -> [Int32] {
        guard let base else { preconditionFailure("continue before teacherForced") }
        let eps = model.config.noiseSize
        var caches: [KVCache] = []
        caches.reserveCapacity(windows.count)
        for w in windows {
            if let cache = forks[w] {
                caches.append(cache)
            } else {
                // The window's context: input chunks 0…w.
                guard let cache = base.fork(prefix: w + 1) else {
                    throw CorpusError.invalidParameter(name: "kvCache", reason: "out of KV-cache blocks")
                }
                forks[w] = cache
                caches.append(cache)
            }
        }
        let hidden = try model.forward(chunks: feed, caches: caches)
        var headNoise = [Float]()
        headNoise.reserveCapacity(windows.count * 2 * eps)
        for w in windows {
            // Per window (sample, noise) = row-major for samplesPerRow = 2.
            headNoise += noise.continuationUniforms(block: blockIndex, window: w, step: step, width: eps).map { $0 - 0.5 }
        }
        let latents = model.head.sample(hiddenStates: hidden, rows: windows.count, samplesPerRow: 2, noise: headNoise, pool: model.pool)
        return model.autoencoder.decodeTokens(latents, rows: 2 * windows.count, pool: model.pool)
    }

    public func endContinuations() {
        for cache in forks.values { cache.release() }
        forks.removeAll()
    }

    public func endBlock() {
        endContinuations()
        base?.release()
        base = nil
    }
}

/// Euclidean distance in double precision.
func distance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var s = 0.0
    for (x, y) in zip(a, b) { let d = Double(x) - Double(y); s += d * d }
    return s.squareRoot()
}
