import CALMEvaluation
import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// BrierLM for Token Maturation on a random tm-tiny (Llama backbone, K = 16, 512 positions):
/// the teacher-forced samples are the model's own generations, continuations continue them, and
/// the estimator is in range, deterministic and independent of how windows are grouped.
@Suite("Token Maturation BrierLM")
struct TokenMaturationBrierTests {
    /// The folder (kept while the memory-mapped weights are in use) and the model.
    static let fixture: (TemporaryDirectory, TokenMaturationModel)? = {
        guard let dir = try? TemporaryDirectory("tm-brier") else { return nil }
        let config = RandomModelWriter.TokenMaturationShape.tmTiny.config
        guard (try? RandomModelWriter.writeTokenMaturation(config: config, dtype: .f32, to: dir.url, seed: 3)) != nil,
              let model = try? TokenMaturationModel.load(directory: dir.url) else { return nil }
        return (dir, model)
    }()

    static func tmModel() throws -> TokenMaturationModel {
        guard let fixture else { throw ModelError.invalidParameter(name: "model", reason: "tm-tiny could not be written") }
        return fixture.1
    }

    /// What `generate` commits from `prompt` with embryo seed `seed` (no end-of-text stop).
    static func generated(_ model: TokenMaturationModel, prompt: [Int], count: Int, seed: UInt64,
                          _ edit: (inout TokenMaturationParameters) -> Void = { _ in }) throws -> [Int] {
        var p = TokenMaturationParameters(maxTokens: count, seed: seed)
        p.stopAtEndToken = false
        edit(&p)
        return try model.generate(prompt: prompt, parameters: p).tokens
    }

    /// Along a block the model generated itself with a run's seed, no commit is ever forced: the
    /// run's samples are exactly what `generate` committed, at every position; and a window's
    /// continuation (resumed on a forked cache with the fed sample) goes on with generate's next ids.
    @Test(arguments: [(16, Float(1)), (4, Float(2)), (1, Float(1))])
    func samplesAreWhatGenerateCommits(tail: Int, guidance: Float) throws {
        let model = try Self.tmModel()
        var parameters = TokenMaturationParameters(tailLength: tail, guidanceScale: guidance)
        parameters.stopAtEndToken = false
        let adapter = TokenMaturationBrierModel(model: model, parameters: parameters)
        let noise = SeededEvaluationNoise(seed: 11)
        let (seed1, seed2) = adapter.teacherForcedSeeds(blockIndex: 0, noise: noise)
        #expect(seed1 != seed2)
        let length = 40
        for (run, seed) in [(0, seed1), (1, seed2)] {
            let block = [7] + (try Self.generated(model, prompt: [7], count: length - 1, seed: seed) {
                $0.tailLength = tail; $0.guidanceScale = guidance
            })
            let samples = try adapter.teacherForced(block: block, blockIndex: 0, noise: noise)
            defer { adapter.endBlock() }
            #expect(samples.positions == length - 1)
            let mine = run == 0 ? samples.first : samples.second
            #expect(mine.map(Int.init) == Array(block[1...]), "run \(run): forced run differs from generate")
            // Windows whose two samples agree continue: sample 1's branch goes on as generate did
            // (run 0, whose block this is) — the tail it resumes is the one generate had.
            guard run == 0 else { continue }
            let windows = (0..<BrierProtocol.scoredPositions(chunks: length, k: 1)).filter { samples.first[$0] == samples.second[$0] }
            #expect(!windows.isEmpty, "no two samples agreed anywhere")
            var active = windows
            var feed = active.map { [Int(samples.first[$0])] }
            for step in 1...3 where !active.isEmpty {
                let out = try adapter.continue(windows: active, feed: feed, step: step, blockIndex: 0, noise: noise)
                #expect(out.count == 2 * active.count)
                var still: [Int] = [], nextFeed: [[Int]] = []
                for (r, w) in active.enumerated() {
                    // K ≥ 4: the next commits come from vectors already in the tail, whatever the
                    // branch's own embryos; K < 4: new embryos matter, so only step 1 is fixed.
                    if tail > step || step == 1 {
                        #expect(Int(out[2 * r]) == block[w + 1 + step], "window \(w) step \(step)")
                    }
                    if out[2 * r] == out[2 * r + 1] { still.append(w); nextFeed.append([Int(out[2 * r])]) }
                }
                active = still
                feed = nextFeed
            }
            adapter.endContinuations()
        }
        // Position 0 of any block: the first commit of generate from the block's first id.
        let other = [3, 400, 17, 17, 250, 9, 60, 61, 62, 5, 5, 5]
        let samples = try adapter.teacherForced(block: other, blockIndex: 0, noise: noise)
        adapter.endBlock()
        let g1 = try Self.generated(model, prompt: [3], count: 1, seed: seed1) { $0.tailLength = tail; $0.guidanceScale = guidance }
        let g2 = try Self.generated(model, prompt: [3], count: 1, seed: seed2) { $0.tailLength = tail; $0.guidanceScale = guidance }
        #expect(Int(samples.first[0]) == g1[0] && Int(samples.second[0]) == g2[0])
    }

