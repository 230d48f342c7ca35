import CALMKernels
import CALMModel
import Foundation

/// Feature-wise linear modulation per sequence (Token Maturation's tail-length FiLM, spec §1.3):
/// y = (1 + γ_s) ⊙ x + β_s on every row of sequence s, with γ_s the first and β_s the second half of
/// row s of `gammaBeta` (sequences × 2d). Rows are (sequence, position) row-major.
/// Backward: dx = (1 + γ_s) ⊙ dy, dγ_s = Σ_rows dy ⊙ x, dβ_s = Σ_rows dy.
public enum FiLMOp {
    /// y (sequences·length × d).
    public static func forward(_ x: [Float], gammaBeta: [Float], sequences: Int, length: Int, width d: Int) -> [Float] {
        precondition(x.count == sequences * length * d && gammaBeta.count == sequences * 2 * d)
        var y = [Float](repeating: 0, count: x.count)
        for s in 0..<sequences {
            let g = s * 2 * d
            for t in 0..<length {
                let r = (s * length + t) * d
                for j in 0..<d { y[r + j] = (1 + gammaBeta[g + j]) * x[r + j] + gammaBeta[g + d + j] }
            }
        }
        return y
    }

    /// dx and d(γ, β) (sequences × 2d).
    public static func backward(_ dy: [Float], input x: [Float], gammaBeta: [Float], sequences: Int, length: Int,
                                width d: Int) -> (dx: [Float], dGammaBeta: [Float]) {
        precondition(dy.count == x.count && x.count == sequences * length * d && gammaBeta.count == sequences * 2 * d)
        var dx = [Float](repeating: 0, count: x.count)
        var dgb = [Float](repeating: 0, count: gammaBeta.count)
        for s in 0..<sequences {
            let g = s * 2 * d
            for t in 0..<length {
                let r = (s * length + t) * d
                for j in 0..<d {
                    dx[r + j] = (1 + gammaBeta[g + j]) * dy[r + j]
                    dgb[g + j] += dy[r + j] * x[r + j]
                    dgb[g + d + j] += dy[r + j]
                }
            }
        }
        return (dx, dgb)
    }
}

/// Row gather from a (rows × width) table that is itself an activation (the maturity conditioning
/// of the distinct α values, the embedding rows of targets): y_i = table[indices_i]. Backward
/// scatter-adds each row's gradient into its table row (repeated indices accumulate).
public enum RowGatherOp {
    /// indices.count × width rows.
    public static func forward(table: [Float], width d: Int, indices: [Int]) -> [Float] {
        var y = [Float](repeating: 0, count: indices.count * d)
        for (i, r) in indices.enumerated() {
            precondition(r >= 0 && (r + 1) * d <= table.count, "row \(r) outside the table")
            for j in 0..<d { y[i * d + j] = table[r * d + j] }
        }
        return y
    }

    /// Adds the gradient of every gathered row into `dTable`.
    public static func backward(_ dy: [Float], width d: Int, indices: [Int], into dTable: inout [Float]) {
        precondition(dy.count == indices.count * d)
        for (i, r) in indices.enumerated() {
            for j in 0..<d { dTable[r * d + j] += dy[i * d + j] }
        }
    }

    /// The table gradient (tableRows × width) of the gathered rows' gradient.
    public static func backward(_ dy: [Float], width d: Int, indices: [Int], tableRows: Int) -> [Float] {
        var dt = [Float](repeating: 0, count: tableRows * d)
        backward(dy, width: d, indices: indices, into: &dt)
        return dt
    }
}

/// Rows rescaled to one radius: y = R · x / ‖x‖ (the embedding matrix E = R · rownormalize(W), spec
/// §1.1 and §3.5). Backward: dx = (R/‖x‖)·(dy − ŷ⟨ŷ, dy⟩) with ŷ = y/R.
public enum RowNormalizeOp {
    /// Per-row norms ‖x‖ (floored at 1e-12 so a zero row does not divide by zero).
    public struct Saved: Sendable { public var norms: [Float] }

    /// y = R·x/‖x‖ per row.
    public static func forward(_ x: [Float], rows: Int, width d: Int, radius: Float) -> (y: [Float], saved: Saved) {
        precondition(x.count == rows * d)
        var y = [Float](repeating: 0, count: x.count)
        var norms = [Float](repeating: 0, count: rows)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for r in 0..<rows {
                    let row = xp.baseAddress! + r * d
                    let n = max(calm_dot(row, row, Int32(d)).squareRoot(), 1e-12)
                    norms[r] = n
                    let f = radius / n
                    for j in 0..<d { yp[r * d + j] = row[j] * f }
                }
            }
        }
        return (y, Saved(norms: norms))
    }

    /// dx from dy and the forward's output.
    public static func backward(_ dy: [Float], output y: [Float], saved: Saved, rows: Int, width d: Int, radius: Float) -> [Float] {
        precondition(dy.count == rows * d && y.count == rows * d)
        var dx = [Float](repeating: 0, count: dy.count)
        for r in 0..<rows {
            var dot: Float = 0
            for j in 0..<d { dot += y[r * d + j] * dy[r * d + j] }
            dot /= radius * radius   // ⟨ŷ, dy⟩ / R, so that ŷ⟨ŷ, dy⟩ = y · dot
            let f = radius / saved.norms[r]
            for j in 0..<d { dx[r * d + j] = f * (dy[r * d + j] - y[r * d + j] * dot) }
        }
        return dx
    }
}

