import Foundation

/// Splits encoder outputs (rows × 2z) into mean (first z) and log σ (last z), and back.
public enum LatentSplit {
    public static func split(_ latent: [Float], rows: Int, z: Int) -> (mean: [Float], logStd: [Float]) {
        var mean = [Float](repeating: 0, count: rows * z), logStd = mean
        for r in 0..<rows {
            for j in 0..<z {
                mean[r * z + j] = latent[r * 2 * z + j]
                logStd[r * z + j] = latent[r * 2 * z + z + j]
            }
        }
        return (mean, logStd)
    }

    public static func join(mean: [Float], logStd: [Float], rows: Int, z: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * 2 * z)
        for r in 0..<rows {
            for j in 0..<z {
                out[r * 2 * z + j] = mean[r * z + j]
                out[r * 2 * z + z + j] = logStd[r * z + j]
            }
        }
        return out
    }
}

/// Reparameterised Gaussian sample z = μ + ε·σ with σ = exp(log σ) (ε injected).
public enum GaussianSampleOp {
    public static func forward(mean: [Float], logStd: [Float], eps: [Float]) -> [Float] {
        precondition(mean.count == logStd.count && eps.count == mean.count)
        return (0..<mean.count).map { mean[$0] + eps[$0] * expf(logStd[$0]) }
    }

    /// Accumulates into dMean / dLogStd: dμ += dz, dlog σ += dz·ε·σ.
    public static func backward(_ dz: [Float], logStd: [Float], eps: [Float], dMean: inout [Float], dLogStd: inout [Float]) {
        for i in 0..<dz.count {
            dMean[i] += dz[i]
            dLogStd[i] += dz[i] * eps[i] * expf(logStd[i])
        }
    }
}

/// KL(N(μ, σ²) ‖ N(0, 1)) per dimension, 0.5·(μ² + σ² − 1 − 2·log σ), clamped from below at
/// `clamp`; loss = mean over rows of the sum over dims. The clamp passes gradient only where the
/// unclamped value is ≥ the clamp (PyTorch's clamp backward).
public enum ClampedKLOp {
    public struct Output: Sendable {
        public var perDim: [Float]
        public var clamped: [Float]
        public var loss: Float
    }

    public static func forward(mean: [Float], logStd: [Float], rows: Int, clamp: Float) -> Output {
        let n = mean.count
        var perDim = [Float](repeating: 0, count: n)
        var clamped = perDim
        for i in 0..<n {
            let s = expf(logStd[i])
            perDim[i] = 0.5 * (mean[i] * mean[i] + s * s - 1 - 2 * logStd[i])
            clamped[i] = max(perDim[i], clamp)
        }
        let z = n / rows
        var total: Float = 0
        for r in 0..<rows {
            var s: Float = 0
            for j in 0..<z { s += clamped[r * z + j] }
            total += s
        }
        return Output(perDim: perDim, clamped: clamped, loss: total / Float(rows))
    }

    /// Accumulates `weight`·dKL into dMean / dLogStd.
    public static func backward(weight: Float, mean: [Float], logStd: [Float], perDim: [Float], rows: Int, clamp: Float,
                                dMean: inout [Float], dLogStd: inout [Float]) {
        let g = weight / Float(rows)
        for i in 0..<mean.count where perDim[i] >= clamp {
            let s = expf(logStd[i])
            dMean[i] += g * mean[i]
            dLogStd[i] += g * (s * s - 1)
        }
    }
}

/// Inverted dropout with an injected 0/1 keep mask: y = x·(keep/(1 − p)).
public enum DropoutOp {
    public static func scales(keep: [Float], p: Float) -> [Float] { keep.map { $0 / (1 - p) } }

    public static func forward(_ x: [Float], keep: [Float], p: Float) -> [Float] {
        let s = scales(keep: keep, p: p)
        return (0..<x.count).map { x[$0] * s[$0] }
    }

    public static func backward(_ dy: [Float], keep: [Float], p: Float) -> [Float] {
        let s = scales(keep: keep, p: p)
        return (0..<dy.count).map { dy[$0] * s[$0] }
    }
}

/// Token dropout: tokens whose uniform draw is ≤ p become id 0 (keep = uniform > p, f32 compare).
public enum TokenDropoutOp {
    public static func keepMask(uniform: [Float], p: Float) -> [Bool] { uniform.map { $0 > p } }

    public static func apply(_ ids: [Int], keep: [Bool]) -> [Int] {
        precondition(ids.count == keep.count)
        return (0..<ids.count).map { keep[$0] ? ids[$0] : 0 }
    }
}
