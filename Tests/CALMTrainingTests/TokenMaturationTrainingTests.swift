import CALMModel
import CALMTensor
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

/// Token Maturation training (spec §3): the new ops' and modules' gradients against finite
/// differences, the whole loss on a tiny model, step-0 equivalence with the discrete backbone, the
/// tail-only mask, a short training run whose exported folder loads and generates, and exact resume.
@Suite struct TokenMaturationTrainingTests {
    // MARK: fixtures

    static func tinyLlama(vocab: Int = 24, layers: Int = 1) -> LlamaCausalLMConfig {
        var c = LlamaCausalLMConfig()
        c.vocabSize = vocab; c.hiddenSize = 16; c.intermediateSize = 24; c.numHiddenLayers = layers
        c.numAttentionHeads = 2; c.numKeyValueHeads = 1; c.bosTokenID = vocab - 2; c.eosTokenIDs = [vocab - 1]
        c.maxPositionEmbeddings = 128; c.architectures = ["LlamaForCausalLM"]
        return c
    }

    static func tinySettings() -> TokenMaturationSettings {
        var s = TokenMaturationSettings()
        s.maxTailLength = 8; s.tailLength = 4; s.alphaChannels = 8
        return s
    }

    /// A random discrete baseline folder (`RandomModelWriter.writeLlama`) and the TM model started from it.
    static func tinyModel(_ dir: URL, vocab: Int = 24, layers: Int = 1, trainEmbeddings: Bool = false,
                          seed: UInt64 = 3) throws -> (baseline: URL, model: TrainableTokenMaturation) {
        let baseline = dir.appendingPathComponent("baseline")
        try RandomModelWriter.writeLlama(config: tinyLlama(vocab: vocab, layers: layers), dtype: .f32, to: baseline, seed: seed)
        let model = try TrainableTokenMaturation.fromBaseline(directory: baseline, settings: tinySettings(),
                                                               trainEmbeddings: trainEmbeddings, seed: seed)
        return (baseline, model)
    }

    // MARK: head fit

