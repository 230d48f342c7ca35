import CALMEvaluation
import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

@Suite("Discrete Llama baseline")
struct LlamaTests {
    @Test func loadsTiedAndUntiedAndDetectsTheKind() throws {
        let dir = try TemporaryDirectory()
        let untied = try TinyLlama.write(to: dir.url.appendingPathComponent("untied"))
        let tied = try TinyLlama.write(to: dir.url.appendingPathComponent("tied"), shape: .init(tied: true))
        #expect(try ModelLoader.kind(directory: untied) == .llama)
        let a = try TinyLlama.load(untied), b = try TinyLlama.load(tied)
        #expect(!a.tiedEmbeddings && b.tiedEmbeddings)
        #expect(a.config.eosTokenIDs == [5] && a.config.bosTokenID == 0)
        // Tied: logits are hidden · Eᵀ with E the embedding matrix.
        let cache = b.makeCache()
        let hidden = try b.forward(tokens: [[0, 3, 2]], caches: [cache])
        let logits = b.logits(hidden, rows: 3)
        for row in 0..<3 {
            for v in 0..<6 {
                var e = [Float](repeating: 0, count: 16)
                e.withUnsafeMutableBufferPointer { b.embedding.lookup(v, into: $0.baseAddress!) }
                var dot: Float = 0
                for d in 0..<16 { dot += hidden[row * 16 + d] * e[d] }
                #expect(abs(dot - logits[row * 6 + v]) < 1e-4)
            }
        }
    }

