import CALMModel
import Foundation

/// The Token Maturation loss's settings (spec §3.3–§3.6); each default fills a gap the paper leaves
/// (Docs/Training.md, `calm train-tm`).
public struct TokenMaturationObjective: Sendable, Equatable {
    /// λ in L = L_reg + λ·L_NCE (gap I: not reported; 1).
    public var lambda: Float = 1
    /// s in logits = s·cos(ẑ, e) ("logit scale 20", spec §1.6).
    public var logitScale: Float = 20
    /// Uniform negative ids per batch, shared by every prediction (256, spec §1.6).
    public var negatives: Int = 256
    /// Floor of the per-position weight (the target slot's maturity), so the newest slots still learn
    /// (spec §3.4: 0.05). Must be positive.
    public var minimumWeight: Float = 0.05
    /// Probability per sequence of training with the tail-only mask (§3.6, CFG's unconditional pass;
    /// default 0: not in the paper).
    public var unconditionalProbability: Float = 0
    /// Largest K drawn; nil: the model's `max_tail_length` (K ~ U{1 … 64} by default, gap H).
    public var maxTailLength: Int?

    /// The defaults above.
    public init() {}

    /// Checks every value; errors name the setting (`calm train-tm`'s flag).
    public func validate() throws {
        func fail(_ flag: String, _ reason: String) -> TrainingError { .invalidInput("--\(flag): \(reason)") }
        if !(lambda.isFinite && lambda >= 0) { throw fail("lambda", "must be a finite number ≥ 0, got \(lambda)") }
        if !(logitScale.isFinite && logitScale > 0) { throw fail("logit-scale", "must be a positive number, got \(logitScale)") }
        if negatives < 0 { throw fail("negatives", "must be ≥ 0, got \(negatives)") }
        if !(minimumWeight > 0 && minimumWeight <= 1) { throw fail("min-weight", "must be in (0, 1], got \(minimumWeight)") }
        if !(unconditionalProbability >= 0 && unconditionalProbability <= 1) {
            throw fail("unconditional-prob", "must be in [0, 1], got \(unconditionalProbability)")
        }
        if let k = maxTailLength, k < 1 { throw fail("max-tail", "must be at least 1, got \(k)") }
    }
}

/// The random choices of one TM training batch (spec §3.2): per sequence the tail length K, the cut
/// point c (the last clean position; the tail occupies positions c+1 … c+K and everything after it
/// is dropped) and whether it trains with the tail-only mask; the corruption noise; the negatives.
/// Drawn from a seeded stream in training (`draw`), written by hand in tests.
public struct TokenMaturationTrainingPlan: Sendable, Equatable {
    /// One sequence's tail.
    public struct Sequence: Sendable, Equatable {
        /// K.
        public var tailLength: Int
        /// c: positions 0 … c are clean (α = 1), the tail is c+1 … c+K.
        public var cut: Int
        /// Tail rows attend only to tail rows (the guidance pass's mask, §2.6, §3.6).
        public var unconditional: Bool

        /// A tail of `tailLength` at positions cut+1 … cut+tailLength.
        public init(tailLength: Int, cut: Int, unconditional: Bool = false) {
            self.tailLength = tailLength
            self.cut = cut
            self.unconditional = unconditional
        }
    }

    /// One entry per input row.
    public var sequences: [Sequence]
    /// Standard normals, K × d per sequence in order (slot 0 first); the step scales them to
    /// N(0, (ρR)²/d·I).
    public var noise: [Float]
    /// Negative ids (shared by the batch).
    public var negatives: [Int]

    /// A plan given in full (tests, replays).
    public init(sequences: [Sequence], noise: [Float], negatives: [Int]) {
        self.sequences = sequences
        self.noise = noise
        self.negatives = negatives
    }