/// Simulated maturation of tail inputs (spec §3.2, gap G): z̃ = α·e + (1 − α)·ε per row, with α one
/// maturity per row (1 leaves a clean row unchanged) and ε the row's noise. Backward (to the clean
/// embeddings; the noise is data): de = α·dz̃.
public enum TailCorruptionOp {
    /// z̃ (alphas.count × d).
    public static func forward(clean e: [Float], noise: [Float], alphas: [Float], width d: Int) -> [Float] {
        precondition(e.count == alphas.count * d && noise.count == e.count)
        var z = [Float](repeating: 0, count: e.count)
        for (r, a) in alphas.enumerated() {
            if a == 1 {
                for j in 0..<d { z[r * d + j] = e[r * d + j] }
            } else {
                for j in 0..<d { z[r * d + j] = a * e[r * d + j] + (1 - a) * noise[r * d + j] }
            }
        }
        return z
    }

    /// de = α·dz̃.
    public static func backward(_ dz: [Float], alphas: [Float], width d: Int) -> [Float] {
        precondition(dz.count == alphas.count * d)
        var de = [Float](repeating: 0, count: dz.count)
        for (r, a) in alphas.enumerated() { for j in 0..<d { de[r * d + j] = a * dz[r * d + j] } }
        return de
    }
}

/// The Token Maturation loss of N predictions ẑ_i against their targets e_i (spec §3.3, §3.4):
///
///     L_reg,i = ‖ẑ_i − e_i‖²
///     L_NCE,i = −log softmax_i(pos),  logits = s · cos(ẑ_i, ·) over {e_i} ∪ {negatives not equal to e_i}
///     L = Σ_i w_i (L_reg,i + λ·L_NCE,i) / Σ_i w_i
///
/// with s the logit scale (20 in the paper), M negative rows shared by all predictions, and
/// `excluded[i·M + j]` true where negative j is prediction i's own target (a collision, masked out
/// of the softmax). Cosines use the rows' own norms (the embeddings all have norm R).
public enum TokenMaturationLossOp {
    /// Loss values and what the backward needs.
    public struct Output: Sendable {
        /// The weighted total L.
        public var loss: Float
        /// Σ w·L_reg / Σ w.
        public var regression: Float
        /// Σ w·L_NCE / Σ w.
        public var contrastive: Float
        /// Softmax probabilities over [positive, negatives] (N × (1 + M)), 0 where masked.
        var probabilities: [Float]
        /// Unit rows of the predictions, targets and negatives, and their norms.
        var u: [Float], predictionNorms: [Float]
        var vTarget: [Float], targetNorms: [Float]
        var vNegative: [Float], negativeNorms: [Float]
    }

    static func unitRows(_ x: [Float], rows: Int, width d: Int) -> (unit: [Float], norms: [Float]) {
        var u = [Float](repeating: 0, count: x.count)
        var norms = [Float](repeating: 0, count: rows)
        x.withUnsafeBufferPointer { xp in
            for r in 0..<rows {
                let row = xp.baseAddress! + r * d
                let n = max(calm_dot(row, row, Int32(d)).squareRoot(), 1e-8)
                norms[r] = n
                for j in 0..<d { u[r * d + j] = row[j] / n }
            }
        }
        return (u, norms)
    }

