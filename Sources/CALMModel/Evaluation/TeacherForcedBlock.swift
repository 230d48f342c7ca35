import Foundation

/// The reference's evaluation forward on one block (`model(input_ids, labels)` in eval mode):
/// the energy loss against the autoencoder's posterior, and Brier-1…4 from the first two head
/// samples at every teacher-forced position.
public struct TeacherForcedBlockResult: Sendable {
    /// Negative energy score averaged over positions (the reference's `loss`).
    public var loss: Double
    /// Per position, per n in 1…4: 1{x₁ n-gram = y} + 1{x₂ = y} − 1{x₁ = x₂} (K ≥ 4).
    public var brierTerms: [[Double]]
    /// Mean of `brierTerms` over positions: Brier-1…4.
    public var brier: [Double]
    /// Per position, per n: accuracy indicators of sample 1 and 2, and the collision indicator.
    public var accuracy1: [[Double]], accuracy2: [[Double]], collision: [[Double]]
    /// Positions predicted.
    public var positions: Int
}

extension CALMModel {
    /// Evaluates one block of whole chunks.
    ///
    /// - Parameters:
    ///   - ids: the block, a multiple of K tokens (L chunks ⇒ L − 1 predicted positions).
    ///   - samples: head samples per position (the reference's `num_samples`, 8).
    ///   - headUniform: `samples × positions × noiseSize` uniforms (the reference's `torch.rand`),
    ///     sample-major.
    ///   - targetNoise: `m × positions × latent` standard normals for the m posterior samples
    ///     (the reference's `torch.randn`, m = 100); nil skips the energy loss.
    public func evaluateTeacherForced(ids: [Int], samples: Int, headUniform: [Float],
                                      targetNoise: [Float]?, posteriorSamples: Int = 100) throws -> TeacherForcedBlockResult {
        let k = patchSize, z = config.latentSize, eps = config.noiseSize
        guard ids.count % k == 0, ids.count / k >= 2 else {
            throw ModelError.invalidPrompt(reason: "an evaluation block needs at least two whole chunks of \(k) tokens, got \(ids.count) tokens")
        }
        guard k >= 4 else {
            throw ModelError.invalidParameter(name: "patch_size", reason: "teacher-forced Brier for K < 4 needs the autoregressive continuation (CALMEvaluation)")
        }
        guard samples >= 2 else { throw ModelError.invalidParameter(name: "samples", reason: "Brier needs at least 2 samples") }
        let chunks = ids.count / k
        let positions = chunks - 1
        precondition(headUniform.count == samples * positions * eps)
        let cache = makeCache()
        defer { cache.release() }
        let hidden = try forward(chunks: [Array(ids[0..<(positions * k)])], caches: [cache])
        // Head noise: reference order is (sample, position); the head wants position-major rows.
        var noise = [Float](repeating: 0, count: samples * positions * eps)
        for i in 0..<samples {
            for p in 0..<positions {
                for e in 0..<eps { noise[(p * samples + i) * eps + e] = headUniform[(i * positions + p) * eps + e] - 0.5 }
            }
        }
        let latents = head.sample(hiddenStates: hidden, rows: positions, samplesPerRow: samples, noise: noise, pool: pool)
        func latent(_ i: Int, _ p: Int) -> ArraySlice<Float> { latents[((p * samples + i) * z)..<((p * samples + i + 1) * z)] }

        // Energy loss.
        var loss = 0.0
        if let targetNoise {
            let m = posteriorSamples
            precondition(targetNoise.count == m * positions * z)
            let stats = autoencoder.encode(Array(ids[k...]), pool: pool)
            var scoreSum = 0.0
            for p in 0..<positions {
                var dx = 0.0
                for i in 0..<samples { for j in 0..<samples where i != j { dx += distance(latent(i, p), latent(j, p)) } }
                dx /= Double(samples * (samples - 1))
                var dy = 0.0
                for mm in 0..<m {
                    var y = [Float](repeating: 0, count: z)
                    for d in 0..<z {
                        let mean = stats[p * 2 * z + d], logStd = stats[p * 2 * z + z + d]
                        y[d] = mean + targetNoise[(mm * positions + p) * z + d] * expf(logStd)
                    }
                    for i in 0..<samples { dy += distance(latent(i, p), y[...]) }
                }
                dy /= Double(samples * m)
                scoreSum += dx - 2 * dy
            }
            loss = -scoreSum / Double(positions)
        }

        // Brier terms from samples 0 and 1.
        var first: [Float] = [], second: [Float] = []
        for p in 0..<positions { first += latent(0, p); second += latent(1, p) }
        let t1 = autoencoder.decodeTokens(first, rows: positions, pool: pool)
        let t2 = autoencoder.decodeTokens(second, rows: positions, pool: pool)
        var acc1 = [[Double]](), acc2 = [[Double]](), coll = [[Double]](), terms = [[Double]]()
        for p in 0..<positions {
            var a1 = 1.0, a2 = 1.0, c = 1.0
            var r1 = [Double](), r2 = [Double](), rc = [Double](), rt = [Double]()
            for j in 0..<4 {
                let target = ids[(p + 1) * k + j]
                a1 *= Int(t1[p * k + j]) == target ? 1 : 0
                a2 *= Int(t2[p * k + j]) == target ? 1 : 0
                c *= t1[p * k + j] == t2[p * k + j] ? 1 : 0
                r1.append(a1); r2.append(a2); rc.append(c); rt.append(a1 + a2 - c)
            }
            acc1.append(r1); acc2.append(r2); coll.append(rc); terms.append(rt)
        }
        let brier = (0..<4).map { n in terms.reduce(0) { $0 + $1[n] } / Double(positions) }
        return TeacherForcedBlockResult(loss: loss, brierTerms: terms, brier: brier, accuracy1: acc1,
                                        accuracy2: acc2, collision: coll, positions: positions)
    }
}

/// Euclidean distance in double precision.
func distance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var s = 0.0
    for (x, y) in zip(a, b) { let d = Double(x) - Double(y); s += d * d }
    return s.squareRoot()
}
