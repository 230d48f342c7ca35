import CALMModel
import Foundation

/// Fits `tm.head` by least squares before training: the linear map from the backbone's final state
/// on clean text to the next token's embedding e = R·rownormalize(W)_{x_{t+1}}.
///
/// The spec's head starts at the identity (§5 K), which suits GPT-2, whose `wte` is tied to its LM
/// head and shares the final state's scale. A discrete baseline with an untied `lm_head` (ours) has
/// final states of norm ≈ √d and input rows of norm R ≪ √d, so at the identity L_reg starts in the
/// hundreds and the first steps bend the backbone just to shrink its output. The fitted head starts
/// at the best linear read-out instead: ridge regression on clean positions (mean-centred, so the
/// bias takes the means), solved by Cholesky in double precision.
///
/// ```swift
/// let tm = try TrainableTokenMaturation.fromBaseline(directory: URL(fileURLWithPath: "llama/checkpoint-1000"))
/// let data = try TokenData.load(URL(fileURLWithPath: "llama/train-causal-tokens.u32"))
/// let fit = try TokenMaturationHeadFit.fit(tm, data: data, batches: 8, rows: 4, length: 512)
/// print(fit.line)   // L_reg on the fitted rows before and after
/// ```
public enum TokenMaturationHeadFit {
    /// What a fit did.
    public struct Report: Sendable, Equatable {
        /// Clean positions the fit used.
        public var rows: Int
        /// Mean ‖ẑ − e‖² over them with the previous head and with the fitted one.
        public var regressionBefore: Double
        public var regressionAfter: Double

        /// `head fitted on 8188 clean positions: L_reg 412.31 -> 0.18`
        public var line: String {
            String(format: "head fitted on %d clean positions: L_reg %.4g -> %.4g", rows, regressionBefore, regressionAfter)
        }
    }

    /// Replaces `tm.head.weight`/`tm.head.bias` with the ridge solution over the first `batches`
    /// batches of `rows` blocks of `length` tokens of `data` (every position but the last of each
    /// block is clean; the ridge is `ridge`·trace/d of the centred Gram matrix).
    @discardableResult
    public static func fit(_ model: TrainableTokenMaturation, data: TokenData, batches: Int, rows: Int, length: Int,
                           ridge: Double = 1e-4, pool: ComputePool? = .shared) throws -> Report {
        guard batches > 0, rows > 0, length >= 3 else {
            throw TrainingError.invalidInput("the head fit needs at least one batch of blocks of 3 tokens or more")
        }
        let d = model.config.hiddenSize
        let (xs, ys, count) = try cleanPairs(model, data: data, batches: batches, rows: rows, length: length, pool: pool)
        guard count > d else {
            throw TrainingError.invalidInput("the head fit has \(count) clean positions, fewer than the width \(d): give more data")
        }
        let weight = model.parameters["tm.head.weight"], bias = model.parameters["tm.head.bias"]
        let before = meanRegression(xs: xs, ys: ys, rows: count, width: d, weight: weight.value, bias: bias.value)
        let (w, b) = try solve(xs: xs, ys: ys, rows: count, width: d, ridge: ridge)
        weight.value = w
        bias.value = b
        let after = meanRegression(xs: xs, ys: ys, rows: count, width: d, weight: w, bias: b)
        return Report(rows: count, regressionBefore: before, regressionAfter: after)
    }

    /// The backbone's final states x (before the head) at the clean positions of the first
    /// `batches` batches and the next tokens' embeddings y, row-major (count × d each).
    static func cleanPairs(_ model: TrainableTokenMaturation, data: TokenData, batches: Int, rows: Int, length: Int,
                           pool: ComputePool?) throws -> (xs: [Double], ys: [Double], count: Int) {
        let d = model.config.hiddenSize
        let available = max(1, data.blockCount(length: length) / rows)
        var xs: [Double] = [], ys: [Double] = []
        var count = 0
        for i in 0..<min(batches, available) {
            let batch = try data.batch(step: i, rows: rows, length: length)
            // K = 1 at the end: rows 0 … length − 2 are clean, each predicting the next clean slot
            let plan = TokenMaturationTrainingPlan(
                sequences: batch.map { _ in .init(tailLength: 1, cut: length - 2) },
                noise: [Float](repeating: 0, count: rows * d), negatives: [])
            var objective = TokenMaturationObjective()
            objective.negatives = 0
            let f = try TokenMaturationTrainingStep.forward(model: model, inputIDs: batch, plan: plan, objective: objective, pool: pool)
            for (k, row) in f.keptRows.enumerated() {
                for j in 0..<d { xs.append(Double(f.last[row * d + j])); ys.append(Double(f.targets[k * d + j])) }
            }
            count += f.keptRows.count
        }
        return (xs, ys, count)
    }

