import Foundation

/// The output head (spec §1.4, §5 K): the backbone's own final norm, then Linear(d→d), identity at
/// initialisation, so an untrained model's prediction is the final hidden state. ẑ is not normalised:
/// only its direction matters for the commit, but its norm matters for the blend.
///
/// Tensors: `tm.head.weight` [d, d], `tm.head.bias` [d].
public final class VectorHead: Sendable {
    /// d.
    public let hidden: Int
    let projection: Linear

    /// `projection` must map d → d.
    public init(projection: Linear) throws {
        guard projection.inFeatures == projection.outFeatures else {
            throw ModelError.invalidParameter(name: "head", reason: "must map d → d, got \(projection.inFeatures) → \(projection.outFeatures)")
        }
        hidden = projection.inFeatures
        self.projection = projection
    }

    /// The identity head (the initialisation the spec prescribes).
    public static func identity(hidden d: Int) throws -> VectorHead {
        var w = [Float](repeating: 0, count: d * d)
        for i in 0..<d { w[i * d + i] = 1 }
        return try VectorHead(projection: Linear(weight: w, outFeatures: d, inFeatures: d, bias: [Float](repeating: 0, count: d)))
    }

    static func load(reader: WeightReader, config: TokenMaturationConfig) throws -> VectorHead {
        let d = config.hiddenSize
        return try VectorHead(projection: try reader.linear("tm.head", out: d, in: d, bias: true))
    }

    /// Predictions ẑ for `rows` final hidden states.
    public func callAsFunction(_ hidden: [Float], rows: Int, pool: ComputePool) -> [Float] {
        guard rows > 0 else { return [] }
        return projection(hidden, rows: rows, pool: pool)
    }
}