    @Test func configAndWeightErrorsNameTheCause() throws {
        let dir = try TemporaryDirectory()
        let noHead = try TinyLlama.write(to: dir.url.appendingPathComponent("nohead"), omitLMHead: true)
        #expect(throws: ModelError.missingWeight(file: "model.safetensors", keys: ["lm_head.weight"])) { try TinyLlama.load(noHead) }
        let scaled = try TinyLlama.write(to: dir.url.appendingPathComponent("scaled"),
                                         configEdits: ["rope_scaling": ["rope_type": "llama3", "factor": 8.0]])
        #expect {
            try TinyLlama.load(scaled)
        } throws: { error in
            guard case let ModelError.invalidConfig(_, key, _) = error else { return false }
            return key == "rope_scaling"
        }
        // A CALM folder is still loaded as CALM.
        if let fixtures = try? SharedFixtures.calmFixtures() {
            #expect(try ModelLoader.kind(directory: fixtures.appendingPathComponent("calm_k4_mha")) == .calm)
            #expect(throws: ModelError.self) { try ModelLoader.kind(directory: fixtures.appendingPathComponent("ae_k4_h64")) }
        }
    }

    @Test func incrementalAndForkedPassesMatchAFullPass() throws {
        let dir = try TemporaryDirectory()
        let model = try TinyLlama.load(try TinyLlama.write(to: dir.url))
        let tokens = [0, 3, 1, 4, 2, 2, 1, 3, 4, 1, 0, 2, 3, 1, 4, 4, 2, 3, 1, 0]
        let full = try model.forward(tokens: [tokens], caches: [model.makeCache()])
        let cache = model.makeCache(blockPositions: 4)
        var incremental: [Float] = []
        incremental += try model.forward(tokens: [Array(tokens[0..<7])], caches: [cache])
        for t in tokens[7...] { incremental += try model.forward(tokens: [[t]], caches: [cache]) }
        #expect(FixtureMath.maxAbsDiff(full, incremental) < 1e-5)
        // Forks at every prefix length (whole and partial blocks), fed the next token, batched.
        let prefixes = Array(1..<(tokens.count - 1))
        let forks = prefixes.map { cache.fork(prefix: $0)! }
        let hidden = try model.forward(tokens: prefixes.map { [tokens[$0]] }, caches: forks)
        for (r, p) in prefixes.enumerated() {
            let ours = Array(hidden[(r * 16)..<((r + 1) * 16)]), ref = Array(full[(p * 16)..<((p + 1) * 16)])
            #expect(FixtureMath.maxAbsDiff(ours, ref) < 1e-5, "fork at \(p)")
        }
        // The base cache is untouched by the forks' appends.
        let again = try model.forward(tokens: [[tokens[19]]], caches: [cache.fork(prefix: 19)!])
        #expect(FixtureMath.maxAbsDiff(again, Array(full[(19 * 16)...])) < 1e-5)
    }

    @Test func generationIsSeededAndGreedyIsArgmax() throws {
        let dir = try TemporaryDirectory()
        let model = try TinyLlama.load(try TinyLlama.write(to: dir.url, shape: .init(logitScale: 2)))
        let a = try model.generate(promptIDs: [0, 1], maxTokens: 12, temperature: 0.8, seed: 3, stopAtEndToken: false)
        let b = try model.generate(promptIDs: [0, 1], maxTokens: 12, temperature: 0.8, seed: 3, stopAtEndToken: false)
        #expect(a.tokens == b.tokens && a.tokens.count == 12)
        let greedy = try model.generate(promptIDs: [0, 1], maxTokens: 6, temperature: 0, stopAtEndToken: false)
        var sequence = [0, 1]
        for token in greedy.tokens {
            let hidden = try model.forward(tokens: [sequence], caches: [model.makeCache()])
            let logits = model.logits(hidden, rows: sequence.count)
            let last = Array(logits[((sequence.count - 1) * 6)...])
            #expect(token == last.indices.max { last[$0] < last[$1] })
            sequence.append(token)
        }
        // Stops after an end-of-text id (5) when asked to.
        let stopping = try model.generate(promptIDs: [0, 1], maxTokens: 200, temperature: 1, seed: 11)
        #expect(stopping.stopReason == .endToken ? stopping.tokens.last == 5 : stopping.tokens.count == 200)
        #expect(throws: ModelError.self) { try model.generate(promptIDs: [], maxTokens: 3) }
    }

    @Test func categoricalSamplingInvertsTheCDF() {
        let logits: [Float] = [0, log(3), log(4)] // probabilities 1/8, 3/8, 4/8
        logits.withUnsafeBufferPointer { l in
            let (m, lse) = CategoricalSampling.logNormalizer(logits: l)
            #expect(CategoricalSampling.sample(logits: l, uniforms: [0.1, 0.2, 0.49, 0.51, 0.99], maxLogit: m, logSumExp: lse) == [0, 1, 1, 2, 2])
            #expect(CategoricalSampling.sample(logits: l, temperature: 1, uniform: 0.3) == 1)
            #expect(CategoricalSampling.sample(logits: l, temperature: 0, uniform: 0.0) == 2)
        }
    }

    /// The sample-based Brier-n and BrierLM of the discrete path agree with the exact values
    /// computed from the model's softmax (enumerating all continuations of up to 4 tokens).
    @Test func brierEstimatorMatchesExactSoftmaxBrier() throws {
        let dir = try TemporaryDirectory()
        let model = try TinyLlama.load(try TinyLlama.write(to: dir.url, shape: .init(logitScale: 2), seed: 5))
        var rng = TestRandom(17)
        // A block sampled from the model itself, so the targets are plausible.
        let block = try model.generate(promptIDs: [0], maxTokens: 23, temperature: 1, seed: 2, stopAtEndToken: false).tokens
        let ids = [0] + block
        let exact = try ExactBrier.discrete(model, block: ids)
        let windows = exact.count
        #expect(windows == ids.count - 1 - 4)
        // Estimator: the same block under many noise seeds (each copy is its own evaluation block).
        let copies = 300
        let evaluator = BrierLMEvaluator(model: .llama(model), options: EvaluationOptions(seed: UInt64.random(in: 0..<1000, using: &rng)))
        let result = try evaluator.evaluate([[Int]](repeating: ids, count: copies))
        let report = result.report
        #expect(report.positions == windows * copies)
        let exactMean = (0..<4).map { n in exact.reduce(0) { $0 + $1[n] } / Double(windows) }
        for n in 0..<4 {
            #expect(abs(report.brier[n] - exactMean[n]) <= 3 * report.brierStderr[n],
                    "Brier-\(n + 1): \(report.brier[n]) ± \(report.brierStderr[n]) vs exact \(exactMean[n])")
        }
        let exactLM = pow(max(exactMean.reduce(1, *), 0), 0.25)
        #expect(report.brierLMUnscaledStderr.isFinite)
        #expect(abs(report.brierLMUnscaled - exactLM) <= 3 * report.brierLMUnscaledStderr,
                "BrierLM \(report.brierLMUnscaled) ± \(report.brierLMUnscaledStderr) vs exact \(exactLM)")
        #expect(result.continuedWindows > 0)
        // Sharper: per (window, seed) error against that window's exact value.
        let adapter = LlamaBrierModel(model: model)
        var errors = [[Double]](repeating: [], count: 4)
        for seed in 0..<200 {
            let outcome = try BrierProtocol.evaluate(adapter, block: ids, blockIndex: 0, noise: SeededEvaluationNoise(seed: 1000 + UInt64(seed)))
            for (i, x) in outcome.indicators.enumerated() { for n in 0..<4 { errors[n].append(x.brier[n] - exact[i][n]) } }
        }
        for n in 0..<4 {
            let (bias, se) = meanAndStderr(errors[n])
            #expect(abs(bias) <= 3 * se, "Brier-\(n + 1): mean error \(bias) ± \(se)")
        }
        // Cross-entropy: mean −log p(next token) over all predicted positions.
        let hidden = try model.forward(tokens: [Array(ids.dropLast())], caches: [model.makeCache()])
        let logits = model.logits(hidden, rows: ids.count - 1)
        var ce = 0.0
        for p in 0..<(ids.count - 1) {
            let row = (0..<6).map { Double(logits[p * 6 + $0]) }
            let m = row.max()!
            ce -= row[ids[p + 1]] - m - log(row.reduce(0) { $0 + exp($1 - m) })
        }
        ce /= Double(ids.count - 1)
        #expect(abs(result.crossEntropy! - ce) < 1e-5)
        #expect(abs(result.perplexity! - exp(ce)) < 1e-4)
    }
}

