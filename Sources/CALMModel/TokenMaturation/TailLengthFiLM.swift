import CALMKernels
import Foundation

/// Tail-length conditioning (spec §1.3, Eq. 3): (γ, β) = Proj(Emb(K)), applied once to the summed
/// input of every row of a sequence as h ← (1 + γ) ⊙ h + β. It touches committed rows too, which is
/// why K must stay fixed for a whole generation if the prefix cache is to stay valid (spec §6.3).
///
/// Tensors: `tm.tail_length.embedding.weight` [max_tail_length, d] (row K − 1 for K),
/// `tm.tail_length.proj.weight` [2d, d] and `.bias` [2d] (outputs γ then β).
public final class TailLengthFiLM: Sendable {
    /// Largest K with an embedding row.
    public let maxTailLength: Int
    /// d.
    public let hidden: Int
    let embedding: [Float]
    let projection: Linear

    /// `embedding` is maxTailLength × d (row K − 1 for K); `projection` maps d → 2d (γ, then β).
    public init(embedding: [Float], maxTailLength: Int, projection: Linear) throws {
        let d = projection.inFeatures
        guard maxTailLength >= 1, embedding.count == maxTailLength * d, projection.outFeatures == 2 * d else {
            throw ModelError.invalidParameter(name: "tailLengthFiLM", reason: "embedding must be max_tail_length × d and the projection d → 2d, got \(embedding.count) floats for \(maxTailLength) rows, projection \(d) → \(projection.outFeatures)")
        }
        self.maxTailLength = maxTailLength
        hidden = d
        self.embedding = embedding
        self.projection = projection
    }

    static func load(reader: WeightReader, config: TokenMaturationConfig) throws -> TailLengthFiLM {
        let d = config.hiddenSize
        return try TailLengthFiLM(
            embedding: try reader.floats("tm.tail_length.embedding.weight", shape: [config.maxTailLength, d]),
            maxTailLength: config.maxTailLength,
            projection: try reader.linear("tm.tail_length.proj", out: 2 * d, in: d, bias: true))
    }

    /// The per-channel (scale = 1 + γ, shift = β) for tail length K.
    public func modulation(tailLength k: Int, pool: ComputePool) throws -> (scale: [Float], shift: [Float]) {
        guard k >= 1 && k <= maxTailLength else {
            throw ModelError.invalidParameter(name: "tailLength", reason: "\(k) has no tail-length embedding (1…\(maxTailLength))")
        }
        let d = hidden
        let gammaBeta = projection(Array(embedding[((k - 1) * d)..<(k * d)]), rows: 1, pool: pool)
        return (gammaBeta[0..<d].map { 1 + $0 }, Array(gammaBeta[d..<(2 * d)]))
    }

    /// h ← scale ⊙ h + shift on `rows` consecutive rows starting at row `first` of `x`.
    static func apply(_ x: inout [Float], first: Int, rows: Int, scale: [Float], shift: [Float]) {
        guard rows > 0 else { return }
        let d = scale.count
        x.withUnsafeMutableBufferPointer { xp in
            scale.withUnsafeBufferPointer { s in
                shift.withUnsafeBufferPointer { b in
                    calm_scale_shift_rows(xp.baseAddress! + first * d, Int32(rows), Int32(d), s.baseAddress!, b.baseAddress!)
                }
            }
        }
    }
}