    /// Mean over rows of ‖W x + b − y‖² (W out × in, row-major).
    static func meanRegression(xs: [Double], ys: [Double], rows: Int, width d: Int, weight: [Float], bias: [Float]) -> Double {
        var total = 0.0
        for r in 0..<rows {
            for o in 0..<d {
                var v = Double(bias[o])
                for i in 0..<d { v += Double(weight[o * d + i]) * xs[r * d + i] }
                let e = v - ys[r * d + o]
                total += e * e
            }
        }
        return total / Double(rows)
    }

    /// Ridge regression y ≈ W x + b: centre both, solve (XᵀX + λI) Wᵀ = XᵀY, b = ȳ − W x̄.
    static func solve(xs: [Double], ys: [Double], rows n: Int, width d: Int, ridge: Double) throws -> (weight: [Float], bias: [Float]) {
        var mx = [Double](repeating: 0, count: d), my = mx
        for r in 0..<n { for j in 0..<d { mx[j] += xs[r * d + j]; my[j] += ys[r * d + j] } }
        for j in 0..<d { mx[j] /= Double(n); my[j] /= Double(n) }
        var gram = [Double](repeating: 0, count: d * d), cross = gram
        var xc = [Double](repeating: 0, count: d), yc = xc
        for r in 0..<n {
            for j in 0..<d { xc[j] = xs[r * d + j] - mx[j]; yc[j] = ys[r * d + j] - my[j] }
            for a in 0..<d {
                let xa = xc[a]
                if xa == 0 { continue }
                for c in a..<d { gram[a * d + c] += xa * xc[c] }
                for c in 0..<d { cross[a * d + c] += xa * yc[c] }
            }
        }
        var trace = 0.0
        for a in 0..<d { trace += gram[a * d + a]; for c in 0..<a { gram[a * d + c] = gram[c * d + a] } }
        let lambda = max(ridge * trace / Double(d), 1e-12)
        for a in 0..<d { gram[a * d + a] += lambda }
        // Cholesky: gram = L Lᵀ (lower, in place)
        for j in 0..<d {
            var s = gram[j * d + j]
            for k in 0..<j { s -= gram[j * d + k] * gram[j * d + k] }
            guard s > 0, s.isFinite else {
                throw TrainingError.invalidInput("the head fit's Gram matrix is not positive definite (the backbone's states are degenerate)")
            }
            let l = s.squareRoot()
            gram[j * d + j] = l
            for i in (j + 1)..<d {
                var t = gram[i * d + j]
                for k in 0..<j { t -= gram[i * d + k] * gram[j * d + k] }
                gram[i * d + j] = t / l
            }
        }
        // Wᵀ (in × out) = gram⁻¹ · cross, column by column of cross
        var wt = cross
        for o in 0..<d {
            for i in 0..<d {   // forward: L z = c
                var t = wt[i * d + o]
                for k in 0..<i { t -= gram[i * d + k] * wt[k * d + o] }
                wt[i * d + o] = t / gram[i * d + i]
            }
            for i in stride(from: d - 1, through: 0, by: -1) {   // back: Lᵀ w = z
                var t = wt[i * d + o]
                for k in (i + 1)..<d { t -= gram[k * d + i] * wt[k * d + o] }
                wt[i * d + o] = t / gram[i * d + i]
            }
        }
        var weight = [Float](repeating: 0, count: d * d), bias = [Float](repeating: 0, count: d)
        for o in 0..<d {
            var b = my[o]
            for i in 0..<d {
                weight[o * d + i] = Float(wt[i * d + o])
                b -= wt[i * d + o] * mx[i]
            }
            bias[o] = Float(b)
        }
        return (weight, bias)
    }
}
