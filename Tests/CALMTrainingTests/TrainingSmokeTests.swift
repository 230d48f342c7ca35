import CALMModel
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

/// A few real optimisation steps on tiny random models, so the training path cannot silently break.
@Suite struct TrainingSmokeTests {
    @Test func autoencoderLossDecreases() throws {
        let dir = try TemporaryDirectory()
        let calm = try tinyModel(dir.url)
        let ae = TrainableAutoencoder(config: calm.autoencoder.config, parameters: calm.autoencoder.parameters.copy())
        ae.parameters.setRequiresGrad(true)
        var rng = TestRNG(21)
        let ids = (0..<16).map { _ in rng.int(40) }
        let opt = AdamW(parameters: ae.parameters, options: .init(learningRate: 3e-3, warmupSteps: 2, weightDecay: 0.01))
        let noiseRNG = SeededRandomness(seed: 5)
        var losses: [Float] = []
        for _ in 0..<12 {
            let r = try AutoencoderTrainingStep.lossAndGradients(model: ae, inputIDs: ids, rng: noiseRNG, pool: nil)
            #expect(r.loss.isFinite && r.ce.isFinite && r.kl.isFinite)
            losses.append(r.loss)
            opt.apply()
        }
        #expect(losses.last! < losses.first!, "losses \(losses)")
    }

