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

/// The decoder stack under the TM modules: the only part of the TM training step that depends on
/// the backbone. The step builds the summed input z + MLP_α(SinEmb(α)), lets the stack add its
/// learned positions (GPT-2's `wpe`; nothing for Llama, which rotates inside attention), applies
/// FiLM(K), and runs the stack — the order of the inference model (`TokenMaturationModel.step`:
/// conditioning, `addPositionEmbeddings`, FiLM, backbone).
enum TokenMaturationBackboneModule: Sendable {
    case llama(BackboneModule)
    case gpt2(GPT2BackboneModule)

    /// One forward's result: the stack and what its backward needs.
    enum Pass: Sendable {
        case llama(BackboneModule, BackboneModule.Saved)
        case gpt2(GPT2BackboneModule, GPT2BackboneModule.Saved)

        /// Accumulates the stack's gradients and returns d inputs (the gradient of the FiLM output).
        func backward(_ dy: [Float], pool: ComputePool?) -> [Float] {
            switch self {
            case let .llama(module, saved): return module.backward(dy, saved: saved, pool: pool)
            case let .gpt2(module, saved): return module.backward(dy, saved: saved, pool: pool)
            }
        }

        /// Accumulates the position table's gradient from the gradient of the summed input (before
        /// FiLM); nothing for Llama.
        func positionEmbeddingBackward(_ dx: [Float], sequences: Int, length: Int) {
            if case let .gpt2(module, _) = self { module.positionEmbeddingBackward(dx, sequences: sequences, length: length) }
        }
    }

    /// Positions the stack can place rows at (GPT-2's `n_positions`); nil: no limit (RoPE).
    var maxPositions: Int? {
        switch self {
        case .llama: return nil
        case let .gpt2(module): return module.maxPositions
        }
    }

    /// Adds the learned position of every row (position t of each sequence gets `wpe[t]`); nothing for Llama.
    func addPositionEmbeddings(_ x: inout [Float], sequences: Int, length: Int) {
        if case let .gpt2(module) = self { module.addPositionEmbeddings(&x, sequences: sequences, length: length) }
    }

    /// The stack's final-norm hidden states; `keyStart` as in `CausalAttentionOp`.
    func forward(_ inputs: [Float], sequences: Int, length: Int, keyStart: [Int32]?, pool: ComputePool?) -> (y: [Float], pass: Pass) {
        switch self {
        case let .llama(module):
            let (y, saved) = module.forward(inputs, sequences: sequences, length: length, keyStart: keyStart, pool: pool)
            return (y, .llama(module, saved))
        case let .gpt2(module):
            let (y, saved) = module.forward(inputs, sequences: sequences, length: length, keyStart: keyStart, pool: pool)
            return (y, .gpt2(module, saved))
        }
    }
}
