import CALMKernels

/// A pre-norm residual SwiGLU block, x ← x + down(SiLU(gate(n)) ⊙ up(n)) with n = RMSNorm(x):
/// the autoencoder's layer (`layernorm` + `mlp`) and the backbone's feed-forward half.
final class ResidualGatedMLP: Sendable {
    let norm: RMSNorm
    let gate: Linear
    let up: Linear
    let down: Linear

    init(norm: RMSNorm, gate: Linear, up: Linear, down: Linear) {
        self.norm = norm; self.gate = gate; self.up = up; self.down = down
    }

    /// Reads `<prefix>.mlp.{gate,up,down}_proj` and `<prefix>.<normName>`.
    convenience init(reader: WeightReader, prefix: String, normName: String, hidden: Int, intermediate: Int, eps: Double) throws {
        self.init(norm: try reader.rmsNorm("\(prefix).\(normName)", size: hidden, eps: eps),
                  gate: try reader.linear("\(prefix).mlp.gate_proj", out: intermediate, in: hidden, bias: false),
                  up: try reader.linear("\(prefix).mlp.up_proj", out: intermediate, in: hidden, bias: false),
                  down: try reader.linear("\(prefix).mlp.down_proj", out: hidden, in: intermediate, bias: false))
    }

    var weightBytes: Int { gate.weightBytes + up.weightBytes + down.weightBytes }

    /// Applies the block to `rows` rows of x in place.
    func apply(_ x: inout [Float], rows: Int, pool: ComputePool) {
        let normed = norm(x, rows: rows)
        let inter = gate.outFeatures
        var g = [Float](repeating: 0, count: rows * inter)
        var u = [Float](repeating: 0, count: rows * inter)
        normed.withUnsafeBufferPointer { n in
            g.withUnsafeMutableBufferPointer { gate.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
            u.withUnsafeMutableBufferPointer { up.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
        }
        let count = rows * inter
        g.withUnsafeMutableBufferPointer { gp in
            u.withUnsafeBufferPointer { calm_swiglu(gp.baseAddress!, $0.baseAddress!, gp.baseAddress!, count) }
        }
        g.withUnsafeBufferPointer { gp in
            x.withUnsafeMutableBufferPointer {
                down.apply(gp.baseAddress!, rows: rows, into: $0.baseAddress!, accumulate: true, pool: pool)
            }
        }
    }
}
