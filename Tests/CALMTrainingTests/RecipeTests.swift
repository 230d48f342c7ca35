import CALMKernels
import CALMModel
import CALMTensor
import CALMTokenizer
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

/// The text-corpus path, the baseline trainer and the training kernels added for speed.
@Suite struct RecipeTests {
    /// A byte-level tokenizer folder: 256 byte tokens, two merges, `<|endoftext|>` (BOS and EOS)
    /// at 258; the loader adds [PAD] at 259.
    func writeTinyTokenizer(_ dir: URL) throws -> any TextTokenizer {
        var vocab: [[UInt8]?] = (0..<256).map { [UInt8($0)] }
        vocab.append(Array("ab".utf8))   // 256
        vocab.append(Array(" a".utf8))   // 257
        vocab.append(nil)                // 258: added token
        var def = HuggingFaceBPEDefinition(vocabulary: vocab, merges: [BPEMerge(97, 98), BPEMerge(32, 97)],
                                           addedTokens: [AddedToken(id: 258, content: "<|endoftext|>")])
        def.preTokenizer = [.byteLevel(addPrefixSpace: false, useRegex: true)]
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try def.write(to: dir.appendingPathComponent("tokenizer.json"))
        let config = #"{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false}"#
        try Data(config.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        return try TokenizerLoader.load(directory: dir, addPadToken: true)
    }

    @Test func textCorpusLayoutsAndAutoencoderRun() throws {
        let dir = try TemporaryDirectory()
        let tok = try writeTinyTokenizer(dir.url.appendingPathComponent("tok"))
        #expect(tok.bosTokenID == 258 && tok.eosTokenID == 258 && tok.padTokenID == 259 && tok.vocabularySize == 260)
        // JSON Lines and plain text give the same documents.
        let docs = ["ab ab cab", "a", "hello ab world, abc abc"]
        let jsonl = dir.url.appendingPathComponent("c.jsonl"), txt = dir.url.appendingPathComponent("c.txt")
        try Data(docs.map { #"{"text": "\#($0)", "meta": 1}"# }.joined(separator: "\n").utf8).write(to: jsonl)
        try Data(docs.joined(separator: "\n\n\n").utf8).write(to: txt)
        #expect(try TrainingCorpus.documents(jsonl) == docs)
        #expect(try TrainingCorpus.documents(txt) == docs)

        // Autoencoder layout: ids + EOS, padded with PAD to a multiple of K.
        let k = 2
        let ae = try TrainingCorpus.load(corpus: jsonl, tokenizer: tok, layout: .autoencoder(patchSize: k, eos: 258, pad: 259), cache: nil)
        var expected: [Int] = []
        for d in docs {
            let ids = tok.encode(d, addBOS: false, allowSpecialTokens: false) + [258]
            expected += ids + [Int](repeating: 259, count: (k - ids.count % k) % k)
        }
        #expect(ae.ids == expected && ae.ids.count % k == 0)
        #expect(tok.encode("ab", addBOS: false, allowSpecialTokens: false) == [256])
        // Causal layout: BOS + ids per document; the u32 cache round-trips.
        let cache = dir.url.appendingPathComponent("causal.u32")
        let causal = try TrainingCorpus.load(corpus: txt, tokenizer: tok, layout: .causal(bos: 258), cache: cache)
        #expect(causal.ids == docs.flatMap { [258] + tok.encode($0, addBOS: false, allowSpecialTokens: false) })
        #expect(try TokenData.load(cache).ids == causal.ids)

        // A short autoencoder run on the laid-out stream, with held-out accuracy reports.
        var c = AutoencoderConfig()
        c.vocabSize = tok.vocabularySize; c.hiddenSize = 16; c.intermediateSize = 24; c.latentSize = 4; c.patchSize = k
        c.padTokenID = 259; c.eosTokenID = 258; c.bosTokenID = 258
        let model = TrainableAutoencoder.initialized(config: c, seed: 3, std: 0.2)
        var o = TrainingRunOptions()
        o.steps = 8; o.batchSize = 2; o.blockSize = 8; o.learningRate = 1e-2; o.warmupSteps = 1; o.evalEvery = 4
        var losses: [Float] = [], evals: [String] = []
        let hooks = Trainer.Hooks(evaluate: { _ in ReconstructionAccuracy.evaluate(model, ids: ae.ids, pool: nil).line },
                                  log: { evals.append($0) })
        let end = try Trainer.trainAutoencoder(model, data: ae, options: o, output: dir.url.appendingPathComponent("ae"),
                                               pool: .serial, hooks: hooks) { losses.append($0.loss) }
        #expect(losses.count == 8 && losses.allSatisfy { $0.isFinite })
        #expect(losses.suffix(2).reduce(0, +) < losses.prefix(2).reduce(0, +), "losses \(losses)")
        #expect(evals.count == 2 && evals[0].hasPrefix("step 4: recon-acc mean "))
        _ = try Autoencoder.load(directory: end)
        let r = ReconstructionAccuracy.evaluate(model, ids: ae.ids, pool: nil)
        // σ and KL/dim are the posterior's, averaged over every chunk and latent dimension
        let chunks = ae.ids.count / k
        let (mu, logStd) = LatentSplit.split(model.module.encode(ae.ids, pool: nil).latent, rows: chunks, z: c.latentSize)
        let sigmas = logStd.map { Double(exp($0)) }
        let kls = zip(mu, logStd).map { 0.5 * (Double($0 * $0) + exp(2 * Double($1)) - 1 - 2 * Double($1)) }
        #expect(r.latentValues == chunks * c.latentSize)
        #expect(abs(r.meanSigma - sigmas.reduce(0, +) / Double(sigmas.count)) < 1e-5 && r.meanSigma > 0)
        #expect(abs(r.klPerDimension - kls.reduce(0, +) / Double(kls.count)) < 1e-4)
        #expect(r.line.contains(String(format: "sigma %.3f  KL/dim %.3f", r.meanSigma, r.klPerDimension)))
        #expect(r.tokens == ae.ids.count && r.contentTokens == ae.ids.filter { $0 != 259 }.count)
        #expect(r.mean >= 0 && r.mean <= 1 && r.sampled >= 0 && r.sampled <= 1)
    }

    @Test func shuffledBatchesAreDeterministicPermutations() throws {
        let d = TokenData(ids: Array(0..<40))
        let epoch = try (0..<5).flatMap { try d.batch(step: $0, rows: 2, length: 4, shuffleSeed: 9) }
        #expect(Set(epoch.map { $0[0] }) == Set(stride(from: 0, to: 40, by: 4)))
        #expect(try d.batch(step: 3, rows: 2, length: 4, shuffleSeed: 9) == epoch[6...7].map { $0 })
    }

    func tinyBaseline() -> LlamaBaselineConfig {
        var c = LlamaBaselineConfig()
        c.vocabSize = 32; c.hiddenSize = 16; c.intermediateSize = 24; c.numHiddenLayers = 1
        c.numAttentionHeads = 2; c.numKeyValueHeads = 1; c.bosTokenID = 30
        return c
    }

    /// Gradient accumulation: two micro-batches of 2 sequences make the step one batch of 4 makes
    /// (the cross-entropy is a mean over equal-sized batches, and micro-batch i of step s is data
    /// batch 2s + i), so the trained weights agree to rounding; the loss reported is their mean.
    @Test func accumulatedMicroBatchesMatchOneLargeBatch() throws {
        let dir = try TemporaryDirectory()
        var rng = TestRNG(21)
        let data = TokenData(ids: (0..<256).map { _ in rng.int(30) })
        func run(batch: Int, accumulate: Int, name: String) throws -> (TrainableLlama, [Float]) {
            let model = TrainableLlama.initialized(config: tinyBaseline(), seed: 4, std: 0.2)
            var o = TrainingRunOptions()
            o.steps = 3; o.batchSize = batch; o.accumulationSteps = accumulate; o.blockSize = 8
            o.learningRate = 1e-2; o.warmupSteps = 1; o.seed = 5
            var losses: [Float] = []
            try Trainer.trainBaseline(model, data: data, options: o, output: dir.url.appendingPathComponent(name), pool: .serial) {
                losses.append($0.loss)
            }
            return (model, losses)
        }
        let (large, largeLosses) = try run(batch: 4, accumulate: 1, name: "large")
        let (micro, microLosses) = try run(batch: 2, accumulate: 2, name: "micro")
        let (small, _) = try run(batch: 2, accumulate: 1, name: "small")
        for (a, b) in zip(largeLosses, microLosses) { #expect(abs(a - b) < 1e-4 * max(1, abs(a)), "losses \(largeLosses) vs \(microLosses)") }
        var worst: Float = 0, smallDiff: Float = 0
        for p in large.parameters.parameters {
            for (x, y) in zip(p.value, micro.parameters[p.name].value) { worst = max(worst, abs(x - y)) }
            for (x, y) in zip(p.value, small.parameters[p.name].value) { smallDiff = max(smallDiff, abs(x - y)) }
        }
        #expect(worst < 1e-4, "accumulated run differs from the large batch by \(worst)")
        // …and the comparison can fail: half the batch trains different weights.
        #expect(smallDiff > 1e-3, "batch 2 without accumulation should differ (\(smallDiff))")
        var bad = TrainingRunOptions(); bad.accumulationSteps = 0
        #expect(throws: TrainingError.self) {
            try Trainer.trainBaseline(TrainableLlama.initialized(config: tinyBaseline(), seed: 1), data: data, options: bad,
                                      output: dir.url.appendingPathComponent("bad"), pool: .serial)
        }
    }

    /// The held-out cross-entropy is the training step's loss without gradients: the same number,
    /// and the gradients left as they were.
    @Test func heldOutCrossEntropyIsTheLossWithoutGradients() throws {
        let model = TrainableLlama.initialized(config: tinyBaseline(), seed: 8, std: 0.2)
        var rng = TestRNG(3)
        let data = TokenData(ids: (0..<96).map { _ in rng.int(30) })
        let batches = try (0..<2).map { try data.batch(step: $0, rows: 2, length: 8) }
        let expected = try batches.map { try CausalLMTrainingStep.lossAndGradients(model: model, inputIDs: $0, pool: nil).loss }
        let before = model.parameters.gradients
        let held = try CausalLMTrainingStep.evaluate(model: model, data: data, batches: 2, rows: 2, length: 8, pool: nil)
        #expect(abs(held.loss - (expected[0] + expected[1]) / 2) < 1e-6, "\(held.loss) vs \(expected)")
        #expect(held.predictions == 2 * 2 * 7)
        #expect(model.parameters.gradients == before)
        #expect(held.heldOutLine.hasPrefix("held-out cross-entropy "))
    }

    @Test func baselineLossDecreasesAndSavesTheLlamaLayout() throws {
        let dir = try TemporaryDirectory()
        let model = TrainableLlama.initialized(config: tinyBaseline(), seed: 4, std: 0.2)
        var rng = TestRNG(12)
        let data = TokenData(ids: (0..<64).map { _ in rng.int(30) })
        var o = TrainingRunOptions()
        o.steps = 10; o.batchSize = 2; o.blockSize = 8; o.learningRate = 1e-2; o.warmupSteps = 1; o.shuffle = false
        var losses: [Float] = []
        let end = try Trainer.trainBaseline(model, data: data, options: o, output: dir.url.appendingPathComponent("b"),
                                            pool: .serial) { losses.append($0.loss) }
        #expect(losses.allSatisfy { $0.isFinite } && losses.first! > 3)
        #expect(losses.suffix(3).reduce(0, +) < losses.prefix(3).reduce(0, +), "losses \(losses)")
        // Hugging Face layout.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: end.appendingPathComponent("config.json"))) as! [String: Any]
        #expect(json["architectures"] as? [String] == ["LlamaForCausalLM"] && json["model_type"] as? String == "llama")
        #expect(json["num_key_value_heads"] as? Int == 1 && json["tie_word_embeddings"] as? Bool == false)
        let f = try SafetensorsFile(url: end.appendingPathComponent("model.safetensors"))
        for name in ["model.embed_tokens.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.0.mlp.down_proj.weight",
                     "model.norm.weight", "lm_head.weight"] {
            #expect(f.info(name) != nil, "\(name)")
        }
        let back = try TrainableLlama.load(directory: end)
        for p in model.parameters.parameters {
            let same = back.parameters[p.name].value == p.value
            #expect(same, "\(p.name)")
        }
        // Loss of the reloaded model on a batch equals the trained one's.
        let batch = try data.batch(step: 0, rows: 2, length: 8)
        let a = try CausalLMTrainingStep.lossAndGradients(model: model, inputIDs: batch, pool: nil).loss
        let b = try CausalLMTrainingStep.lossAndGradients(model: back, inputIDs: batch, pool: nil).loss
        #expect(a == b)
        // The engine's discrete loader reads the folder and gives the same next-token loss.
        let engine = try LlamaCausalLM.load(directory: end, options: LoadOptions(pool: .serial))
        let row = batch[0]
        let hidden = try engine.forward(tokens: [Array(row.dropLast())], caches: [engine.makeCache()])
        let logits = engine.logits(hidden, rows: row.count - 1)
        let v = model.config.vocabSize
        var ce = 0.0
        for i in 0..<(row.count - 1) {
            let r = logits[(i * v)..<((i + 1) * v)].map(Double.init)
            let m = r.max()!
            ce += log(r.reduce(0) { $0 + exp($1 - m) }) + m - r[row[i + 1]]
        }
        ce /= Double(row.count - 1)
        let ours = try CausalLMTrainingStep.lossAndGradients(model: back, inputIDs: [row], pool: nil).loss
        #expect(abs(Double(ours) - ce) < 1e-4, "engine \(ce) vs training \(ours)")
    }

    @Test func baselineGradientMatchesFiniteDifferences() throws {
        let model = TrainableLlama.initialized(config: tinyBaseline(), seed: 5, std: 0.3)
        let batch = [[1, 5, 7, 2, 9], [3, 3, 8, 1, 0]]
        _ = try CausalLMTrainingStep.lossAndGradients(model: model, inputIDs: batch, pool: nil)
        for name in ["lm_head.weight", "model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight", "model.norm.weight"] {
            let p = model.parameters[name]
            let analytic = p.grad
            checkGradient(name, p, analytic: analytic, h: 2e-3, tol: 3e-2) {
                Double((try? CausalLMTrainingStep.lossAndGradients(model: model, inputIDs: batch, pool: nil).loss) ?? .nan)
            }
        }
    }

    @Test func blockedGemmCrossesEveryBlockEdge() {
        // m, n, k past the kernel's MC / NC / KC blocks and off the 6 × 16 register tile.
        let m = 13, n = 530, k = 270
        var rng = TestRNG(77)
        let a = rng.floats(m * k), b = rng.floats(n * k)
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        calm_gemm_nt(nil, Int32(m), Int32(n), Int32(k), a, k, b, k, &c1, n, 0)
        calm_gemm_nt(ComputePool.shared.raw, Int32(m), Int32(n), Int32(k), a, k, b, k, &c2, n, 0)
        #expect(c1 == c2)
        var worst: Double = 0
        for i in 0..<m { for j in stride(from: 0, to: n, by: 7) {
            var s = 0.0
            for kk in 0..<k { s += Double(a[i * k + kk]) * Double(b[j * k + kk]) }
            worst = max(worst, abs(s - Double(c1[i * n + j])))
        } }
        #expect(worst < 1e-3, "max error \(worst)")
    }

    @Test func fusedCrossEntropyMatchesTheUnfusedOp() {
        var rng = TestRNG(5)
        let rows = 5, v = 37
        let logits = rng.floats(rows * v, scale: 3)
        let labels = (0..<rows).map { _ in rng.int(v) }
        let (loss, saved) = CrossEntropyOp.forward(logits: logits, labels: labels, vocab: v)
        let grad = CrossEntropyOp.backward(saved: saved, labels: labels, vocab: v, scale: 4)
        var fused = logits
        let fusedLoss = CrossEntropyOp.fused(logits: &fused, labels: labels, vocab: v, scale: 4, pool: nil)
        #expect(abs(fusedLoss - loss) < 1e-5)
        #expect(zip(fused, grad).allSatisfy { abs($0 - $1) < 1e-6 })
    }
}
