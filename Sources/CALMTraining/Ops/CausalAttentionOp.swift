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

    /// Saved: attention probabilities [seq][head][i][j] (j ≤ i, zero above the diagonal).
    public struct Saved: Sendable { public var probs: [Float] }

    public func forward(q: [Float], k: [Float], v: [Float], sequences: Int, length t: Int) -> (out: [Float], saved: Saved) {
        let d = headDim, qw = heads * d, kw = kvHeads * d, group = heads / kvHeads
        precondition(q.count == sequences * t * qw && k.count == sequences * t * kw && v.count == k.count)
        let scale = 1 / Float(d).squareRoot()
        var out = [Float](repeating: 0, count: q.count)
        var probs = [Float](repeating: 0, count: sequences * heads * t * t)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
        out.withUnsafeMutableBufferPointer { op in probs.withUnsafeMutableBufferPointer { pp in
            for s in 0..<sequences {
                for h in 0..<heads {
                    let g = h / group
                    for i in 0..<t {
                        let qi = qp.baseAddress! + (s * t + i) * qw + h * d
                        let prow = pp.baseAddress! + ((s * heads + h) * t + i) * t
                        var m = -Float.infinity
                        for j in 0...i {
                            let kj = kp.baseAddress! + (s * t + j) * kw + g * d
                            var dot: Float = 0
                            for c in 0..<d { dot += qi[c] * kj[c] }
                            prow[j] = dot * scale
                            m = max(m, prow[j])
                        }
                        var sum: Float = 0
                        for j in 0...i { prow[j] = expf(prow[j] - m); sum += prow[j] }
                        let o = op.baseAddress! + (s * t + i) * qw + h * d
                        for j in 0...i {
                            prow[j] /= sum
                            let vj = vp.baseAddress! + (s * t + j) * kw + g * d
                            for c in 0..<d { o[c] += prow[j] * vj[c] }
                        }
                    }
                }
            }
        } } } } }
        return (out, Saved(probs: probs))
    }

    /// dV = Pᵀ·dO; dP = dO·Vᵀ; dS = P ⊙ (dP − Σ_j P·dP); dQ = dS·K·scale; dK = dSᵀ·Q·scale.
    public func backward(_ dOut: [Float], q: [Float], k: [Float], v: [Float], saved: Saved,
                         sequences: Int, length t: Int) -> (dq: [Float], dk: [Float], dv: [Float]) {
        let d = headDim, qw = heads * d, kw = kvHeads * d, group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        var dq = [Float](repeating: 0, count: q.count)
        var dk = [Float](repeating: 0, count: k.count), dv = dk
        var dp = [Float](repeating: 0, count: t)
        for s in 0..<sequences {
            for h in 0..<heads {
                let g = h / group
                for i in 0..<t {
                    let pBase = ((s * heads + h) * t + i) * t
                    let oBase = (s * t + i) * qw + h * d
                    var dot: Float = 0
                    for j in 0...i {
                        let vBase = (s * t + j) * kw + g * d
                        var acc: Float = 0
                        for c in 0..<d { acc += dOut[oBase + c] * v[vBase + c] }
                        dp[j] = acc
                        let p = saved.probs[pBase + j]
                        dot += p * acc
                        for c in 0..<d { dv[vBase + c] += p * dOut[oBase + c] }
                    }
                    for j in 0...i {
                        let ds = saved.probs[pBase + j] * (dp[j] - dot) * scale
                        let kBase = (s * t + j) * kw + g * d
                        for c in 0..<d {
                            dq[oBase + c] += ds * k[kBase + c]
                            dk[kBase + c] += ds * q[oBase + c]
                        }
                    }
                }
            }
        }
        return (dq, dk, dv)
    }
}