    /// `--fit-head`: the fitted head is the least-squares read-out of the next embedding from the
    /// clean final states: the mean L_reg over the fit's rows falls, and no small step of the head
    /// in any direction lowers it (a minimum, up to the tiny ridge).
    @Test func fittedHeadMinimisesTheCleanRegression() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url, vocab: 24, layers: 1)
        var rng = TestRNG(17)
        let data = TokenData(ids: (0..<400).map { _ in rng.int(22) })
        let d = model.config.hiddenSize
        let report = try TokenMaturationHeadFit.fit(model, data: data, batches: 3, rows: 2, length: 12, ridge: 1e-9, pool: nil)
        #expect(report.rows == 3 * 2 * 11)
        #expect(report.regressionAfter < report.regressionBefore, "\(report.line)")
        let (xs, ys, count) = try TokenMaturationHeadFit.cleanPairs(model, data: data, batches: 3, rows: 2, length: 12, pool: nil)
        let w = model.parameters["tm.head.weight"].value, b = model.parameters["tm.head.bias"].value
        let best = TokenMaturationHeadFit.meanRegression(xs: xs, ys: ys, rows: count, width: d, weight: w, bias: b)
        #expect(abs(best - report.regressionAfter) < 1e-6 * max(1, best))
        for trial in 0..<6 {
            let dw = (0..<(d * d)).map { _ in 1e-3 * rng.float() }, db = (0..<d).map { _ in 1e-3 * rng.float() }
            for sign: Float in [1, -1] {
                let moved = TokenMaturationHeadFit.meanRegression(xs: xs, ys: ys, rows: count, width: d,
                                                                  weight: zip(w, dw).map { $0 + sign * $1 },
                                                                  bias: zip(b, db).map { $0 + sign * $1 })
                #expect(moved >= best * (1 - 1e-6), "trial \(trial): \(moved) < \(best)")
            }
        }
        // fewer clean positions than the width: a typed error
        #expect(throws: TrainingError.self) {
            try TokenMaturationHeadFit.fit(model, data: TokenData(ids: Array(data.ids.prefix(12))), batches: 1, rows: 1, length: 12, pool: nil)
        }
    }

    // MARK: ops

    @Test func filmOp() {
        var rng = TestRNG(41)
        let seqs = 2, t = 3, d = 4
        let x = param("x", [seqs * t, d], &rng), gb = param("gb", [seqs, 2 * d], &rng, scale: 0.5)
        let c = rng.floats(seqs * t * d)
        let (dx, dgb) = FiLMOp.backward(c, input: x.value, gammaBeta: gb.value, sequences: seqs, length: t, width: d)
        func loss() -> Double { weightedSum(FiLMOp.forward(x.value, gammaBeta: gb.value, sequences: seqs, length: t, width: d), c) }
        checkGradient("film dx", x, analytic: dx, loss: loss)
        checkGradient("film dgamma-beta", gb, analytic: dgb, loss: loss)
    }

    @Test func rowGatherScatterAddsRepeatedRows() {
        var rng = TestRNG(42)
        let table = param("t", [5, 3], &rng)
        let ids = [4, 0, 4, 2, 4]
        let c = rng.floats(ids.count * 3)
        let dt = RowGatherOp.backward(c, width: 3, indices: ids, tableRows: 5)
        checkGradient("gather", table, analytic: dt) { weightedSum(RowGatherOp.forward(table: table.value, width: 3, indices: ids), c) }
        #expect(dt[3] == 0 && dt[3 * 3 + 2] == 0)
    }

    @Test func rowNormalize() {
        var rng = TestRNG(43)
        let rows = 4, d = 5, r: Float = 2.5
        let x = param("x", [rows, d], &rng)
        let (y, saved) = RowNormalizeOp.forward(x.value, rows: rows, width: d, radius: r)
        for i in 0..<rows {
            let n = (0..<d).reduce(Float(0)) { $0 + y[i * d + $1] * y[i * d + $1] }.squareRoot()
            #expect(abs(n - r) < 1e-5)
        }
        let c = rng.floats(rows * d)
        let dx = RowNormalizeOp.backward(c, output: y, saved: saved, rows: rows, width: d, radius: r)
        checkGradient("row normalize", x, analytic: dx, h: 1e-3) {
            weightedSum(RowNormalizeOp.forward(x.value, rows: rows, width: d, radius: r).y, c)
        }
    }

    @Test func tailCorruption() {
        var rng = TestRNG(44)
        let rows = 4, d = 3
        let e = param("e", [rows, d], &rng), noise = rng.floats(rows * d)
        let alphas: [Float] = [1, 0.5, 0.25, 0]
        let z = TailCorruptionOp.forward(clean: e.value, noise: noise, alphas: alphas, width: d)
        #expect(Array(z[0..<d]) == Array(e.value[0..<d]), "α = 1 leaves a clean row as it is")
        #expect(Array(z[(3 * d)...]) == Array(noise[(3 * d)...]), "α = 0 is pure noise (an embryo)")
        let c = rng.floats(rows * d)
        checkGradient("corruption", e, analytic: TailCorruptionOp.backward(c, alphas: alphas, width: d)) {
            weightedSum(TailCorruptionOp.forward(clean: e.value, noise: noise, alphas: alphas, width: d), c)
        }
    }

    @Test func maturationLoss() {
        var rng = TestRNG(45)
        let n = 4, m = 5, d = 6, lambda: Float = 0.7, scale: Float = 4
        let pred = param("pred", [n, d], &rng), targets = param("targets", [n, d], &rng), negatives = param("neg", [m, d], &rng)
        // prediction 1's target is negative 3: a collision, masked out of its softmax
        for j in 0..<d { targets.value[1 * d + j] = negatives.value[3 * d + j] }
        var excluded = [Bool](repeating: false, count: n * m)
        excluded[1 * m + 3] = true
        let weights: [Float] = [1, 0.5, 0.05, 0.3]
        func forward() -> TokenMaturationLossOp.Output {
            TokenMaturationLossOp.forward(predictions: pred.value, targets: targets.value, negatives: negatives.value, rows: n,
                                          negativeCount: m, width: d, excluded: excluded, weights: weights, lambda: lambda,
                                          logitScale: scale, pool: nil)
        }
        let o = forward()
        #expect(abs(o.loss - (o.regression + lambda * o.contrastive)) < 1e-5)
        #expect(o.probabilities[1 * (1 + m) + 1 + 3] == 0, "the colliding negative has no probability")
        let (dp, dt, dn) = TokenMaturationLossOp.backward(o, predictions: pred.value, targets: targets.value, rows: n,
                                                          negativeCount: m, width: d, weights: weights, lambda: lambda,
                                                          logitScale: scale, pool: nil)
        // the collision breaks the tie between targets[1] and negatives[3]: differentiate them separately
        func loss() -> Double { Double(forward().loss) }
        checkGradient("loss d predictions", pred, analytic: dp, h: 1e-3, loss: loss)
        checkGradient("loss d negatives", negatives, analytic: dn, h: 1e-3, loss: loss)
        checkGradient("loss d targets", targets, analytic: dt, h: 1e-3, loss: loss)
        // all-masked negatives: the InfoNCE term is 0
        let alone = TokenMaturationLossOp.forward(predictions: pred.value, targets: targets.value, negatives: negatives.value, rows: n,
                                                  negativeCount: m, width: d, excluded: [Bool](repeating: true, count: n * m),
                                                  weights: weights, lambda: lambda, logitScale: scale, pool: nil)
        #expect(abs(alone.contrastive) < 1e-6)
    }

    @Test(arguments: [(2, 2), (4, 1)])
    func maskedAttention(_ heads: (Int, Int)) {
        var rng = TestRNG(46)
        let (h, kv) = heads, d = 4, seqs = 2, t = 5
        let op = CausalAttentionOp(heads: h, kvHeads: kv, headDim: d)
        let q = param("q", [seqs * t, h * d], &rng), k = param("k", [seqs * t, kv * d], &rng), v = param("v", [seqs * t, kv * d], &rng)
        // sequence 0: rows 2… see only keys 2…; sequence 1: plain causal
        let keyStart: [Int32] = [0, 0, 2, 2, 2, 0, 0, 0, 0, 0]
        let c = rng.floats(seqs * t * h * d)
        let (out, saved) = op.forward(q: q.value, k: k.value, v: v.value, sequences: seqs, length: t, keyStart: keyStart)
        let (dq, dk, dv) = op.backward(c, q: q.value, k: k.value, v: v.value, saved: saved, sequences: seqs, length: t)
        func loss() -> Double {
            weightedSum(op.forward(q: q.value, k: k.value, v: v.value, sequences: seqs, length: t, keyStart: keyStart).out, c)
        }
        checkGradient("masked attention dq", q, analytic: dq, h: 3e-3, loss: loss)
        checkGradient("masked attention dk", k, analytic: dk, h: 3e-3, loss: loss)
        checkGradient("masked attention dv", v, analytic: dv, h: 3e-3, loss: loss)
        // rows 2…4 of sequence 0 equal rows 0…2 of those positions run as a sequence of their own
        let alone = op.forward(q: Array(q.value[(2 * h * d)..<(5 * h * d)]), k: Array(k.value[(2 * kv * d)..<(5 * kv * d)]),
                               v: Array(v.value[(2 * kv * d)..<(5 * kv * d)]), sequences: 1, length: 3).out
        for (a, b) in zip(out[(2 * h * d)..<(5 * h * d)], alone) { #expect(abs(a - b) < 1e-6) }
        // and sequence 1 is the plain causal result
        let plain = op.forward(q: q.value, k: k.value, v: v.value, sequences: seqs, length: t).out
        #expect(Array(out[(t * h * d)...]) == Array(plain[(t * h * d)...]))
        #expect(Array(out[0..<(2 * h * d)]) == Array(plain[0..<(2 * h * d)]))
    }

    // MARK: modules

    @Test func conditioningModules() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url)
        jitter(model.parameters, seed: 47, scale: 0.3)
        let c = model.config, d = c.hiddenSize, p = model.parameters
        let alpha = AlphaConditionerModule(parameters: p, channels: c.alphaChannels, scale: c.alphaScale, maxPeriod: c.alphaMaxPeriod)
        let alphas: [Float] = [1, 0.5, 1, 0.25, 0, 0.5]
        var rng = TestRNG(48)
        let w = rng.floats(alphas.count * d)
        p.zeroGrad()
        let (y, saved) = alpha.forward(alphas: alphas, pool: nil)
        #expect(saved.distinct == 4)
        // rows with the same α get the same vector, which is the inference conditioner's
        #expect(Array(y[0..<d]) == Array(y[(2 * d)..<(3 * d)]))
        alpha.backward(w, saved: saved, pool: nil)
        func alphaLoss() -> Double { weightedSum(alpha.forward(alphas: alphas, pool: nil).y, w) }
        for name in ["tm.alpha_mlp.0.weight", "tm.alpha_mlp.0.bias", "tm.alpha_mlp.2.weight", "tm.alpha_mlp.2.bias"] {
            checkGradient(name, p[name], analytic: p[name].grad, h: 3e-3, loss: alphaLoss)
        }

        let film = TailLengthFiLMModule(parameters: p)
        let seqs = 2, t = 3
        let x = Parameter(name: "x", shape: [seqs * t, d], value: rng.floats(seqs * t * d))
        let w2 = rng.floats(x.count)
        p.zeroGrad()
        let (_, fs) = film.forward(x.value, tailLengths: [3, 8], length: t, pool: nil)
        let dx = film.backward(w2, saved: fs, pool: nil)
        func filmLoss() -> Double { weightedSum(film.forward(x.value, tailLengths: [3, 8], length: t, pool: nil).y, w2) }
        checkGradient("film dx", x, analytic: dx, h: 3e-3, loss: filmLoss)
        for name in ["tm.tail_length.embedding.weight", "tm.tail_length.proj.weight", "tm.tail_length.proj.bias"] {
            checkGradient(name, p[name], analytic: p[name].grad, h: 3e-3, loss: filmLoss)
        }
        // only the rows of K = 3 and K = 8 receive gradient
        let table = p["tm.tail_length.embedding.weight"].grad
        #expect(table[0..<(2 * d)].allSatisfy { $0 == 0 } && table[(2 * d)..<(3 * d)].contains { $0 != 0 })
    }

    // MARK: the whole loss

    /// Two sequences of 9 tokens: one conditional (K = 3 at cut 2), one with the tail-only mask
    /// (K = 5 at cut 1); every path of the objective is active.
    static func plan(_ model: TrainableTokenMaturation, negatives: [Int], seed: UInt64 = 49) -> TokenMaturationTrainingPlan {
        var rng = TestRNG(seed)
        let seqs = [TokenMaturationTrainingPlan.Sequence(tailLength: 3, cut: 2),
                    TokenMaturationTrainingPlan.Sequence(tailLength: 5, cut: 1, unconditional: true)]
        return TokenMaturationTrainingPlan(sequences: seqs, noise: rng.floats(8 * model.hidden), negatives: negatives)
    }

    @Test func wholeLossMatchesFiniteDifferences() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url, layers: 2, trainEmbeddings: true)
        jitter(model.parameters, seed: 50, scale: 0.2)
        let batch = [[1, 5, 7, 2, 9, 3, 3, 8, 1], [3, 3, 8, 1, 0, 4, 6, 2, 5]]
        // negatives include targets of both sequences (collisions) and a repeat
        let plan = Self.plan(model, negatives: [7, 11, 2, 17, 11, 20])
        var o = TokenMaturationObjective()
        o.logitScale = 5; o.lambda = 0.8
        let r = try TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: batch, plan: plan, objective: o, pool: nil)
        // rows 0…4 of sequence 0 (slots 1…5) and 0…5 of sequence 1 (slots 1…6) are predictions
        #expect(r.predictions == 5 + 6 && r.loss.isFinite)
        func loss() -> Double {
            Double((try? TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: batch, plan: plan, objective: o,
                                                                      gradients: false, pool: nil).loss) ?? .nan)
        }
        for name in ["tm.head.weight", "tm.head.bias", "tm.alpha_mlp.0.weight", "tm.alpha_mlp.2.weight", "tm.tail_length.embedding.weight",
                     "tm.tail_length.proj.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
                     "model.norm.weight", "model.embed_tokens.weight"] {
            let p = model.parameters[name]
            let analytic = p.grad
            #expect(analytic.contains { $0 != 0 }, "\(name) gets a gradient")
            checkGradient(name, p, analytic: analytic, h: 2e-3, tol: 3e-2, loss: loss)
        }
    }

    @Test func frozenEmbeddingsGetNoGradientAndThePlanIsChecked() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url)
        #expect(!model.trainsEmbeddings)
        let batch = [[1, 5, 7, 2, 9, 3, 3, 8, 1], [3, 3, 8, 1, 0, 4, 6, 2, 5]]
        _ = try TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: batch, plan: Self.plan(model, negatives: [1, 2]), pool: nil)
        #expect(model.parameters[model.embeddingName].grad.allSatisfy { $0 == 0 })
        // a tail that runs past the sequence, ids outside the vocabulary: typed errors
        var bad = Self.plan(model, negatives: [1])
        bad.sequences[0].cut = 6
        #expect(throws: TrainingError.self) { try TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: batch, plan: bad, pool: nil) }
        #expect(throws: TrainingError.self) {
            try TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: [[1, 99, 3, 4, 5, 6, 7, 8, 9], batch[1]],
                                                             plan: Self.plan(model, negatives: [1]), pool: nil)
        }
        var objective = TokenMaturationObjective()
        objective.minimumWeight = 0
        #expect(throws: TrainingError.invalidInput("--min-weight: must be in (0, 1], got 0.0")) { try objective.validate() }
    }

    // MARK: initialisation

    @Test func stepZeroEqualsTheDiscreteBackbone() throws {
        let dir = try TemporaryDirectory()
        // a train-baseline folder whose embedding rows share one norm, so E = R·rownormalize(W) = W
        var lc = LlamaBaselineConfig()
        lc.vocabSize = 24; lc.hiddenSize = 16; lc.intermediateSize = 24; lc.numHiddenLayers = 2
        lc.numAttentionHeads = 2; lc.numKeyValueHeads = 1; lc.bosTokenID = 22
        let baseline = TrainableLlama.initialized(config: lc, seed: 9, std: 0.3)
        let w = baseline.parameters["model.embed_tokens.weight"]
        let d = lc.hiddenSize
        for r in 0..<lc.vocabSize {
            let n = (0..<d).reduce(Float(0)) { $0 + w.value[r * d + $1] * w.value[r * d + $1] }.squareRoot()
            for j in 0..<d { w.value[r * d + j] *= 1.3 / n }
        }
        let folder = dir.url.appendingPathComponent("baseline")
        try baseline.save(to: folder)
        let model = try TrainableTokenMaturation.fromBaseline(directory: folder, settings: Self.tinySettings())
        #expect(abs(model.radius - 1.3) < 1e-5)
        #expect(model.parameters["tm.alpha_mlp.2.weight"].value.allSatisfy { $0 == 0 })
        #expect(model.parameters["tm.tail_length.proj.weight"].value.allSatisfy { $0 == 0 })

        // clean inputs: K = 1 (the newest slot is not in the window), every row α = 1
        let row = [22, 5, 7, 2, 9, 3, 3, 8]
        let plan = TokenMaturationTrainingPlan(sequences: [.init(tailLength: 1, cut: row.count - 2)],
                                               noise: [Float](repeating: 0, count: d), negatives: [1, 2, 3])
        let f = try TokenMaturationTrainingStep.forward(model: model, inputIDs: [row], plan: plan,
                                                        objective: TokenMaturationObjective(), pool: nil)
        #expect(f.length == row.count - 1)
        // the backbone's hidden states equal the discrete backbone's on the same embeddings, and the
        // identity head passes them through
        let discrete = BackboneModule(config: lc.backboneConfig, parameters: baseline.parameters, prefix: "model")
        let inputs = EmbeddingOp(table: w).forward(Array(row.prefix(f.length)))
        let (reference, _) = discrete.forward(inputs, sequences: 1, length: f.length, pool: nil)
        let maxDiff = zip(f.last, reference).map { abs($0 - $1) }.max() ?? 0
        #expect(maxDiff < 1e-5, "backbone states differ by \(maxDiff)")
        #expect(f.predictions == f.last, "the identity head changes nothing")
        // and the engine's discrete model (LlamaCausalLM) computes the same final hidden states
        let engine = try LlamaCausalLM.load(directory: folder, options: LoadOptions(pool: .serial))
        let hidden = try engine.forward(tokens: [Array(row.prefix(f.length))], caches: [engine.makeCache()])
        let engineDiff = zip(f.last, hidden).map { abs($0 - $1) }.max() ?? 0
        #expect(engineDiff < 1e-4, "engine states differ by \(engineDiff)")
    }

    @Test func tailOnlyMaskHidesThePrefixFromTheTail() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url, layers: 2)
        jitter(model.parameters, seed: 51, scale: 0.2)
        let d = model.hidden
        var rng = TestRNG(52)
        let noise = rng.floats(5 * d)
        func predictions(_ row: [Int], unconditional: Bool) throws -> [Float] {
            let plan = TokenMaturationTrainingPlan(sequences: [.init(tailLength: 5, cut: 2, unconditional: unconditional)],
                                                   noise: noise, negatives: [1])
            return try TokenMaturationTrainingStep.forward(model: model, inputIDs: [row], plan: plan,
                                                           objective: TokenMaturationObjective(), pool: nil).predictions
        }
        let a = [1, 2, 3, 4, 5, 6, 7, 8, 9], b = [10, 11, 12, 4, 5, 6, 7, 8, 9]   // same tail (positions 3…), other prefix
        let ua = try predictions(a, unconditional: true), ub = try predictions(b, unconditional: true)
        // tail rows 3…6 (slots 1…4 of the tail) do not see the prefix
        #expect(Array(ua[(3 * d)...]) == Array(ub[(3 * d)...]))
        let ca = try predictions(a, unconditional: false), cb = try predictions(b, unconditional: false)
        #expect(Array(ca[(3 * d)...]) != Array(cb[(3 * d)...]), "the conditional pass does see it")
        // rows up to the cut are the same in both passes
        #expect(Array(ua[0..<(3 * d)]) == Array(ca[0..<(3 * d)]))
    }

    // MARK: training runs

    /// A cyclic token stream (easy to learn) with BOS markers.
    /// A trained checkpoint exported and loaded as an inference model generates in-vocabulary ids,
    /// and greedy consistency holds: K = 1, α_max = 1 decodes the training forward's argmax ⟨ẑ, e⟩
    /// step by step (`model` is the trained model the checkpoint holds).
    static func expectExportedFolderGenerates(_ model: TrainableTokenMaturation, checkpoint end: URL, exportTo exported: URL,
                                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        try ModelFolderExport.export(from: end, to: exported, dtype: .f32)
        let tm = try TokenMaturationModel.load(directory: exported, options: LoadOptions(pool: .serial))
        var p = TokenMaturationParameters(maxTokens: 6, seed: 1)
        p.stopAtEndToken = false
        let result = try tm.generate(prompt: [22, 1, 8], parameters: p)
        #expect(result.tokens.count == 6 && result.tokens.allSatisfy { $0 >= 0 && $0 < 24 }, sourceLocation: sourceLocation)

        var greedy = TokenMaturationParameters(maxTokens: 5, tailLength: 1, seed: 2)
        greedy.maturityMax = 1
        greedy.stopAtEndToken = false
        let decoded = try tm.generate(prompt: [22, 1, 8], parameters: greedy).tokens
        var ids = [22, 1, 8]
        let d = model.hidden, v = model.config.vocabSize
        let e = RowNormalizeOp.forward(model.parameters[model.embeddingName].value, rows: v, width: d, radius: model.radius).y
        for _ in 0..<5 {
            let plan = TokenMaturationTrainingPlan(sequences: [.init(tailLength: 1, cut: ids.count - 1)],
                                                   noise: [Float](repeating: 0, count: d), negatives: [])
            let f = try TokenMaturationTrainingStep.forward(model: model, inputIDs: [ids + [0]], plan: plan,
                                                            objective: TokenMaturationObjective(), pool: .serial)
            let z = Array(f.predictions[((ids.count - 1) * d)..<(ids.count * d)])
            let scores = (0..<v).map { i in (0..<d).reduce(Float(0)) { $0 + z[$1] * e[i * d + $1] } }
            ids.append(scores.indices.max { scores[$0] < scores[$1] } ?? 0)
        }
        #expect(decoded == Array(ids[3...]), "engine \(decoded) vs training forward \(Array(ids[3...]))", sourceLocation: sourceLocation)
    }

    /// The resume setting both backbones share: a 4-step run with checkpoints every 2 steps (trained
    /// embeddings, the tail-only mask on half the sequences, cosine decay), then the same run resumed
    /// from `checkpoint-2`; the resumed losses must equal the uninterrupted run's last two.
    struct ResumedRun {
        var data: TokenData, options: TrainingRunOptions, objective: TokenMaturationObjective
        var full: [Float], resumed: [Float]
        var end: URL, resumedEnd: URL, mid: URL
    }

    static func runAndResume(in dir: URL, fresh: () throws -> TrainableTokenMaturation) throws -> ResumedRun {
        let data = stream(count: 300)
        var o = TrainingRunOptions()
        o.steps = 4; o.batchSize = 2; o.blockSize = 12; o.checkpointEvery = 2; o.learningRate = 5e-3; o.warmupSteps = 1
        o.cosineDecay = true
        var objective = TokenMaturationObjective()
        objective.negatives = 8; objective.unconditionalProbability = 0.5
        var full: [Float] = []
        let end = try Trainer.trainTokenMaturation(try fresh(), data: data, options: o, objective: objective,
                                                   output: dir.appendingPathComponent("a"), pool: .serial) { full.append($0.loss) }
        let mid = dir.appendingPathComponent("a/checkpoint-2")
        var resumed: [Float] = []
        let resumedEnd = try Trainer.trainTokenMaturation(try TrainableTokenMaturation.load(directory: mid, trainEmbeddings: true),
                                                          data: data, options: o, objective: objective,
                                                          output: dir.appendingPathComponent("b"), resume: mid, pool: .serial) {
            resumed.append($0.loss)
        }
        return ResumedRun(data: data, options: o, objective: objective, full: full, resumed: resumed, end: end,
                          resumedEnd: resumedEnd, mid: mid)
    }

    static func stream(count: Int) -> TokenData {
        TokenData(ids: (0..<count).map { $0 % 11 == 0 ? 22 : ($0 * 7) % 13 + 1 })
    }

    @Test func shortRunLearnsAndTheExportedFolderGenerates() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url, layers: 2)
        let data = Self.stream(count: 400)
        var o = TrainingRunOptions()
        o.steps = 30; o.batchSize = 4; o.blockSize = 16; o.learningRate = 2e-2; o.warmupSteps = 2; o.cosineDecay = true
        o.checkpointEvery = 0
        var objective = TokenMaturationObjective()
        objective.negatives = 16
        func heldOut() throws -> Float {
            try TokenMaturationTrainingStep.evaluate(model: model, data: data, batches: 3, rows: 4, length: 16, objective: objective,
                                                     pool: .serial).loss
        }
        let before = try heldOut()
        var lines: [String] = []
        var evaluations: [String] = []
        var hooks = Trainer.Hooks(log: { evaluations.append($0) })
        hooks.evaluate = { _ in try TokenMaturationTrainingStep.evaluate(model: model, data: data, batches: 2, rows: 4, length: 16,
                                                                          objective: objective, pool: .serial).heldOutLine }
        o.evalEvery = 15
        let end = try Trainer.trainTokenMaturation(model, data: data, options: o, objective: objective,
                                                   output: dir.url.appendingPathComponent("tm"), pool: .serial, hooks: hooks) {
            lines.append($0.line)
        }
        let after = try heldOut()
        #expect(after < 0.8 * before, "held-out loss \(before) → \(after)")
        #expect(lines.count == 30 && lines[0].hasPrefix("step 1/30  loss "))
        #expect(evaluations.count == 2 && evaluations[0].hasPrefix("step 15: held-out loss "), "\(evaluations)")
        // the learning rate warms up and then decays along the cosine
        #expect(lines[1].contains("lr 2.00e-02") && lines[29].contains("lr 2.00e-03"), "\(lines[1]) / \(lines[29])")

        // the checkpoint is a TM folder; exported, it loads and generates
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: end.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(json?["model_type"] as? String == "token_maturation" && json?["backbone"] as? String == "llama")
        #expect(json?["embedding_radius"] as? Double != nil && json?["max_tail_length"] as? Int == 8)
        try Self.expectExportedFolderGenerates(model, checkpoint: end, exportTo: dir.url.appendingPathComponent("export"))
    }

    @Test func resumeReproducesAnUninterruptedRun() throws {
        let dir = try TemporaryDirectory()
        let (baseline, _) = try Self.tinyModel(dir.url)
        func fresh() throws -> TrainableTokenMaturation {
            try TrainableTokenMaturation.fromBaseline(directory: baseline, settings: Self.tinySettings(), trainEmbeddings: true, seed: 3)
        }
        let run = try Self.runAndResume(in: dir.url, fresh: fresh)
        let (data, o, objective, mid) = (run.data, run.options, run.objective, run.mid)
        #expect(run.end.lastPathComponent == "checkpoint-4" && run.full.count == 4 && run.full.allSatisfy { $0.isFinite })
        #expect(run.resumed == Array(run.full[2...]))
        let a = try TrainableTokenMaturation.load(directory: run.end), b = try TrainableTokenMaturation.load(directory: run.resumedEnd)
        for p in a.parameters.parameters { #expect(b.parameters[p.name].value == p.value, "\(p.name)") }
        // the embeddings were trained and kept out of weight decay
        #expect(a.decays(a.parameters["tm.head.weight"]))
        #expect(!a.decays(a.parameters[a.embeddingName]))
        #expect(a.parameters[a.embeddingName].value != (try fresh()).parameters[a.embeddingName].value)
        // a resumed run must train what its optimizer state covers
        #expect(throws: TrainingError.self) {
            try Trainer.trainTokenMaturation(try TrainableTokenMaturation.load(directory: mid, trainEmbeddings: false), data: data,
                                             options: o, objective: objective, output: dir.url.appendingPathComponent("c"),
                                             resume: mid, pool: .serial)
        }
    }

    @Test func baselineFolderErrorsAreTyped() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url)
        // a TM folder is not a baseline
        let tmFolder = dir.url.appendingPathComponent("tm")
        try model.save(to: tmFolder)
        #expect(throws: ModelError.self) { try TrainableTokenMaturation.fromBaseline(directory: tmFolder) }
        // a baseline whose config names a bad size: the file and key are in the message
        let broken = dir.url.appendingPathComponent("broken")
        try RandomModelWriter.writeLlama(config: Self.tinyLlama(), dtype: .f32, to: broken)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: broken.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        json["num_attention_heads"] = 3
        try JSONSerialization.data(withJSONObject: json).write(to: broken.appendingPathComponent("config.json"))
        do {
            _ = try TrainableTokenMaturation.fromBaseline(directory: broken)
            Issue.record("a bad config loaded")
        } catch let error as ModelError {
            #expect("\(error)".contains("config.json") && "\(error)".contains("num_attention_heads"), "\(error)")
        }
        // a saved TM folder loads back with every value
        let back = try TrainableTokenMaturation.load(directory: tmFolder)
        for p in model.parameters.parameters { #expect(back.parameters[p.name].value == p.value, "\(p.name)") }
        #expect(back.radius == model.radius && back.config.maxTailLength == 8 && back.config.alphaChannels == 8)
    }

    @Test func cosineSchedule() {
        let s = LearningRateSchedule(peak: 1, warmupSteps: 10, decaySteps: 110, finalRatio: 0.1)
        #expect(s.rate(step: 5) == 0.5)
        #expect(s.rate(step: 10) == 1)
        #expect(abs(s.rate(step: 60) - 0.55) < 1e-6)
        #expect(abs(s.rate(step: 110) - 0.1) < 1e-6 && abs(s.rate(step: 500) - 0.1) < 1e-6)
        #expect(WarmupConstantSchedule(peak: 0.3, warmupSteps: 2).rate(step: 1000) == 0.3)
    }
}