    @Test func energyLossDecreasesOnAFixedBatch() throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url, kvHeads: 2)
        var rng = TestRNG(22)
        let k = model.config.patchSize
        let ids = (0..<2).map { _ in (0..<(4 * k)).map { _ in rng.int(40) } }
        // Fixed noise: the loss is then a deterministic function of the parameters.
        let noise = EnergyTrainingNoise.draw(positions: 6, config: model.config, targetSamples: 10, rng: SeededRandomness(seed: 8))
        let opt = AdamW(parameters: model.parameters, options: .init(learningRate: 2e-3, weightDecay: 0))
        var losses: [Float] = []
        for _ in 0..<10 {
            let r = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, injected: noise, pool: nil)
            #expect(r.loss.isFinite)
            losses.append(r.loss)
            opt.apply()
        }
        #expect(losses.last! < losses.first!, "losses \(losses)")
        // Production noise also runs.
        let r = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, rng: SeededRandomness(seed: 1), pool: nil)
        #expect(r.loss.isFinite && model.parameters.gradientNorm().isFinite)
    }

    /// A fresh CALM model starts as the reference's: the energy head's last Linear is zero (the
    /// head outputs 0) and the backbone's [PAD] row is zero and gets no gradient (`padding_idx`),
    /// while the rows of the other ids in the batch do.
    @Test func freshCALMZeroInitialisesTheHeadOutputAndThePadRow() throws {
        let (c, a) = tinyConfigs()
        let model = TrainableCALM.initialized(config: c, autoencoder: TrainableAutoencoder.initialized(config: a, seed: 1), seed: 2)
        let zeroed = model.parameters.parameters.filter { $0.name.hasPrefix(TrainableCALM.zeroInitializedPrefix) }
        #expect(zeroed.count == 2 && zeroed.allSatisfy { $0.value.allSatisfy { $0 == 0 } })
        #expect(model.parameters["mlp_generator.final_layer.linears.0.weight"].value.contains { $0 != 0 })
        let table = model.parameters["transformer.embed_tokens.weight"]
        let d = table.shape[1], pad = try #require(c.padTokenID)
        func row(_ id: Int, _ values: [Float]) -> ArraySlice<Float> { values[(id * d)..<((id + 1) * d)] }
        #expect(row(pad, table.value).allSatisfy { $0 == 0 } && row(3, table.value).contains { $0 != 0 })
        // documents end in EOS and are right-padded with [PAD]
        let ids = [[45, 3, 4, 5, 46, pad, pad, pad], [45, 6, 7, 8, 9, 10, 46, pad]]
        // Step 1: only the zero layer learns (a zero Linear passes no gradient to its input).
        let first = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, rng: SeededRandomness(seed: 3), targetSamples: 4, pool: nil)
        #expect(first.loss.isFinite)
        #expect(zeroed.contains { $0.grad.contains { $0 != 0 } }, "the zero layer learns")
        #expect(table.grad.allSatisfy { $0 == 0 })
        AdamW(parameters: model.parameters, options: .init(learningRate: 1e-2)).apply()
        // Step 2: the rows of the batch's ids learn, the [PAD] row does not and stays zero.
        let second = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, rng: SeededRandomness(seed: 4), targetSamples: 4, pool: nil)
        #expect(second.loss.isFinite)
        #expect(row(pad, table.grad).allSatisfy { $0 == 0 } && row(pad, table.value).allSatisfy { $0 == 0 })
        #expect(row(3, table.grad).contains { $0 != 0 } && row(46, table.grad).contains { $0 != 0 })
    }

    /// The held-out energy evaluation: the model's loss is the training step's on the same blocks
    /// and noise (without touching the gradients), repeatable; the marginal predictor ignores the
    /// model (two backbones on one autoencoder get the same marginal loss, different own losses).
    @Test func heldOutEnergyAgainstTheMarginalPredictor() throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url, seed: 7)
        jitter(model.parameters, seed: 5)
        var rng = TestRNG(40)
        let k = model.config.patchSize
        let data = TokenData(ids: (0..<(24 * k)).map { _ in rng.int(44) })
        let held = try EnergyTrainingStep.evaluate(model: model, data: data, batches: 2, rows: 2, length: 4 * k, targetSamples: 8,
                                                   seed: 11, pool: nil)
        #expect(held.positions == 2 * 2 * 3)
        var expected = 0.0
        for i in 0..<2 {
            let rng = SeededRandomness(seed: 11 &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i))
            let r = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: try data.batch(step: i, rows: 2, length: 4 * k),
                                                            rng: rng, targetSamples: 8, pool: nil)
            expected += Double(r.loss) / 2
        }
        #expect(abs(held.loss - expected) < 1e-5, "\(held.loss) vs \(expected)")
        model.parameters.zeroGrad()
        let again = try EnergyTrainingStep.evaluate(model: model, data: data, batches: 2, rows: 2, length: 4 * k, targetSamples: 8,
                                                    seed: 11, pool: nil)
        #expect(again == held)
        #expect(model.parameters.parameters.allSatisfy { $0.grad.allSatisfy { $0 == 0 } })
        #expect(held.marginalLoss.isFinite && held.gap == held.marginalLoss - held.loss)
        // another backbone and head on the same autoencoder
        let other = TrainableCALM(config: model.config, parameters: ModelInit.parameters(TrainableCALM.parameterShapes(model.config), seed: 99, std: 0.3),
                                  autoencoder: model.autoencoder)
        let otherHeld = try EnergyTrainingStep.evaluate(model: other, data: data, batches: 2, rows: 2, length: 4 * k, targetSamples: 8,
                                                        seed: 11, pool: nil)
        #expect(otherHeld.marginalLoss == held.marginalLoss)
        #expect(otherHeld.loss != held.loss)
        #expect(held.line.hasPrefix("held-out energy loss ") && held.line.contains("marginal") && held.line.contains("gap"))
    }

    @Test func savedModelsLoadInTheEngineAndRoundTrip() throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url)
        jitter(model.parameters, seed: 4)
        let out = dir.url.appendingPathComponent("saved")
        try model.save(to: out)
        let back = try TrainableCALM.load(directory: out)
        for p in model.parameters.parameters { #expect(back.parameters[p.name].value == p.value, "\(p.name)") }
        for p in model.autoencoder.parameters.parameters { #expect(back.autoencoder.parameters[p.name].value == p.value, "\(p.name)") }
        // The inference engine reads the folder.
        let engineModel = try CALMModel.load(directory: out, options: LoadOptions(pool: .serial))
        #expect(engineModel.config.hiddenSize == model.config.hiddenSize)
        let aeOut = dir.url.appendingPathComponent("ae")
        try model.autoencoder.save(to: aeOut)
        let aeBack = try TrainableAutoencoder.load(directory: aeOut)
        #expect(aeBack.parameters["decoder.expand_layer.weight"].value == model.autoencoder.parameters["decoder.expand_layer.weight"].value)
        _ = try Autoencoder.load(directory: aeOut)
    }

    @Test func trainingEncoderMatchesTheInferenceEncoder() throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url)
        let engine = try CALMModel.load(directory: dir.url.appendingPathComponent("calm"), options: LoadOptions(pool: .serial))
        let ids = [1, 2, 3, 4, 5, 6]
        let ours = model.autoencoder.module.encode(ids, pool: nil).latent
        let theirs = engine.autoencoder.encode(ids, pool: .serial)
        let err = zip(ours, theirs).map { abs($0 - $1) }.max()!
        #expect(err < 1e-4)
    }

    @Test func normalsLookNormal() {
        let x = SeededRandomness(seed: 3).normalFloats(count: 20001)
        #expect(x.count == 20001)
        let mean = x.reduce(0, +) / Float(x.count)
        let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(x.count)
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
    }
}