enum FixtureMath {
    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count)")
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }
}

/// Exact Brier-n of a discrete model at every window of a block (K = 1, S = 4 windows).
enum ExactBrier {
    static func softmax(_ logits: ArraySlice<Float>) -> [Double] {
        let m = Double(logits.max()!)
        let e = logits.map { exp(Double($0) - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    static func discrete(_ model: LlamaCausalLM, block: [Int]) throws -> [[Double]] {
        let v = model.vocabSize
        let positions = block.count - 1
        let base = model.makeCache(blockPositions: 4)
        let hidden = try model.forward(tokens: [Array(block[0..<positions])], caches: [base])
        let teacher = model.logits(hidden, rows: positions)
        var out: [[Double]] = []
        for i in 0..<(positions - 4) {
            // P(target n-gram) from the teacher-forced distributions.
            var py = [Double](), running = 1.0
            for j in 0..<4 {
                running *= softmax(teacher[((i + j) * v)..<((i + j + 1) * v)])[block[i + 1 + j]]
                py.append(running)
            }
            // Distributions at every prefix x of length 0…3 after the context tokens 0…i.
            var dist: [[Int]: [Double]] = [[]: softmax(teacher[(i * v)..<((i + 1) * v)])]
            var level: [[Int]] = [[]]
            for _ in 1...3 {
                level = level.flatMap { p in (0..<v).map { p + [$0] } }
                let caches = level.map { _ in base.fork(prefix: i + 1)! }
                let h = try model.forward(tokens: level, caches: caches)
                let logits = model.logits(h, rows: h.count / model.config.hiddenSize)
                for (r, p) in level.enumerated() {
                    let row = (r + 1) * p.count - 1 // last new position of slice r
                    dist[p] = softmax(logits[(row * v)..<((row + 1) * v)])
                }
            }
            // S_m(node) = Σ_x p(x|node)² S_{m−1}(node + x), S_0 = 1.
            func s(_ node: [Int], _ m: Int) -> Double {
                guard m > 0 else { return 1 }
                let p = dist[node]!
                return (0..<v).reduce(0) { $0 + p[$1] * p[$1] * s(node + [$1], m - 1) }
            }
            out.append((1...4).map { n in 2 * py[n - 1] - s([], n) })
        }
        return out
    }
}