    /// Draws a plan for `count` sequences of `length` tokens: K ~ U{1 … maxK} clamped to length − 1
    /// (at least one clean position precedes the tail), c ~ U{0 … length − 1 − K}, the tail-only mask
    /// with probability p, then the noise, then the negatives ~ U{0 … V − 1}.
    public static func draw(sequences count: Int, length: Int, config: TokenMaturationConfig, objective: TokenMaturationObjective,
                            rng: SeededRandomness) throws -> TokenMaturationTrainingPlan {
        guard length >= 2 else { throw TrainingError.invalidInput("sequences need at least 2 tokens, got \(length)") }
        let maxK = max(1, min(objective.maxTailLength ?? config.maxTailLength, config.maxTailLength, length - 1))
        var seqs: [Sequence] = []
        for _ in 0..<count {
            let k = 1 + Int(rng.next() % UInt64(maxK))
            let c = Int(rng.next() % UInt64(length - k))
            let u = objective.unconditionalProbability > 0 && rng.uniformDouble() < Double(objective.unconditionalProbability)
            seqs.append(Sequence(tailLength: k, cut: c, unconditional: u))
        }
        let noise = rng.normalFloats(count: seqs.reduce(0) { $0 + $1.tailLength } * config.hiddenSize)
        let negatives = (0..<objective.negatives).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        return TokenMaturationTrainingPlan(sequences: seqs, noise: noise, negatives: negatives)
    }
}

/// The Token Maturation training objective (spec §3) on full sequences.
///
/// For sequence b with tail length K and cut c (the plan): rows 0 … c+K−1 are run (the newest slot
/// c+K feeds no prediction under the shift alignment, and positions after the tail are dropped);
/// shorter sequences of the batch are padded to the longest with clean rows of weight 0, which
/// causal attention keeps from influencing anything. Row t's input is
///
///     z_t = e_{x_t}                                  (t ≤ c, α = 1)
///     z_t = α_j·e_{x_t} + (1 − α_j)·ε_t,  ε ~ N(0, (ρR)²/d·I)   (t = c+1+j, α_j = α_max(K−1−j)/(K−1))
///     h_t = FiLM_K(z_t + MLP_α(SinEmb(α_t)) + P[t])
///
/// (P[t]: GPT-2's learned position t; none on the Llama backbone, which rotates inside attention;
/// the inference model's order), the backbone (`TrainableTokenMaturation.backboneModule`) final-norm
/// state goes through `tm.head`, and row t predicts slot t+1's clean embedding e_{x_{t+1}} with weight
/// max(maturity of slot t+1, floor) — 1 inside the clean prefix. The loss is `TokenMaturationLossOp`
/// (L_reg + λ·L_NCE, weighted mean). E = R·rownormalize(W) everywhere.
public enum TokenMaturationTrainingStep {
    /// One batch's loss.
    public struct Result: Sendable {
        /// Σ w·(L_reg + λ·L_NCE) / Σ w.
        public var loss: Float
        /// Σ w·L_reg / Σ w.
        public var regression: Float
        /// Σ w·L_NCE / Σ w.
        public var contrastive: Float
        /// Predictions with a positive weight.
        public var predictions: Int
        /// Input tokens of the batch.
        public var tokens: Int
    }

    /// Everything the forward computed (the backward's inputs; tests read `last` and `predictions`).
    struct Forward {
        var sequences: Int, length: Int
        /// The vocabulary rows the batch uses (inputs, targets, negatives), ascending, and their rows
        /// of E = R·rownormalize(W); the index arrays below point into them.
        var used: [Int]
        var embeddings: [Float], embeddingSaved: RowNormalizeOp.Saved
        var inputRows: [Int], targetRows: [Int], negativeRows: [Int]
        var alphas: [Float]
        var conditioningSaved: AlphaConditionerModule.Saved
        var filmSaved: TailLengthFiLMModule.Saved
        var last: [Float], backbonePass: TokenMaturationBackboneModule.Pass
        /// ẑ for every row (sequences·length × d).
        var predictions: [Float]
        var keptRows: [Int], targetIDs: [Int], weights: [Float]
        var loss: TokenMaturationLossOp.Output
        var keptPredictions: [Float], targets: [Float]
    }

