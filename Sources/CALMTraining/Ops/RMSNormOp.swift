import Foundation

/// Llama RMSNorm: y = w ⊙ x·r with r = 1/sqrt(mean(x²) + eps), per row.
public struct RMSNormOp: Sendable {
    public let weight: Parameter
    public let eps: Float
    public var size: Int { weight.count }

    public init(weight: Parameter, eps: Float) {
        self.weight = weight
        self.eps = eps
    }

    /// Saved for backward: the per-row r.
    public struct Saved: Sendable { public var rstd: [Float] }

    public func forward(_ x: [Float], rows: Int) -> (y: [Float], saved: Saved) {
        let n = size
        precondition(x.count == rows * n)
        var y = [Float](repeating: 0, count: x.count)
        var rstd = [Float](repeating: 0, count: rows)
        let w = weight.value
        for r in 0..<rows {
            var ss: Float = 0
            for j in 0..<n { let v = x[r * n + j]; ss += v * v }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            rstd[r] = inv
            for j in 0..<n { y[r * n + j] = w[j] * (x[r * n + j] * inv) }
        }
        return (y, Saved(rstd: rstd))
    }

    /// dx_j = r·g_j − x_j·r³·mean(g ⊙ x) with g = w ⊙ dy; dw += Σ_rows dy ⊙ x·r.
    public func backward(_ dy: [Float], input x: [Float], saved: Saved, rows: Int) -> [Float] {
        let n = size
        var dx = [Float](repeating: 0, count: x.count)
        let w = weight.value
        var dw = [Float](repeating: 0, count: n)
        for r in 0..<rows {
            let inv = saved.rstd[r]
            var dot: Float = 0
            for j in 0..<n {
                let g = w[j] * dy[r * n + j]
                dot += g * x[r * n + j]
                dw[j] += dy[r * n + j] * x[r * n + j] * inv
            }
            let c = dot / Float(n) * inv * inv * inv
            for j in 0..<n { dx[r * n + j] = inv * w[j] * dy[r * n + j] - x[r * n + j] * c }
        }
        weight.accumulate(dw)
        return dx
    }
}
