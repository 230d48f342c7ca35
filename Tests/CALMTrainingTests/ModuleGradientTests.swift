import CALMModel
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

/// Finite-difference checks of whole modules and both objectives on tiny random models.
@Suite struct ModuleGradientTests {
    /// A few parameters of every kind to probe (all would be slow in debug builds).
    func probes(_ set: ParameterSet, _ names: [String]) -> [Parameter] { names.map { set[$0] } }

    @Test func energyHead() throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url)
        jitter(model.parameters, seed: 1)
        let c = model.config
        let head = EnergyHeadModule(config: c, parameters: model.parameters)
        var rng = TestRNG(2)
        let n = 2, s = 3
        let hidden = Parameter(name: "h", shape: [n, c.hiddenSize], value: rng.floats(n * c.hiddenSize))
        let noise = rng.floats(s * n * c.noiseSize, scale: 0.5)
        let w = rng.floats(s * n * c.latentSize)
        model.parameters.zeroGrad()
        let (_, saved) = head.forward(hidden: hidden.value, positions: n, samples: s, noise: noise, pool: nil)
        let dh = head.backward(w, saved: saved, pool: nil)
        func loss() -> Double { weightedSum(head.forward(hidden: hidden.value, positions: n, samples: s, noise: noise, pool: nil).x, w) }
        checkGradient("head d hidden", hidden, analytic: dh, h: 3e-3, loss: loss)
        for p in probes(model.parameters, ["mlp_generator.noise_embd.weight", "mlp_generator.hidden_embd.bias",
                                           "mlp_generator.norm_noise.weight", "mlp_generator.norm_hidden.bias",
                                           "mlp_generator.mlp_blocks.0.in_ln.weight", "mlp_generator.mlp_blocks.0.linears.0.weight",
                                           "mlp_generator.mlp_blocks.0.linears.4.bias", "mlp_generator.mlp_blocks.0.down_proj.weight",
                                           "mlp_generator.final_layer.linears.2.weight"]) {
            checkGradient(p.name, p, analytic: p.grad, h: 3e-3, loss: loss)
        }
    }

    @Test(arguments: [1, 2])
    func backbone(kvHeads: Int) throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url, kvHeads: kvHeads)
        jitter(model.parameters, seed: 3)
        let c = model.config
        let bb = BackboneModule(config: c, parameters: model.parameters)
        var rng = TestRNG(4)
        let seqs = 2, t = 3
        let x = Parameter(name: "x", shape: [seqs * t, c.hiddenSize], value: rng.floats(seqs * t * c.hiddenSize))
        let w = rng.floats(x.count)
        model.parameters.zeroGrad()
        let (_, saved) = bb.forward(x.value, sequences: seqs, length: t, pool: nil)
        let dx = bb.backward(w, saved: saved, pool: nil)
        func loss() -> Double { weightedSum(bb.forward(x.value, sequences: seqs, length: t, pool: nil).y, w) }
        checkGradient("backbone dx", x, analytic: dx, h: 3e-3, loss: loss)
        for p in probes(model.parameters, ["transformer.layers.0.input_layernorm.weight", "transformer.layers.0.self_attn.q_proj.weight",
                                           "transformer.layers.0.self_attn.k_proj.weight", "transformer.layers.0.self_attn.v_proj.weight",
                                           "transformer.layers.0.self_attn.o_proj.weight", "transformer.layers.0.mlp.up_proj.weight",
                                           "transformer.norm.weight"]) {
            checkGradient(p.name, p, analytic: p.grad, h: 3e-3, loss: loss)
        }
    }

    @Test func autoencoderObjective() throws {
        let dir = try TemporaryDirectory()
        let calm = try tinyModel(dir.url)
        let ae = TrainableAutoencoder(config: calm.autoencoder.config, parameters: calm.autoencoder.parameters.copy())
        ae.parameters.setRequiresGrad(true)
        jitter(ae.parameters, seed: 5, scale: 0.2)
        var rng = TestRNG(6)
        let k = ae.config.patchSize, chunks = 3
        let ids = (0..<(chunks * k)).map { _ in rng.int(ae.config.vocabSize) }
        var noise = AETrainingNoise.draw(chunks: chunks, config: ae.config, rng: SeededRandomness(seed: 9))
        noise.tokenDropoutUniform[1] = 0.01  // one dropped token
        let r = try AutoencoderTrainingStep.lossAndGradients(model: ae, inputIDs: ids, injected: noise, pool: nil)
        #expect(r.loss.isFinite)
        let grads = ae.parameters.parameters.map { ($0, $0.grad) }
        func loss() -> Double {
            Double(try! AutoencoderTrainingStep.lossAndGradients(model: ae, inputIDs: ids, injected: noise, pool: nil).loss)
        }
        for (p, g) in grads where ["encoder.embed_tokens.weight", "encoder.squeeze_layer.weight", "encoder.hidden_to_latent.bias",
                                   "encoder.norm.weight", "decoder.latent_to_hidden.weight", "decoder.expand_layer.bias",
                                   "decoder.decoder_layers.1.mlp.gate_proj.weight", "encoder.encoder_layers.0.layernorm.weight"].contains(p.name) {
            checkGradient(p.name, p, analytic: g, h: 3e-3, tol: 3e-2, loss: loss)
        }
    }

    @Test func energyObjectiveWithLabelMask() throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url, kvHeads: 1)
        jitter(model.parameters, seed: 7)
        let c = model.config, k = c.patchSize
        var rng = TestRNG(8)
        let ids = (0..<2).map { _ in (0..<(4 * k)).map { _ in rng.int(40) } }
        var labels = ids
        for j in (2 * k)..<(3 * k) { labels[1][j] = -100 }  // row 1, chunk 2 masked
        let noise = EnergyTrainingNoise.draw(positions: 5, config: c, targetSamples: 7, rng: SeededRandomness(seed: 3))
        let r = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, labels: labels, injected: noise, pool: nil)
        #expect(r.positions == 5 && r.loss.isFinite)
        let grads = model.parameters.parameters.map { ($0, $0.grad) }
        func loss() -> Double {
            Double(try! EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, labels: labels, injected: noise, pool: nil).loss)
        }
        for (p, g) in grads where ["transformer.embed_tokens.weight", "embed_proj.0.weight", "embed_proj.3.bias",
                                   "transformer.layers.0.self_attn.k_proj.weight", "transformer.layers.0.mlp.down_proj.weight",
                                   "mlp_generator.hidden_embd.weight", "mlp_generator.final_layer.in_ln.weight"].contains(p.name) {
            // The loss is an f32 sum of many distances (|loss| ~ 10): differences carry ~ulp/h of
            // noise, so use a wider step and an absolute floor.
            checkGradient(p.name, p, analytic: g, h: 1e-2, tol: 3e-2, floor: 2e-2, loss: loss)
        }
        // The last chunk of each row is never an input: its token rows get no gradient.
        let e = model.parameters["transformer.embed_tokens.weight"]
        let used = Set(ids.flatMap { $0[0..<(3 * k)] })
        for id in Set(ids.flatMap { $0[(3 * k)...] }).subtracting(used) {
            #expect(e.grad[(id * c.hiddenSize)..<((id + 1) * c.hiddenSize)].allSatisfy { $0 == 0 })
        }
        // The frozen autoencoder gets nothing.
        #expect(model.autoencoder.parameters.parameters.allSatisfy { p in p.grad.allSatisfy { $0 == 0 } })
    }

    @Test func partialChunkLabelMaskIsRejected() throws {
        let dir = try TemporaryDirectory()
        let model = try tinyModel(dir.url)
        let ids = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]
        var labels = ids
        labels[0][2] = -100
        #expect(throws: TrainingError.self) {
            try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, labels: labels,
                                                    rng: SeededRandomness(seed: 1), targetSamples: 4, pool: nil)
        }
    }
}

