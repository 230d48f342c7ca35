import CALMKernels
import Foundation

/// The energy generative head (`MLPGenerator`): maps a conditioning hidden state plus uniform
/// noise in [−0.5, 0.5) to one latent vector. Stateless; the noise comes from the caller.
public final class EnergyHead: Sendable {
    struct Block {
        let inNorm: LayerNorm
        let l0: Linear, l2: Linear, l4: Linear
        let down: Linear
    }

    public let hidden: Int
    public let noiseSize: Int
    public let latentSize: Int
    let noiseEmbed: Linear
    let hiddenEmbed: Linear
    let normNoise: LayerNorm
    let normHidden: LayerNorm
    let blocks: [Block]
    let finalNorm: LayerNorm
    let final0: Linear
    let final2: Linear

    init(config: CALMConfig, reader: WeightReader) throws {
        hidden = config.hiddenSize
        noiseSize = config.noiseSize
        latentSize = config.latentSize
        let h = config.hiddenSize
        // The reference registers the head twice (`mlp_generator` and `generative_head`); either name works.
        let stems = ["mlp_generator", "generative_head"]
        func names(_ suffix: String) -> [String] { stems.map { "\($0).\(suffix)" } }
        noiseEmbed = try reader.linear(names("noise_embd"), out: h, in: config.noiseSize, bias: true)
        hiddenEmbed = try reader.linear(names("hidden_embd"), out: h, in: h, bias: true)
        normNoise = try reader.layerNorm(names("norm_noise"), size: h)
        normHidden = try reader.layerNorm(names("norm_hidden"), size: h)
        blocks = try (0..<config.numMLPLayers).map { m in
            let p = "mlp_blocks.\(m)"
            return Block(inNorm: try reader.layerNorm(names("\(p).in_ln"), size: h),
                         l0: try reader.linear(names("\(p).linears.0"), out: h, in: 2 * h, bias: true),
                         l2: try reader.linear(names("\(p).linears.2"), out: h, in: h, bias: true),
                         l4: try reader.linear(names("\(p).linears.4"), out: 2 * h, in: h, bias: true),
                         down: try reader.linear(names("\(p).down_proj"), out: h, in: h, bias: true))
        }
        finalNorm = try reader.layerNorm(names("final_layer.in_ln"), size: h)
        final0 = try reader.linear(names("final_layer.linears.0"), out: h, in: h, bias: true)
        final2 = try reader.linear(names("final_layer.linears.2"), out: config.latentSize, in: h, bias: true)
    }

    /// Bytes of weights one pass reads.
    public var weightBytes: Int {
        noiseEmbed.weightBytes + hiddenEmbed.weightBytes + final0.weightBytes + final2.weightBytes
            + blocks.reduce(0) { $0 + $1.l0.weightBytes + $1.l2.weightBytes + $1.l4.weightBytes + $1.down.weightBytes }
    }

    /// Draws `samplesPerRow` latents for each of `rows` hidden states.
    ///
    /// - Parameters:
    ///   - hiddenStates: rows × hidden.
    ///   - noise: (rows · samplesPerRow) × noiseSize values already shifted to [−0.5, 0.5);
    ///     sample j of row r uses noise row r·samplesPerRow + j.
    /// - Returns: (rows · samplesPerRow) × latentSize.
    public func sample(hiddenStates: [Float], rows: Int, samplesPerRow: Int, noise: [Float],
                       pool: ComputePool, record: ActivationRecorder? = nil) -> [Float] {
        sample(hiddenStates: hiddenStates, sampleCounts: [Int](repeating: samplesPerRow, count: rows), noise: noise,
               pool: pool, record: record)
    }

    /// Draws `sampleCounts[r]` latents for hidden row r (rows may ask for different counts, so
    /// sequences with different samplers share one batch). Noise and output rows are the samples
    /// of row 0, then row 1, and so on.
    public func sample(hiddenStates: [Float], sampleCounts: [Int], noise: [Float],
                       pool: ComputePool, record: ActivationRecorder? = nil) -> [Float] {
        let h = hidden
        let rows = sampleCounts.count
        let n = sampleCounts.reduce(0, +)
        precondition(hiddenStates.count == rows * h && noise.count == n * noiseSize)
        var e = noiseEmbed(noise, rows: n, pool: pool)
        record?("noise_embd_out", e)
        normNoise.apply(&e, rows: n)
        record?("norm_noise_out", e)
        // The hidden path is the same for all samples of a row: compute it once per row and
        // broadcast (kernel rows are independent, so this equals the reference's repeat).
        var y = hiddenEmbed(hiddenStates, rows: rows, pool: pool)
        record?("hidden_embd_out", y)
        normHidden.apply(&y, rows: rows)
        record?("norm_hidden_out", y)
        // a = concat(LN_in(e), y) per sample; the y half never changes, so fill it once.
        var a = [Float](repeating: 0, count: n * 2 * h)
        a.withUnsafeMutableBufferPointer { ap in
            y.withUnsafeBufferPointer { yp in
                var sample = 0
                for r in 0..<rows {
                    for _ in 0..<sampleCounts[r] {
                        (ap.baseAddress! + sample * 2 * h + h).update(from: yp.baseAddress! + r * h, count: h)
                        sample += 1
                    }
                }
            }
        }
        var t1 = [Float](repeating: 0, count: n * h)
        var t2 = [Float](repeating: 0, count: n * h)
        var t4 = [Float](repeating: 0, count: n * 2 * h)
        for (m, block) in blocks.enumerated() {
            let normed = block.inNorm(e, rows: n)
            a.withUnsafeMutableBufferPointer { ap in
                normed.withUnsafeBufferPointer { np in
                    for i in 0..<n { (ap.baseAddress! + i * 2 * h).update(from: np.baseAddress! + i * h, count: h) }
                }
                t1.withUnsafeMutableBufferPointer { block.l0.apply(ap.baseAddress!, rows: n, into: $0.baseAddress!, pool: pool) }
            }
            Activation.silu(&t1)
            t1.withUnsafeBufferPointer { p in t2.withUnsafeMutableBufferPointer { block.l2.apply(p.baseAddress!, rows: n, into: $0.baseAddress!, pool: pool) } }
            Activation.silu(&t2)
            t2.withUnsafeBufferPointer { p in t4.withUnsafeMutableBufferPointer { block.l4.apply(p.baseAddress!, rows: n, into: $0.baseAddress!, pool: pool) } }
            // gate = first h features, up = last h; t1 ← SiLU(gate) ⊙ up.
            t4.withUnsafeBufferPointer { p in
                t1.withUnsafeMutableBufferPointer { o in
                    for i in 0..<n {
                        calm_swiglu(p.baseAddress! + i * 2 * h, p.baseAddress! + i * 2 * h + h, o.baseAddress! + i * h, h)
                    }
                }
            }
            t1.withUnsafeBufferPointer { p in e.withUnsafeMutableBufferPointer { block.down.apply(p.baseAddress!, rows: n, into: $0.baseAddress!, accumulate: true, pool: pool) } }
            record?("block\(m)_out", e)
        }
        finalNorm.apply(&e, rows: n)
        var f = final0(e, rows: n, pool: pool)
        Activation.silu(&f)
        let latent = final2(f, rows: n, pool: pool)
        record?("latent", latent)
        return latent
    }
}
