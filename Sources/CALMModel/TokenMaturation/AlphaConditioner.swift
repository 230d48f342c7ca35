import CALMKernels
import Foundation

/// The maturity conditioning added to every input row (spec §1.3, Eq. 2): MLP(SinEmb(scale·α)),
/// with SinEmb the diffusion-timestep sinusoid (cos half then sin half, frequencies
/// maxPeriod^(−i/half)) and MLP = Linear(channels→d) · SiLU · Linear(d→d). A generation uses K + 1
/// fixed α values, so callers build a table once per run (`table(_:pool:)`).
///
/// Tensors: `tm.alpha_mlp.0.weight` [d, channels], `.0.bias` [d], `tm.alpha_mlp.2.weight` [d, d],
/// `.2.bias` [d] (PyTorch `Sequential(Linear, SiLU, Linear)` numbering).
public final class AlphaConditioner: Sendable {
    /// Sinusoid channels (even).
    public let channels: Int
    /// d.
    public let hidden: Int
    /// α is multiplied by this before the sinusoid (DDPM's 1000).
    public let scale: Float
    /// Longest period of the sinusoid.
    public let maxPeriod: Float
    let first: Linear
    let second: Linear

    /// Builds the conditioner from its two layers; they must map channels → d → d.
    public init(first: Linear, second: Linear, scale: Float = 1000, maxPeriod: Float = 10000) throws {
        guard first.inFeatures >= 2, first.inFeatures % 2 == 0, first.outFeatures == second.inFeatures,
              second.outFeatures == second.inFeatures else {
            throw ModelError.invalidParameter(name: "alphaConditioner", reason: "layers must map an even channel count → d → d, got \(first.inFeatures) → \(first.outFeatures), \(second.inFeatures) → \(second.outFeatures)")
        }
        channels = first.inFeatures
        hidden = second.outFeatures
        self.scale = scale
        self.maxPeriod = maxPeriod
        self.first = first
        self.second = second
    }

    static func load(reader: WeightReader, config: TokenMaturationConfig) throws -> AlphaConditioner {
        let d = config.hiddenSize
        return try AlphaConditioner(
            first: try reader.linear("tm.alpha_mlp.0", out: d, in: config.alphaChannels, bias: true),
            second: try reader.linear("tm.alpha_mlp.2", out: d, in: d, bias: true),
            scale: config.alphaScale, maxPeriod: config.alphaMaxPeriod)
    }

    /// SinEmb(scale·α): `channels` values, cosines first.
    public func sinusoid(_ alpha: Float) -> [Float] {
        Self.sinusoid(alpha, channels: channels, scale: scale, maxPeriod: maxPeriod)
    }

    /// SinEmb(scale·α) for any sizes (the training side builds its inputs with this, so both sides
    /// embed α identically): `channels` (even) values, cos(scale·α·f_i) then sin(scale·α·f_i) with
    /// f_i = maxPeriod^(−i/(channels/2)).
    public static func sinusoid(_ alpha: Float, channels: Int, scale: Float, maxPeriod: Float) -> [Float] {
        let half = channels / 2
        let t = Double(scale) * Double(alpha)
        var out = [Float](repeating: 0, count: channels)
        for i in 0..<half {
            let frequency = exp(-log(Double(maxPeriod)) * Double(i) / Double(half))
            out[i] = Float(cos(t * frequency))
            out[half + i] = Float(sin(t * frequency))
        }
        return out
    }

    /// The conditioning vectors of `alphas` (alphas.count × d), in one pass through the MLP.
    public func table(_ alphas: [Float], pool: ComputePool) -> [Float] {
        guard !alphas.isEmpty else { return [] }
        var embedded: [Float] = []
        embedded.reserveCapacity(alphas.count * channels)
        for a in alphas { embedded += sinusoid(a) }
        var h = first(embedded, rows: alphas.count, pool: pool)
        Activation.silu(&h)
        return second(h, rows: alphas.count, pool: pool)
    }
}
