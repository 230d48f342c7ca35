import CALMModel
import Foundation

/// The maturity conditioning MLP_α(SinEmb(scale·α)) of every input row (spec §1.3, gap J): the
/// sinusoid of `AlphaConditioner.sinusoid` (the inference model's, so both sides embed α the same
/// way), then `tm.alpha_mlp.0` · SiLU · `tm.alpha_mlp.2`. A batch has few distinct α values (1 for
/// clean rows, the tail profiles' values), so the MLP runs once per distinct value and its rows are
/// gathered (`RowGatherOp`).
public struct AlphaConditionerModule: Sendable {
    /// `tm.alpha_mlp.0` (channels → d).
    public let first: LinearOp
    /// `tm.alpha_mlp.2` (d → d).
    public let second: LinearOp
    /// Sinusoid channels, α's multiplier and the longest period (the config's `alpha_embedding_*`).
    public let channels: Int
    public let scale: Float
    public let maxPeriod: Float

    /// The module over `tm.alpha_mlp.*` of `p`.
    public init(parameters p: ParameterSet, channels: Int, scale: Float, maxPeriod: Float) {
        first = LinearOp(weight: p["tm.alpha_mlp.0.weight"], bias: p["tm.alpha_mlp.0.bias"])
        second = LinearOp(weight: p["tm.alpha_mlp.2.weight"], bias: p["tm.alpha_mlp.2.bias"])
        self.channels = channels
        self.scale = scale
        self.maxPeriod = maxPeriod
    }

    /// What the backward needs.
    public struct Saved: Sendable {
        /// Row → distinct-α index.
        var indices: [Int]
        var distinct: Int
        var sinusoids: [Float]
        var preActivation: [Float]
        var activation: [Float]
    }

    /// Conditioning rows (alphas.count × d).
    public func forward(alphas: [Float], pool: ComputePool?) -> (y: [Float], saved: Saved) {
        var index: [UInt32: Int] = [:]
        var values: [Float] = []
        let indices = alphas.map { a -> Int in
            if let i = index[a.bitPattern] { return i }
            index[a.bitPattern] = values.count
            values.append(a)
            return values.count - 1
        }
        var s: [Float] = []
        s.reserveCapacity(values.count * channels)
        for a in values { s += AlphaConditioner.sinusoid(a, channels: channels, scale: scale, maxPeriod: maxPeriod) }
        let h = first.forward(s, rows: values.count, pool: pool)
        let a = SiLUOp.forward(h)
        let table = second.forward(a, rows: values.count, pool: pool)
        let y = RowGatherOp.forward(table: table, width: second.outFeatures, indices: indices)
        return (y, Saved(indices: indices, distinct: values.count, sinusoids: s, preActivation: h, activation: a))
    }

    /// Accumulates the MLP's parameter gradients (α is data: no input gradient).
    public func backward(_ dy: [Float], saved: Saved, pool: ComputePool?) {
        let dTable = RowGatherOp.backward(dy, width: second.outFeatures, indices: saved.indices, tableRows: saved.distinct)
        guard let da = second.backward(dTable, input: saved.activation, rows: saved.distinct, pool: pool) else { return }
        let dh = SiLUOp.backward(da, input: saved.preActivation)
        first.backward(dh, input: saved.sinusoids, rows: saved.distinct, inputGradient: false, pool: pool)
    }
}

/// Tail-length conditioning (spec §1.3, Eq. 3): (γ, β) = `tm.tail_length.proj`(Emb(K)) per sequence
/// (row K − 1 of `tm.tail_length.embedding.weight`), applied once to the summed input of every row of
/// the sequence, h ← (1 + γ) ⊙ h + β (`FiLMOp`).
public struct TailLengthFiLMModule: Sendable {
    /// `tm.tail_length.embedding.weight` (row K − 1 for K).
    public let embedding: EmbeddingOp
    /// `tm.tail_length.proj` (d → 2d: γ then β).
    public let projection: LinearOp

    /// The module over `tm.tail_length.*` of `p`.
    public init(parameters p: ParameterSet) {
        embedding = EmbeddingOp(table: p["tm.tail_length.embedding.weight"])
        projection = LinearOp(weight: p["tm.tail_length.proj.weight"], bias: p["tm.tail_length.proj.bias"])
    }

    /// What the backward needs.
    public struct Saved: Sendable {
        var ids: [Int]
        var embedded: [Float]
        var gammaBeta: [Float]
        var input: [Float]
        var length: Int
    }

    /// `x` holds `tailLengths.count` sequences of `length` rows; sequence s is modulated by FiLM(K_s).
    public func forward(_ x: [Float], tailLengths: [Int], length: Int, pool: ComputePool?) -> (y: [Float], saved: Saved) {
        let d = projection.inFeatures
        let ids = tailLengths.map { $0 - 1 }
        let e = embedding.forward(ids)
        let gb = projection.forward(e, rows: ids.count, pool: pool)
        let y = FiLMOp.forward(x, gammaBeta: gb, sequences: ids.count, length: length, width: d)
        return (y, Saved(ids: ids, embedded: e, gammaBeta: gb, input: x, length: length))
    }

    /// Accumulates the table's and the projection's gradients; returns dx.
    public func backward(_ dy: [Float], saved: Saved, pool: ComputePool?) -> [Float] {
        let d = projection.inFeatures
        let (dx, dgb) = FiLMOp.backward(dy, input: saved.input, gammaBeta: saved.gammaBeta, sequences: saved.ids.count,
                                        length: saved.length, width: d)
        if let de = projection.backward(dgb, input: saved.embedded, rows: saved.ids.count, inputGradient: embedding.table.requiresGrad,
                                        pool: pool) {
            embedding.backward(de, ids: saved.ids)
        }
        return dx
    }
}
