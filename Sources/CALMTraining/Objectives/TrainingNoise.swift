import CALMModel
import Foundation

/// The random values of one autoencoder training step (injected for the goldens, drawn from a
/// seeded stream in production), in the reference's draw order.
public struct AETrainingNoise: Sendable {
    /// (chunks·K) uniforms in [0, 1): a token is dropped (→ id 0) where uniform ≤ p.
    public var tokenDropoutUniform: [Float]
    /// (chunks·z) standard normals for the posterior sample.
    public var posteriorEps: [Float]
    /// (chunks·z) 0/1 keep mask of the latent dropout (Bernoulli(1 − p)).
    public var latentDropoutKeep: [Float]

    public init(tokenDropoutUniform: [Float], posteriorEps: [Float], latentDropoutKeep: [Float]) {
        self.tokenDropoutUniform = tokenDropoutUniform
        self.posteriorEps = posteriorEps
        self.latentDropoutKeep = latentDropoutKeep
    }

    public static func draw(chunks: Int, config: AutoencoderConfig, rng: SeededRandomness) -> AETrainingNoise {
        let k = config.patchSize, z = config.latentSize
        let p = Float(config.aeDropout)
        let u = rng.uniformFloats(count: chunks * k)
        let eps = rng.normalFloats(count: chunks * z)
        let keep = rng.uniformFloats(count: chunks * z).map { $0 < 1 - p ? Float(1) : 0 }
        return AETrainingNoise(tokenDropoutUniform: u, posteriorEps: eps, latentDropoutKeep: keep)
    }

    /// No dropout and the posterior mean (ε = 0): for deterministic tests.
    public static func none(chunks: Int, config: AutoencoderConfig) -> AETrainingNoise {
        AETrainingNoise(tokenDropoutUniform: [Float](repeating: 1, count: chunks * config.patchSize),
                        posteriorEps: [Float](repeating: 0, count: chunks * config.latentSize),
                        latentDropoutKeep: [Float](repeating: 1, count: chunks * config.latentSize))
    }
}

/// The random values of one energy-loss step: the head's uniform noise (S, N, noise) and the
/// target posterior samples' normals (M, N, z), drawn in that order.
public struct EnergyTrainingNoise: Sendable {
    /// (S·N·noiseSize) uniforms in [0, 1) (the head uses uniform − 0.5).
    public var headUniform: [Float]
    /// (M·N·z) standard normals.
    public var targetEps: [Float]
    /// M, the number of target samples (100 in the reference).
    public var targetSamples: Int

    public init(headUniform: [Float], targetEps: [Float], targetSamples: Int = 100) {
        self.headUniform = headUniform
        self.targetEps = targetEps
        self.targetSamples = targetSamples
    }

    public static func draw(positions n: Int, config: CALMConfig, targetSamples: Int = 100, rng: SeededRandomness) -> EnergyTrainingNoise {
        let u = rng.uniformFloats(count: config.numSamples * n * config.noiseSize)
        let e = rng.normalFloats(count: targetSamples * n * config.latentSize)
        return EnergyTrainingNoise(headUniform: u, targetEps: e, targetSamples: targetSamples)
    }
}
