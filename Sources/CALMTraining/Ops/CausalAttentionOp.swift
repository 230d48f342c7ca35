import CALMKernels
import CALMModel
import Foundation

/// Causal scaled-dot-product attention with grouped-query heads, batched over sequences of equal
/// length: rows are (sequence, position) in row-major order; query head h uses KV head h / (H/KV).
/// Inputs are already rotated (RoPE). Softmax over visible keys j ≤ i; scale 1/sqrt(d).
public struct CausalAttentionOp: Sendable {
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int

    public init(heads: Int, kvHeads: Int, headDim: Int) {
        precondition(heads % kvHeads == 0)
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
    }

    /// Saved: attention probabilities [seq][head][i][j] (j ≤ i, zero above the diagonal and where masked).
    public struct Saved: Sendable { public var probs: [Float] }

    /// `keyStart` (one entry per row, or nil) narrows what a query row sees: row (s, i) attends to keys
    /// keyStart[s·t + i] … i of its sequence (Token Maturation's tail-only mask); nil is plain causal.
    /// The backward needs no mask: masked probabilities are saved as 0.
    public func forward(q: [Float], k: [Float], v: [Float], sequences: Int, length t: Int, keyStart: [Int32]? = nil,
                        pool: ComputePool? = .shared) -> (out: [Float], saved: Saved) {
        let d = headDim, qw = heads * d, kw = kvHeads * d
        precondition(q.count == sequences * t * qw && k.count == sequences * t * kw && v.count == k.count)
        precondition(keyStart.map { $0.count == sequences * t } ?? true, "keyStart needs one entry per row")
        // useful products: Q·Kᵀ and P·V over the causal triangle
        Matmul.flopCount += 2 * 2 * Double(sequences * heads * d) * Double(t * (t + 1) / 2)
        var out = [Float](repeating: 0, count: q.count)
        var probs = [Float](repeating: 0, count: sequences * heads * t * t)
        out.withUnsafeMutableBufferPointer { op in probs.withUnsafeMutableBufferPointer { pp in
            if let keyStart {
                calm_train_attention_forward_masked(pool?.raw, q, k, v, Int32(sequences), Int32(t), Int32(heads), Int32(kvHeads),
                                                    Int32(d), keyStart, op.baseAddress!, pp.baseAddress!)
            } else {
                calm_train_attention_forward(pool?.raw, q, k, v, Int32(sequences), Int32(t), Int32(heads), Int32(kvHeads),
                                             Int32(d), op.baseAddress!, pp.baseAddress!)
            }
        } }
        return (out, Saved(probs: probs))
    }

    /// dV = Pᵀ·dO; dP = dO·Vᵀ; dS = P ⊙ (dP − Σ_j P·dP); dQ = dS·K·scale; dK = dSᵀ·Q·scale.
    public func backward(_ dOut: [Float], q: [Float], k: [Float], v: [Float], saved: Saved,
                         sequences: Int, length t: Int, pool: ComputePool? = .shared) -> (dq: [Float], dk: [Float], dv: [Float]) {
        Matmul.flopCount += 4 * 2 * Double(sequences * heads * headDim) * Double(t * (t + 1) / 2)
        var dq = [Float](repeating: 0, count: q.count)
        var dk = [Float](repeating: 0, count: k.count), dv = dk
        dq.withUnsafeMutableBufferPointer { a in dk.withUnsafeMutableBufferPointer { b in dv.withUnsafeMutableBufferPointer { c in
            calm_train_attention_backward(pool?.raw, q, k, v, saved.probs, dOut, Int32(sequences), Int32(t), Int32(heads),
                                          Int32(kvHeads), Int32(headDim), a.baseAddress!, b.baseAddress!, c.baseAddress!)
        } } }
        return (dq, dk, dv)
    }
}