/// The trainable GPT-2 stack (Token Maturation's backbone).
extension ModuleGradientTests {
    /// A tiny GPT-2 config: 2 layers, 16 wide, 2 heads, inner 64, 24 tokens, 32 positions.
    static func tinyGPT2() -> GPT2Config {
        var c = GPT2Config()
        c.vocabSize = 24; c.nEmbd = 16; c.nLayer = 2; c.nHead = 2; c.nPositions = 32; c.bosTokenID = 22; c.eosTokenID = 23
        return c
    }

    @Test(arguments: [false, true])
    func gpt2Backbone(masked: Bool) throws {
        let c = Self.tinyGPT2()
        let set = ModelInit.parameters(RandomModelWriter.gpt2Tensors(c), seed: 5, std: 0.3)
        jitter(set, seed: 6, scale: 0.2)   // non-trivial LayerNorm weights and biases
        let bb = GPT2BackboneModule(config: c, parameters: set)
        var rng = TestRNG(7)
        let seqs = 2, t = 4, e = c.nEmbd
        let x = Parameter(name: "x", shape: [seqs * t, e], value: rng.floats(seqs * t * e))
        let w = rng.floats(x.count)
        // the tail-only mask of Token Maturation's guidance training: rows 2… of sequence 0 see keys 2…
        let keyStart: [Int32]? = masked ? [0, 0, 2, 2, 0, 0, 0, 0] : nil
        func run() -> [Float] {
            var h = x.value
            bb.addPositionEmbeddings(&h, sequences: seqs, length: t)
            return bb.forward(h, sequences: seqs, length: t, keyStart: keyStart, pool: nil).y
        }
        set.zeroGrad()
        var h = x.value
        bb.addPositionEmbeddings(&h, sequences: seqs, length: t)
        let (_, saved) = bb.forward(h, sequences: seqs, length: t, keyStart: keyStart, pool: nil)
        let dx = bb.backward(w, saved: saved, pool: nil)
        bb.positionEmbeddingBackward(dx, sequences: seqs, length: t)
        func loss() -> Double { weightedSum(run(), w) }
        checkGradient("gpt2 backbone dx", x, analytic: dx, h: 3e-3, loss: loss)
        for p in probes(set, ["transformer.wpe.weight", "transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias",
                              "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias",
                              "transformer.h.0.attn.c_proj.weight", "transformer.h.1.ln_2.weight", "transformer.h.1.mlp.c_fc.weight",
                              "transformer.h.1.mlp.c_fc.bias", "transformer.h.1.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.bias",
                              "transformer.ln_f.weight", "transformer.ln_f.bias"]) {
            #expect(p.grad.contains { $0 != 0 }, "\(p.name) gets a gradient")
            checkGradient(p.name, p, analytic: p.grad, h: 3e-3, loss: loss)
        }
        // positions past the sequence length get none
        #expect(set["transformer.wpe.weight"].grad[(t * e)...].allSatisfy { $0 == 0 })
    }
}