    /// Loss and gradients (accumulated into `model.parameters`, zeroed first unless `accumulate`;
    /// none at all when `gradients` is false, e.g. for held-out evaluation).
    public static func lossAndGradients(model: TrainableTokenMaturation, inputIDs: [[Int]], plan: TokenMaturationTrainingPlan,
                                        objective: TokenMaturationObjective = TokenMaturationObjective(), gradients: Bool = true,
                                        accumulate: Bool = false, pool: ComputePool? = .shared) throws -> Result {
        let f = try forward(model: model, inputIDs: inputIDs, plan: plan, objective: objective, pool: pool)
        if gradients {
            if !accumulate { model.parameters.zeroGrad() }
            backward(f, model: model, plan: plan, objective: objective, pool: pool)
        }
        return Result(loss: f.loss.loss, regression: f.loss.regression, contrastive: f.loss.contrastive,
                      predictions: f.keptRows.count, tokens: inputIDs.count * (inputIDs.first?.count ?? 0))
    }

    /// The production variant: the plan is drawn from `rng` (`TokenMaturationTrainingPlan.draw`).
    public static func lossAndGradients(model: TrainableTokenMaturation, inputIDs: [[Int]], rng: SeededRandomness,
                                        objective: TokenMaturationObjective = TokenMaturationObjective(), gradients: Bool = true,
                                        accumulate: Bool = false, pool: ComputePool? = .shared) throws -> Result {
        let plan = try TokenMaturationTrainingPlan.draw(sequences: inputIDs.count, length: inputIDs.first?.count ?? 0,
                                                        config: model.config, objective: objective, rng: rng)
        return try lossAndGradients(model: model, inputIDs: inputIDs, plan: plan, objective: objective, gradients: gradients,
                                    accumulate: accumulate, pool: pool)
    }

