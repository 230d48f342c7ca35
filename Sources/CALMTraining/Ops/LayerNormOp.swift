import Foundation

/// LayerNorm with affine weight and bias, biased variance: y = w ⊙ (x − μ)·r + b.
public struct LayerNormOp: Sendable {
    public let weight: Parameter
    public let bias: Parameter
    public let eps: Float
    public var size: Int { weight.count }

    public init(weight: Parameter, bias: Parameter, eps: Float = 1e-6) {
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    /// Saved for backward: normalised inputs and per-row r.
    public struct Saved: Sendable { public var xhat: [Float]; public var rstd: [Float] }

    public func forward(_ x: [Float], rows: Int) -> (y: [Float], saved: Saved) {
        let n = size
        precondition(x.count == rows * n)
        var y = [Float](repeating: 0, count: x.count)
        var xhat = [Float](repeating: 0, count: x.count)
        var rstd = [Float](repeating: 0, count: rows)
        let w = weight.value, b = bias.value
        for r in 0..<rows {
            var mean: Float = 0
            for j in 0..<n { mean += x[r * n + j] }
            mean /= Float(n)
            var v: Float = 0
            for j in 0..<n { let d = x[r * n + j] - mean; v += d * d }
            let inv = 1 / (v / Float(n) + eps).squareRoot()
            rstd[r] = inv
            for j in 0..<n {
                let h = (x[r * n + j] - mean) * inv
                xhat[r * n + j] = h
                y[r * n + j] = h * w[j] + b[j]
            }
        }
        return (y, Saved(xhat: xhat, rstd: rstd))
    }

    /// dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)) with g = w ⊙ dy; dw += Σ dy ⊙ x̂, db += Σ dy.
    public func backward(_ dy: [Float], saved: Saved, rows: Int) -> [Float] {
        let n = size
        var dx = [Float](repeating: 0, count: rows * n)
        var dw = [Float](repeating: 0, count: n), db = [Float](repeating: 0, count: n)
        let w = weight.value
        for r in 0..<rows {
            var sg: Float = 0, sgx: Float = 0
            for j in 0..<n {
                let d = dy[r * n + j], h = saved.xhat[r * n + j]
                let g = w[j] * d
                sg += g; sgx += g * h
                dw[j] += d * h; db[j] += d
            }
            sg /= Float(n); sgx /= Float(n)
            let inv = saved.rstd[r]
            for j in 0..<n { dx[r * n + j] = inv * (w[j] * dy[r * n + j] - sg - saved.xhat[r * n + j] * sgx) }
        }
        weight.accumulate(dw)
        bias.accumulate(db)
        return dx
    }
}