    /// The estimator's numbers are in range, the same for the same seed (and any window grouping),
    /// and the teacher-forced pass runs exactly the rows `EvaluationCost.tokenMaturation` counts.
    @Test func estimatorIsInRangeDeterministicAndCosted() throws {
        let model = try Self.tmModel()
        let rng = SeededRandomness(seed: 5)
        func block(_ n: Int) -> [Int] { [1] + (1..<n).map { _ in Int(rng.uniformDouble() * 64) } }
        // A generated block (many agreeing samples, long continuations) and two random ones.
        let n = 32
        let blocks = [[7] + (try Self.generated(model, prompt: [7], count: n - 1, seed: 9)), block(n), block(n)]
        func run(seed: UInt64, group: Int = 256) throws -> EvaluationResult {
            try BrierLMEvaluator(model: .tokenMaturation(model), options: EvaluationOptions(seed: seed, continuationGroup: group)).evaluate(blocks)
        }
        // the same seed twice (windows grouped differently: one step per window the second time)
        let a = try run(seed: 4), grouped = try run(seed: 4, group: 1), c = try run(seed: 5)
        #expect(a.modelKind == "token_maturation" && a.chunkSize == 1 && a.blocks == 3)
        #expect(a.report.positions == 3 * (n - 1 - 4))
        #expect(a.report.brier == grouped.report.brier && a.report.accuracy == grouped.report.accuracy)
        #expect(a.report.collision == grouped.report.collision && a.backboneRows == grouped.backboneRows)
        #expect((a.backboneForwards ?? 0) < (grouped.backboneForwards ?? 0))
        #expect(a.report.collision != c.report.collision || a.report.accuracy != c.report.accuracy)
        for r in [a, c] {
            for n in 0..<4 {
                #expect(r.report.accuracy[n] >= 0 && r.report.accuracy[n] <= 1)
                #expect(r.report.collision[n] >= 0 && r.report.collision[n] <= 1)
                #expect(r.report.brier[n] >= -1 && r.report.brier[n] <= 2)
                #expect(abs(r.report.brier[n] - (2 * r.report.accuracy[n] - r.report.collision[n])) < 1e-12)
            }
            // n-gram agreement can only fall as n grows
            #expect(r.report.collision[0] >= r.report.collision[1] && r.report.collision[1] >= r.report.collision[2])
            #expect(r.continuedWindows > 0 && (r.backboneRows ?? 0) > 0)
        }
        let k = model.config.tailLength
        let adapter = TokenMaturationBrierModel(model: model)
        _ = try adapter.teacherForced(block: blocks[1], blockIndex: 0, noise: SeededEvaluationNoise(seed: 1))
        adapter.endBlock()
        #expect(adapter.backboneRows == 2 * (n - 1) * k)   // per step and run: the committed row + K − 1 tail rows
        #expect(adapter.forwards == n - 1)
        let cost = EvaluationCost.tokenMaturation(model.config, blockSize: n)
        let llama = try #require(model.config.llama)
        let h = Double(llama.hiddenSize), kv = Double(llama.kvHeads * llama.hiddenSize / llama.numAttentionHeads)
        let perRow = 2 * Double(llama.numHiddenLayers) * (2 * h * h + 2 * h * kv + 3 * h * Double(llama.intermediateSize))
        #expect(abs(cost.backboneLinear / perRow - Double(adapter.backboneRows)) < 1e-6)
        #expect(cost.decoder == Double(2 * (n - 1) * 2 * model.config.vocabSize) * h)
        let guided = EvaluationCost.tokenMaturation(model.config, blockSize: n, guidanceScale: 2)
        #expect(guided.backboneLinear / perRow == Double(2 * (n - 1) * (k + k - 1)))
    }

    @Test func blocksBeyondThePositionLimitAndBadIdsAreTypedErrors() throws {
        let model = try Self.tmModel()
        let adapter = TokenMaturationBrierModel(model: model)
        let tooLong = [Int](repeating: 1, count: model.config.maxPositions - model.config.tailLength + 2)
        #expect {
            _ = try adapter.teacherForced(block: tooLong, blockIndex: 0, noise: SeededEvaluationNoise(seed: 0))
        } throws: { error in
            guard case let CorpusError.invalidParameter(name, _) = error else { return false }
            return name == "blockSize"
        }
        #expect(throws: CorpusError.self) {
            _ = try adapter.teacherForced(block: [1, 2, 9999], blockIndex: 0, noise: SeededEvaluationNoise(seed: 0))
        }
        #expect(throws: CorpusError.self) {
            _ = try adapter.continue(windows: [0], feed: [[1]], step: 1, blockIndex: 0, noise: SeededEvaluationNoise(seed: 0))
        }
        let bad = TokenMaturationBrierModel(model: model, parameters: TokenMaturationParameters(tailLength: 99))
        #expect(throws: ModelError.self) {
            _ = try bad.teacherForced(block: [1, 2, 3, 4, 5, 6, 7], blockIndex: 0, noise: SeededEvaluationNoise(seed: 0))
        }
    }
}