    static func validate(model: TrainableTokenMaturation, inputIDs: [[Int]], plan: TokenMaturationTrainingPlan,
                         objective: TokenMaturationObjective) throws {
        try objective.validate()
        let c = model.config
        guard let width = inputIDs.first?.count, width >= 2, inputIDs.allSatisfy({ $0.count == width }) else {
            throw TrainingError.invalidInput("input rows must have equal lengths of at least 2 tokens")
        }
        if let bad = inputIDs.joined().first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw TrainingError.invalidInput("token id \(bad) outside the vocabulary (\(c.vocabSize))")
        }
        if c.backbone == .gpt2 && width - 1 > c.maxPositions {
            throw TrainingError.invalidInput("rows of \(width) tokens feed up to \(width - 1) positions, more than the GPT-2 backbone's \(c.maxPositions) (n_positions): use blocks of at most \(c.maxPositions + 1) tokens")
        }
        guard plan.sequences.count == inputIDs.count else {
            throw TrainingError.invalidInput("the plan has \(plan.sequences.count) sequences for \(inputIDs.count) input rows")
        }
        for (i, s) in plan.sequences.enumerated() {
            guard s.tailLength >= 1, s.tailLength <= c.maxTailLength, s.cut >= 0, s.cut + s.tailLength <= width - 1 else {
                throw TrainingError.invalidInput("sequence \(i): tail length \(s.tailLength) at cut \(s.cut) does not fit \(width) tokens (K in 1…\(c.maxTailLength), c ≥ 0, c + K ≤ \(width - 1))")
            }
        }
        let noise = plan.sequences.reduce(0) { $0 + $1.tailLength } * c.hiddenSize
        guard plan.noise.count == noise else {
            throw TrainingError.invalidInput("the plan has \(plan.noise.count) noise values, the tails need \(noise)")
        }
        if let bad = plan.negatives.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw TrainingError.invalidInput("negative id \(bad) outside the vocabulary (\(c.vocabSize))")
        }
    }

    static func forward(model: TrainableTokenMaturation, inputIDs rows: [[Int]], plan: TokenMaturationTrainingPlan,
                        objective o: TokenMaturationObjective, pool: ComputePool?) throws -> Forward {
        try validate(model: model, inputIDs: rows, plan: plan, objective: o)
        let c = model.config, p = model.parameters
        let d = c.hiddenSize, r = model.radius
        let b = rows.count
        let length = plan.sequences.map { $0.cut + $0.tailLength }.max() ?? 1
        let sigma = c.embryoScale * r / Float(d).squareRoot()

        var ids = [Int](repeating: 0, count: b * length)
        var alphas = [Float](repeating: 1, count: b * length)
        var targetIDs = [Int](repeating: 0, count: b * length)
        var weights = [Float](repeating: 0, count: b * length)
        var noise = [Float](repeating: 0, count: b * length * d)
        var keyStart = [Int32](repeating: 0, count: b * length)
        var masked = false
        var noiseOffset = 0
        for (s, seq) in plan.sequences.enumerated() {
            let k = seq.tailLength, cut = seq.cut
            let profile = TokenMaturationConfig.maturityProfile(tailLength: k, maturityMax: c.maturityMax)
            for t in 0..<length {
                let row = s * length + t
                ids[row] = rows[s][t]
                targetIDs[row] = rows[s][t + 1]
                if t > cut && t < cut + k {
                    let j = t - cut - 1
                    alphas[row] = profile[j]
                    for x in 0..<d { noise[row * d + x] = sigma * plan.noise[noiseOffset + j * d + x] }
                }
                if t + 1 <= cut { weights[row] = 1 }
                else if t + 1 <= cut + k { weights[row] = max(profile[t - cut], o.minimumWeight) }
                if seq.unconditional && t > cut { keyStart[row] = Int32(cut + 1); masked = true }
            }
            noiseOffset += k * d
        }

        // E = R·rownormalize(W) on the rows the batch uses (O(used·d), whatever the vocabulary)
        let kept = (0..<(b * length)).filter { weights[$0] > 0 }
        let keptTargets = kept.map { targetIDs[$0] }
        let used = Array(Set(ids).union(keptTargets).union(plan.negatives)).sorted()
        var local = [Int: Int](minimumCapacity: used.count)
        for (i, id) in used.enumerated() { local[id] = i }
        let inputRows = ids.map { local[$0] ?? 0 }, targetRows = keptTargets.map { local[$0] ?? 0 }
        let negativeRows = plan.negatives.map { local[$0] ?? 0 }
        let wRows = RowGatherOp.forward(table: p[model.embeddingName].value, width: d, indices: used)
        let (e, eSaved) = RowNormalizeOp.forward(wRows, rows: used.count, width: d, radius: r)

        // inputs: corrupted embeddings + maturity conditioning (+ GPT-2's learned positions), then FiLM(K)
        let clean = RowGatherOp.forward(table: e, width: d, indices: inputRows)
        var h = TailCorruptionOp.forward(clean: clean, noise: noise, alphas: alphas, width: d)
        let conditioner = AlphaConditionerModule(parameters: p, channels: c.alphaChannels, scale: c.alphaScale, maxPeriod: c.alphaMaxPeriod)
        let (conditioning, condSaved) = conditioner.forward(alphas: alphas, pool: pool)
        for i in 0..<h.count { h[i] += conditioning[i] }
        let backbone = try model.backboneModule()
        backbone.addPositionEmbeddings(&h, sequences: b, length: length)
        let film = TailLengthFiLMModule(parameters: p)
        let (filmed, filmSaved) = film.forward(h, tailLengths: plan.sequences.map(\.tailLength), length: length, pool: pool)
        let (last, backbonePass) = backbone.forward(filmed, sequences: b, length: length, keyStart: masked ? keyStart : nil, pool: pool)
        let head = LinearOp(weight: p["tm.head.weight"], bias: p["tm.head.bias"])
        let zhat = head.forward(last, rows: b * length, pool: pool)

        let keptWeights = kept.map { weights[$0] }
        let predictions = RowGatherOp.forward(table: zhat, width: d, indices: kept)
        let targets = RowGatherOp.forward(table: e, width: d, indices: targetRows)
        let negatives = RowGatherOp.forward(table: e, width: d, indices: negativeRows)
        let m = plan.negatives.count
        var excluded = [Bool](repeating: false, count: kept.count * m)
        for (i, t) in keptTargets.enumerated() { for (j, n) in plan.negatives.enumerated() where n == t { excluded[i * m + j] = true } }
        let loss = TokenMaturationLossOp.forward(predictions: predictions, targets: targets, negatives: negatives, rows: kept.count,
                                                 negativeCount: m, width: d, excluded: excluded, weights: keptWeights,
                                                 lambda: o.lambda, logitScale: o.logitScale, pool: pool)
        return Forward(sequences: b, length: length, used: used, embeddings: e, embeddingSaved: eSaved, inputRows: inputRows,
                       targetRows: targetRows, negativeRows: negativeRows, alphas: alphas,
                       conditioningSaved: condSaved, filmSaved: filmSaved, last: last, backbonePass: backbonePass, predictions: zhat,
                       keptRows: kept, targetIDs: keptTargets, weights: keptWeights, loss: loss,
                       keptPredictions: predictions, targets: targets)
    }

    static func backward(_ f: Forward, model: TrainableTokenMaturation, plan: TokenMaturationTrainingPlan,
                         objective o: TokenMaturationObjective, pool: ComputePool?) {
        let c = model.config, p = model.parameters
        let d = c.hiddenSize, rows = f.sequences * f.length
        let m = plan.negatives.count
        let (dPred, dTargets, dNegatives) = TokenMaturationLossOp.backward(
            f.loss, predictions: f.keptPredictions, targets: f.targets, rows: f.keptRows.count, negativeCount: m, width: d,
            weights: f.weights, lambda: o.lambda, logitScale: o.logitScale, pool: pool)
        var dZhat = [Float](repeating: 0, count: rows * d)
        RowGatherOp.backward(dPred, width: d, indices: f.keptRows, into: &dZhat)
        let head = LinearOp(weight: p["tm.head.weight"], bias: p["tm.head.bias"])
        let dLast = head.backward(dZhat, input: f.last, rows: rows, pool: pool) ?? []
        let dFilmed = f.backbonePass.backward(dLast, pool: pool)
        let dInputs = TailLengthFiLMModule(parameters: p).backward(dFilmed, saved: f.filmSaved, pool: pool)
        f.backbonePass.positionEmbeddingBackward(dInputs, sequences: f.sequences, length: f.length)
        AlphaConditionerModule(parameters: p, channels: c.alphaChannels, scale: c.alphaScale, maxPeriod: c.alphaMaxPeriod)
            .backward(dInputs, saved: f.conditioningSaved, pool: pool)
        let w = p[model.embeddingName]
        guard w.requiresGrad else { return }
        // E is used three times: inputs (through the corruption), targets and negatives.
        var dE = [Float](repeating: 0, count: f.used.count * d)
        let dClean = TailCorruptionOp.backward(dInputs, alphas: f.alphas, width: d)
        RowGatherOp.backward(dClean, width: d, indices: f.inputRows, into: &dE)
        RowGatherOp.backward(dTargets, width: d, indices: f.targetRows, into: &dE)
        RowGatherOp.backward(dNegatives, width: d, indices: f.negativeRows, into: &dE)
        let dW = RowNormalizeOp.backward(dE, output: f.embeddings, saved: f.embeddingSaved, rows: f.used.count, width: d,
                                         radius: model.radius)
        RowGatherOp.backward(dW, width: d, indices: f.used, into: &w.grad)
    }

    /// The mean loss over `batches` held-out batches of `rows` × `length` tokens (the stream's first
    /// windows, in order), each with a plan drawn from a stream seeded by (`seed`, batch): the same
    /// numbers at every call, so successive evaluations of one run are comparable.
    public static func evaluate(model: TrainableTokenMaturation, data: TokenData, batches: Int, rows: Int, length: Int,
                                objective: TokenMaturationObjective = TokenMaturationObjective(), seed: UInt64 = 1234,
                                pool: ComputePool? = .shared) throws -> Result {
        let available = max(1, data.blockCount(length: length) / max(rows, 1))
        let n = max(1, min(batches, available))
        var total = Result(loss: 0, regression: 0, contrastive: 0, predictions: 0, tokens: 0)
        for i in 0..<n {
            let batch = try data.batch(step: i, rows: rows, length: length)
            let rng = SeededRandomness(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i))
            let r = try lossAndGradients(model: model, inputIDs: batch, rng: rng, objective: objective, gradients: false, pool: pool)
            total.loss += r.loss / Float(n); total.regression += r.regression / Float(n); total.contrastive += r.contrastive / Float(n)
            total.predictions += r.predictions; total.tokens += r.tokens
        }
        return total
    }
}

extension TokenMaturationTrainingStep.Result {
    /// `held-out loss 5.1234 (reg 0.4321, nce 4.6913; 8192 predictions)`
    public var heldOutLine: String {
        String(format: "held-out loss %.4f (reg %.4f, nce %.4f; %d predictions)", loss, regression, contrastive, predictions)
    }
}
