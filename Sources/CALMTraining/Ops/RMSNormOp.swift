import CALMKernels
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
        y.withUnsafeMutableBufferPointer { yp in rstd.withUnsafeMutableBufferPointer { rp in
            calm_train_rmsnorm_forward(x, weight.value, yp.baseAddress!, rp.baseAddress!, Int32(rows), Int32(n), eps)
        } }
        return (y, Saved(rstd: rstd))
    }

    /// dx_j = r·g_j − x_j·r³·mean(g ⊙ x) with g = w ⊙ dy; dw += Σ_rows dy ⊙ x·r.
    public func backward(_ dy: [Float], input x: [Float], saved: Saved, rows: Int) -> [Float] {
        let n = size
        precondition(dy.count == rows * n && x.count == rows * n)
        var dx = [Float](repeating: 0, count: x.count)
        let w = weight.value
        dx.withUnsafeMutableBufferPointer { dp in
            if weight.requiresGrad {
                weight.grad.withUnsafeMutableBufferPointer { g in
                    calm_train_rmsnorm_backward(x, w, saved.rstd, dy, dp.baseAddress!, g.baseAddress!, Int32(rows), Int32(n))
                }
            } else {
                calm_train_rmsnorm_backward(x, w, saved.rstd, dy, dp.baseAddress!, nil, Int32(rows), Int32(n))
            }
        }
        return dx
    }
}