    /// The loss of `n` predictions (n × d) against their targets (n × d) and `m` shared negatives (m × d).
    public static func forward(predictions: [Float], targets: [Float], negatives: [Float], rows n: Int, negativeCount m: Int,
                               width d: Int, excluded: [Bool], weights: [Float], lambda: Float, logitScale s: Float,
                               pool: ComputePool?) -> Output {
        precondition(predictions.count == n * d && targets.count == n * d && negatives.count == m * d)
        precondition(excluded.count == n * m && weights.count == n)
        let (u, pn) = unitRows(predictions, rows: n, width: d)
        let (vt, tn) = unitRows(targets, rows: n, width: d)
        let (vn, nn) = unitRows(negatives, rows: m, width: d)
        // cosines to the negatives: U · Vnᵀ (N × M)
        let negCos = m > 0 ? Matmul.xWt(u, rows: n, w: vn, out: m, in: d, pool: pool) : []
        var probs = [Float](repeating: 0, count: n * (1 + m))
        let totalWeight = weights.reduce(0.0) { $0 + Double($1) }
        var reg = 0.0, nce = 0.0
        for i in 0..<n {
            var r: Float = 0
            for j in 0..<d { let e = predictions[i * d + j] - targets[i * d + j]; r += e * e }
            var pos: Float = 0
            for j in 0..<d { pos += u[i * d + j] * vt[i * d + j] }
            let base = i * (1 + m)
            probs[base] = s * pos
            var mx = probs[base]
            for j in 0..<m where !excluded[i * m + j] {
                let l = s * negCos[i * m + j]
                probs[base + 1 + j] = l
                mx = max(mx, l)
            }
            var sum: Float = 0
            probs[base] = expf(probs[base] - mx); sum += probs[base]
            for j in 0..<m {
                if excluded[i * m + j] { probs[base + 1 + j] = 0; continue }
                let e = expf(probs[base + 1 + j] - mx)
                probs[base + 1 + j] = e
                sum += e
            }
            for j in 0...m { probs[base + j] /= sum }
            let l = logf(sum) + mx - s * pos
            reg += Double(weights[i]) * Double(r)
            nce += Double(weights[i]) * Double(l)
        }
        let w = totalWeight > 0 ? totalWeight : 1
        let regression = Float(reg / w), contrastive = Float(nce / w)
        return Output(loss: regression + lambda * contrastive, regression: regression, contrastive: contrastive,
                      probabilities: probs, u: u, predictionNorms: pn, vTarget: vt, targetNorms: tn, vNegative: vn, negativeNorms: nn)
    }

    /// Gradients of `scale`·L with respect to the predictions, the targets and the negatives.
    public static func backward(_ o: Output, predictions: [Float], targets: [Float], rows n: Int, negativeCount m: Int,
                                width d: Int, weights: [Float], lambda: Float, logitScale s: Float, scale: Float = 1,
                                pool: ComputePool?) -> (dPredictions: [Float], dTargets: [Float], dNegatives: [Float]) {
        let totalWeight = weights.reduce(0.0) { $0 + Double($1) }
        let w = Float(totalWeight > 0 ? totalWeight : 1)
        var dPred = [Float](repeating: 0, count: n * d), dTarget = dPred
        var dU = [Float](repeating: 0, count: n * d), dVt = dU
        var dLogitNeg = [Float](repeating: 0, count: n * m)
        for i in 0..<n {
            let c = scale * weights[i] / w
            for j in 0..<d {
                let g = 2 * c * (predictions[i * d + j] - targets[i * d + j])
                dPred[i * d + j] = g
                dTarget[i * d + j] = -g
            }
            let base = i * (1 + m)
            let dPos = lambda * c * (o.probabilities[base] - 1)
            for j in 0..<m { dLogitNeg[i * m + j] = lambda * c * o.probabilities[base + 1 + j] }
            // logits = s·⟨u, v⟩
            for j in 0..<d {
                dU[i * d + j] = s * dPos * o.vTarget[i * d + j]
                dVt[i * d + j] = s * dPos * o.u[i * d + j]
            }
        }
        var dVn = [Float](repeating: 0, count: m * d)
        if m > 0 {
            for k in 0..<dLogitNeg.count { dLogitNeg[k] *= s }
            dLogitNeg.withUnsafeBufferPointer { gp in o.vNegative.withUnsafeBufferPointer { vp in dU.withUnsafeMutableBufferPointer { up in
                Matmul.dyW(gp.baseAddress!, rows: n, w: vp.baseAddress!, out: m, in: d, into: up.baseAddress!, accumulate: true, pool: pool)
            } } }
            Matmul.dyTx(dLogitNeg, x: o.u, rows: n, out: m, in: d, into: &dVn, pool: pool)
        }
        // through the normalisations x → x/‖x‖: dx = (du − u⟨u, du⟩)/‖x‖
        func unitBackward(_ du: [Float], unit: [Float], norms: [Float], rows: Int, into dx: inout [Float]) {
            for r in 0..<rows {
                var dot: Float = 0
                for j in 0..<d { dot += unit[r * d + j] * du[r * d + j] }
                let inv = 1 / norms[r]
                for j in 0..<d { dx[r * d + j] += inv * (du[r * d + j] - unit[r * d + j] * dot) }
            }
        }
        unitBackward(dU, unit: o.u, norms: o.predictionNorms, rows: n, into: &dPred)
        unitBackward(dVt, unit: o.vTarget, norms: o.targetNorms, rows: n, into: &dTarget)
        var dNeg = [Float](repeating: 0, count: m * d)
        unitBackward(dVn, unit: o.vNegative, norms: o.negativeNorms, rows: m, into: &dNeg)
        return (dPred, dTarget, dNeg)
    }
}
