import CALMEvaluation
import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

@Suite("CALM evaluation")
struct CALMEvaluationTests {
    static func golden(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(url: try SharedFixtures.calmFixtures().appendingPathComponent("golden_\(name).safetensors"))
    }

    /// With the fixtures' injected head and posterior noise, the batched evaluator reproduces
    /// eval.brier exactly and eval.loss within 1e-4.
    @Test(.enabled(if: sharedEnabled, sharedSkip), arguments: ["calm_k4_mha", "calm_k4_gqa"])
    func reproducesTheEvalGoldens(name: String) throws {
        let model = try CALMModel.load(directory: try SharedFixtures.calmFixtures().appendingPathComponent(name))
        let g = try Self.golden(name)
        let ids = try g.tensor("eval.input_ids").int64s().map { Int($0) }
        let uniform = try g.tensor("eval.head_uniform").floats()
        let eps = try g.tensor("eval.energy_target_eps").floats()
        let noise = RecordedEvaluationNoise(uniforms: uniform, normals: eps)
        let adapter = CALMBrierModel(model: model, energyLoss: true)
        let result = try BrierLMEvaluator(adapter: adapter, kind: "calm").evaluate([ids], noise: noise)
        #expect(noise.fullyConsumed)
        let refBrier = try g.tensor("eval.brier").floats()
        #expect(result.report.brier.map { Float($0) } == refBrier)
        #expect(refBrier == [0.8, 0.6, 0.2, 0.2])
        let refLoss = Double(try g.tensor("eval.loss").floats()[0])
        #expect(abs(result.energyLoss! - refLoss) <= 1e-4 * max(1, abs(refLoss)))
        // The decomposition holds position by position: Brier-n = 2·accuracy-n − collision-n.
        for n in 0..<4 {
            #expect(abs(result.report.brier[n] - (2 * result.report.accuracy[n] - result.report.collision[n])) < 1e-12)
        }
    }

    /// The two-sample production path samples exactly what the reference evaluation forward
    /// (8 samples, first two used) would with the same first two noise rows.
    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func twoSamplePathMatchesTheReferenceForward() throws {
        let model = try CALMModel.load(directory: try SharedFixtures.calmFixtures().appendingPathComponent("calm_k4_gqa"))
        var rng = TestRandom(8)
        let bos = model.config.bosTokenID!
        let ids = [bos] + (1..<(24 * 4)).map { _ in Int.random(in: 0..<bos, using: &rng) }
        let positions = 23, eps = model.config.noiseSize
        let uniform = (0..<(2 * positions * eps)).map { _ in Float.random(in: 0..<1, using: &rng) }
        let reference = try model.evaluateTeacherForced(ids: ids, samples: 2, headUniform: uniform, targetNoise: nil)
        let ours = try BrierLMEvaluator(adapter: CALMBrierModel(model: model), kind: "calm")
            .evaluate([ids], noise: RecordedEvaluationNoise(uniforms: uniform))
        #expect(ours.report.brier == reference.brier)
        #expect(ours.report.positions == positions)
    }

    /// A tiny K = 2 CALM (random weights, 16-token vocabulary so samples collide): the K < 4
    /// continuation runs, forked caches give the same results however windows are grouped, and
    /// the batched continuation equals one-window-at-a-time.
    @Test func chunkSizeTwoContinuationIsBatchInvariant() throws {
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        c.patchSize = 2; a.patchSize = 2
        c.vocabSize = 16; a.vocabSize = 16
        c.padTokenID = 15; c.eosTokenID = 14; c.bosTokenID = 13
        a.padTokenID = 15; a.eosTokenID = 14; a.bosTokenID = 13
        let source = RandomTensorSource(model: c, autoencoder: a, dtype: .f32, seed: 3)
        let ae = try Autoencoder(config: a, source: source, prefix: "ae_model.")
        let model = try CALMModel(config: c, autoencoder: ae, source: source)
        var rng = TestRandom(4)
        let blocks = (0..<2).map { _ in (0..<40).map { _ in Int.random(in: 0..<13, using: &rng) } }
        func run(_ group: Int) throws -> EvaluationResult {
            try BrierLMEvaluator(model: .calm(model), options: EvaluationOptions(seed: 9, continuationGroup: group)).evaluate(blocks)
        }
        let one = try run(1), all = try run(256), some = try run(5)
        #expect(one.continuedWindows > 0)
        // (String form: NaN standard errors compare unequal as numbers.)
        #expect("\(one.report)" == "\(all.report)" && "\(all.report)" == "\(some.report)")
        #expect(one.report.positions == 2 * (19 - 2))
        #expect(one.report.collision[2] <= one.report.collision[1] && one.report.collision[1] <= one.report.collision[0])
    }

    @Test func costModelCountsCALMMShape() {
        let (c, a) = RandomModelWriter.Shape.calmM.configs
        let cost = EvaluationCost.calm(c, autoencoder: a, blockSize: 8192)
        // The decoder's vocabulary projection dominates: 2 samples × 4 tokens × 512 × 128257 × 2 per position.
        #expect(abs(cost.decoder / 2047 - (2 * 2 * (128 * 512 + 3 * 512 * 1280 + 512 * 4 * 512 + 4 * 3 * 512 * 1280 + 4 * 512 * 128257))) < 1)
        #expect(cost.total / 8192 > 0.3e9 && cost.total / 8192 < 0.5e9)
    }
}
