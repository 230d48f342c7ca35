import CALMModel
@testable import CALMTraining
import Foundation
import Testing

/// Deterministic test values.
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(Int64(next() >> 11) - (1 << 52)) / Float(1 << 52) }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float() * scale } }
    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

func param(_ name: String, _ shape: [Int], _ rng: inout TestRNG, scale: Float = 1, offset: Float = 0) -> Parameter {
    Parameter(name: name, shape: shape, value: rng.floats(shape.reduce(1, *), scale: scale).map { $0 + offset })
}

/// Σ c·y in Double (the scalar whose gradient w.r.t. y is c).
func weightedSum(_ y: [Float], _ c: [Float]) -> Double {
    precondition(y.count == c.count)
    var s = 0.0
    for i in 0..<y.count { s += Double(y[i]) * Double(c[i]) }
    return s
}

/// Central differences of `loss` w.r.t. entries of `p.value` (up to `maxEntries`, spread over the
/// tensor plus its largest analytic entry) against `analytic`. Passes when
/// max |analytic − fd| ≤ tol · max(max|analytic|, floor).
func checkGradient(_ label: String, _ p: Parameter, analytic: [Float], h: Float = 1e-2, tol: Double = 2e-2,
                   maxEntries: Int = 24, floor: Double = 1e-3, loss: () -> Double,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    precondition(analytic.count == p.count, "\(label): analytic gradient size")
    var indices = Array(stride(from: 0, to: p.count, by: max(1, p.count / maxEntries)))
    if let top = analytic.indices.max(by: { abs(analytic[$0]) < abs(analytic[$1]) }) { indices.append(top) }
    let scale = max(analytic.map { Double(abs($0)) }.max() ?? 0, floor)
    var worst = 0.0, worstIndex = -1, worstFD = 0.0
    for i in indices {
        let saved = p.value[i]
        p.value[i] = saved + h
        let lp = loss()
        p.value[i] = saved - h
        let lm = loss()
        p.value[i] = saved
        let fd = (lp - lm) / (2 * Double(h))
        let err = abs(fd - Double(analytic[i]))
        if err > worst { worst = err; worstIndex = i; worstFD = fd }
    }
    #expect(worst <= tol * scale,
            "\(label): entry \(worstIndex) analytic \(worstIndex >= 0 ? analytic[worstIndex] : 0) vs finite difference \(worstFD) (scale \(scale))",
            sourceLocation: sourceLocation)
}

/// A tiny CALM + AE config for end-to-end tests (debug builds run the C kernels at -O0).
func tinyConfigs(kvHeads: Int = 1) -> (CALMConfig, AutoencoderConfig) {
    var c = CALMConfig(), a = AutoencoderConfig()
    c.vocabSize = 48; c.hiddenSize = 16; c.intermediateSize = 24; c.numHiddenLayers = 1
    c.numAttentionHeads = 2; c.numKeyValueHeads = kvHeads; c.latentSize = 4; c.noiseSize = 4; c.numMLPLayers = 1
    c.patchSize = 2; c.numSamples = 3
    c.padTokenID = 47; c.eosTokenID = 46; c.bosTokenID = 45
    a.vocabSize = 48; a.hiddenSize = 12; a.intermediateSize = 20; a.latentSize = 4; a.patchSize = 2
    a.padTokenID = 47; a.eosTokenID = 46; a.bosTokenID = 45
    return (c, a)
}

/// Writes a random tiny model folder and loads it for training.
func tinyModel(_ dir: URL, kvHeads: Int = 1, seed: UInt64 = 7) throws -> TrainableCALM {
    let (c, a) = tinyConfigs(kvHeads: kvHeads)
    let folder = dir.appendingPathComponent("calm")
    try RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: folder, seed: seed)
    return try TrainableCALM.load(directory: folder)
}

/// Perturbs every parameter a little (random models have zero biases and unit norm weights).
func jitter(_ set: ParameterSet, seed: UInt64, scale: Float = 0.1) {
    var rng = TestRNG(seed)
    for p in set.parameters { for i in 0..<p.count { p.value[i] += scale * rng.float() } }
}
