import CALMModel

/// x ← x + down(SiLU(gate(n)) ⊙ up(n)), n = RMSNorm(x): the AE's layers and the second half of a
/// Llama decoder layer (no biases).
public struct ResidualMLPBlock: Sendable {
    public let norm: RMSNormOp
    public let gate: LinearOp
    public let up: LinearOp
    public let down: LinearOp

    /// `<prefix>.<normName>.weight`, `<prefix>.mlp.{gate,up,down}_proj.weight`.
    public init(_ params: ParameterSet, prefix: String, normName: String, eps: Float) {
        norm = RMSNormOp(weight: params["\(prefix).\(normName).weight"], eps: eps)
        gate = LinearOp(weight: params["\(prefix).mlp.gate_proj.weight"], bias: nil)
        up = LinearOp(weight: params["\(prefix).mlp.up_proj.weight"], bias: nil)
        down = LinearOp(weight: params["\(prefix).mlp.down_proj.weight"], bias: nil)
    }

    public struct Saved: Sendable {
        var input: [Float]
        var norm: RMSNormOp.Saved
        var normed: [Float]
        var gate: [Float], up: [Float], act: [Float]
    }

    public func forward(_ x: [Float], rows: Int, pool: ComputePool?) -> (y: [Float], saved: Saved) {
        let (n, ns) = norm.forward(x, rows: rows)
        let g = gate.forward(n, rows: rows, pool: pool)
        let u = up.forward(n, rows: rows, pool: pool)
        let a = SwiGLUOp.forward(gate: g, up: u)
        var y = down.forward(a, rows: rows, pool: pool)
        for i in 0..<y.count { y[i] += x[i] }
        return (y, Saved(input: x, norm: ns, normed: n, gate: g, up: u, act: a))
    }

    /// Returns dx (residual included).
    public func backward(_ dy: [Float], saved s: Saved, rows: Int, pool: ComputePool?) -> [Float] {
        let da = down.backward(dy, input: s.act, rows: rows, pool: pool)!
        let (dg, du) = SwiGLUOp.backward(da, gate: s.gate, up: s.up)
        var dn = gate.backward(dg, input: s.normed, rows: rows, pool: pool)!
        let dn2 = up.backward(du, input: s.normed, rows: rows, pool: pool)!
        for i in 0..<dn.count { dn[i] += dn2[i] }
        var dx = norm.backward(dn, input: s.input, saved: s.norm, rows: rows)
        for i in 0..<dx.count { dx[i] += dy[i] }
        return dx
    }
}
