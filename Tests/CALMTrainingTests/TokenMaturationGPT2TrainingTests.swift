@testable import CALMModel
import CALMTensor
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

/// Token Maturation training on the GPT-2 backbone (`TrainableTokenMaturation.fromGPT2`): the
/// initialisation and its typed errors, step 0 against transformers' goldens (shared fixtures, both
/// checkpoint layouts), the whole loss against finite differences, the training forward against the
/// inference model (`TokenMaturationModel.step`) on a prefix and a tail at several maturities, a short
/// run that learns, an exact resume, and the saved folder loading and generating.
@Suite struct TokenMaturationGPT2TrainingTests {
    // MARK: fixtures

    static func settings(maturityMax: Float = 0.5) -> TokenMaturationSettings {
        var s = TokenMaturationTrainingTests.tinySettings()
        s.maturityMax = maturityMax
        return s
    }

    /// A random `GPT2LMHeadModel` folder (`ModuleGradientTests.tinyGPT2`, save_pretrained layout) and
    /// the TM model started from it.
    static func tinyModel(_ dir: URL, trainEmbeddings: Bool = false, settings: TokenMaturationSettings = settings(),
                          seed: UInt64 = 3) throws -> (folder: URL, model: TrainableTokenMaturation) {
        let folder = dir.appendingPathComponent("gpt2")
        try RandomModelWriter.writeGPT2(config: ModuleGradientTests.tinyGPT2(), dtype: .f32, to: folder, seed: seed)
        let model = try TrainableTokenMaturation.fromGPT2(directory: folder, settings: settings, trainEmbeddings: trainEmbeddings,
                                                          seed: seed)
        return (folder, model)
    }

    /// max |a − b| ≤ tolerance · max |b| (the fixtures' relative error).
    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> (Bool, Float) {
        guard a.count == b.count, !a.isEmpty else { return (false, .infinity) }
        let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        let scale = max(b.map { abs($0) }.max() ?? 0, 1e-6)
        return (diff <= tolerance * scale, diff / scale)
    }

    // MARK: initialisation

    @Test func initialisationCopiesGPT2AndStartsTheModulesNeutral() throws {
        let dir = try TemporaryDirectory()
        let (folder, model) = try Self.tinyModel(dir.url)
        let c = model.config, d = model.hidden
        #expect(c.backbone == .gpt2 && c.gpt2?.nLayer == 2 && c.maxPositions == 32 && c.maxTailLength == 8)
        #expect(model.embeddingName == "transformer.wte.weight" && !model.trainsEmbeddings && model.bosTokenID == 22)
        // every backbone tensor is the checkpoint's, Conv1D weights in their stored in × out layout
        let source = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        for name in source.tensorNames {
            #expect(model.parameters[name].value == (try source.tensor(name).floats()), "\(name)")
        }
        #expect(model.parameters["transformer.h.0.mlp.c_fc.weight"].shape == [16, 64])
        // R is W's mean row norm; the conditioning outputs are zero and the head is the identity
        let w = model.parameters[model.embeddingName].value
        #expect(abs(model.radius - TrainableTokenMaturation.meanRowNorm(w, rows: c.vocabSize, width: d)) < 1e-6)
        #expect(model.parameters["tm.alpha_mlp.2.weight"].value.allSatisfy { $0 == 0 })
        #expect(model.parameters["tm.tail_length.proj.weight"].value.allSatisfy { $0 == 0 })
        let head = model.parameters["tm.head.weight"].value
        #expect((0..<d).allSatisfy { head[$0 * d + $0] == 1 } && head.reduce(0, +) == Float(d))
        // the lookup tables (W, positions, the K table) get no weight decay; projections do
        #expect(model.decays(model.parameters["transformer.h.0.attn.c_attn.weight"]))
        for name in ["transformer.wte.weight", "transformer.wpe.weight", "tm.tail_length.embedding.weight", "transformer.ln_f.weight"] {
            #expect(!model.decays(model.parameters[name]), "\(name)")
        }
        #expect(model.matmulParameterCount == 2 * (16 * 48 + 16 * 16 + 16 * 64 + 64 * 16) + 8 * 16 + 16 * 16 + 16 * 32 + 16 * 16)
    }

    /// One initialisation: the inference-side writer (`TokenMaturationInitializer.write(fromGPT2:)`)
    /// and the trainer's `fromGPT2` start every `tm.*` tensor with the same values for the same seed.
    @Test func theWriterAndTheTrainerStartTheModulesAlike() throws {
        let dir = try TemporaryDirectory()
        let (folder, _) = try Self.tinyModel(dir.url)
        let written = dir.url.appendingPathComponent("written")
        try TokenMaturationInitializer.write(fromGPT2: folder, to: written, seed: 4)
        let trained = try TrainableTokenMaturation.fromGPT2(directory: folder, settings: TokenMaturationSettings(), seed: 4)
        let file = try SafetensorsFile(url: written.appendingPathComponent("model.safetensors"))
        let modules = file.tensorNames.filter { $0.hasPrefix("tm.") }
        #expect(modules.count == 9)
        for name in modules {
            #expect(try file.tensor(name).floats() == trained.parameters[name].value, "\(name)")
        }
        #expect(trained.parameters["tm.alpha_mlp.0.weight"].value.contains { $0 != 0 })
    }

    @Test func badGPT2FoldersAreTypedErrors() throws {
        let dir = try TemporaryDirectory()
        let (folder, model) = try Self.tinyModel(dir.url)
        // a TM folder is not a GPT-2
        let tm = dir.url.appendingPathComponent("tm")
        try model.save(to: tm)
        #expect(throws: ModelError.self) { try TrainableTokenMaturation.fromGPT2(directory: tm) }
        // a missing tensor: the error names the file and both layouts' keys
        let file = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        let kept = try file.tensorNames.filter { $0 != "transformer.h.1.ln_2.bias" }.map { name -> TensorData in
            let t = try file.tensor(name)
            return try TensorData(name: name, dtype: t.dtype, shape: t.shape, bytes: t.bytes)
        }
        let broken = dir.url.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: folder.appendingPathComponent("config.json"), to: broken.appendingPathComponent("config.json"))
        try SafetensorsWriter.write(kept, to: broken.appendingPathComponent("model.safetensors"))
        #expect(throws: TrainingError.missingWeight(file: "model.safetensors", keys: ["transformer.h.1.ln_2.bias", "h.1.ln_2.bias"])) {
            try TrainableTokenMaturation.fromGPT2(directory: broken)
        }
        // rows longer than the learned positions allow
        let long = [Array(repeating: 1, count: 40)]
        let plan = TokenMaturationTrainingPlan(sequences: [.init(tailLength: 2, cut: 30)], noise: [Float](repeating: 0, count: 2 * 16),
                                               negatives: [1])
        do {
            _ = try TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: long, plan: plan, pool: nil)
            Issue.record("rows past n_positions trained")
        } catch let error as TrainingError {
            #expect("\(error)".contains("n_positions"), "\(error)")
        }
        // a saved GPT-2 TM folder loads back with every value
        let back = try TrainableTokenMaturation.load(directory: tm)
        #expect(back.config.backbone == .gpt2 && back.radius == model.radius)
        for p in model.parameters.parameters { #expect(back.parameters[p.name].value == p.value, "\(p.name)") }
    }

    // MARK: step 0 against transformers

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func stepZeroReproducesTheTransformersGoldens() throws {
        let fixtures = try SharedFixtures.gpt2Fixtures()
        let saved = fixtures.appendingPathComponent("gpt2_tiny"), hub = fixtures.appendingPathComponent("gpt2_tiny_hub")
        let a = try TrainableTokenMaturation.fromGPT2(directory: saved, settings: Self.settings())
        let b = try TrainableTokenMaturation.fromGPT2(directory: hub, settings: Self.settings())
        // both checkpoint layouts give the same parameters
        #expect(a.parameters.parameters.map(\.name) == b.parameters.parameters.map(\.name))
        for p in a.parameters.parameters { #expect(b.parameters[p.name].value == p.value, "\(p.name)") }

        let golden = try SafetensorsFile(url: fixtures.appendingPathComponent("golden_gpt2_tiny.safetensors"))
        let idsTensor = try golden.tensor("ids.input_ids")
        let (seqs, t) = (idsTensor.shape[0], idsTensor.shape[1])
        let ids = try idsTensor.int64s().map { Int($0) }
        let states = try golden.tensor("ids.hidden_states")
        let hidden = try states.floats()
        let e = a.hidden, layers = states.shape[0] - 1, block = seqs * t * e
        guard let gpt2 = a.config.gpt2 else { Issue.record("no GPT-2 sizes"); return }
        // the trainable stack: wte[ids] + wpe is transformers' entry 0, ln_f of the last block its last entry
        let stack = GPT2BackboneModule(config: gpt2, parameters: a.parameters)
        var x = EmbeddingOp(table: a.parameters["transformer.wte.weight"]).forward(ids)
        stack.addPositionEmbeddings(&x, sequences: seqs, length: t)
        let (inputsOK, inputsErr) = Self.close(x, Array(hidden[0..<block]))
        #expect(inputsOK, "embedding sum: relative error \(inputsErr)")
        let y = stack.forward(x, sequences: seqs, length: t, pool: nil).y
        let (lastOK, lastErr) = Self.close(y, Array(hidden[(layers * block)..<((layers + 1) * block)]))
        #expect(lastOK, "last hidden state: relative error \(lastErr)")

        // the whole TM forward at step 0 (clean inputs, K = 1 so the tail slot is not fed) is GPT-2 on
        // E's rows: the engine's GPT2CausalLM with those vectors as inputs_embeds, through the identity head
        let row = Array(ids[0..<t])
        let plan = TokenMaturationTrainingPlan(sequences: [.init(tailLength: 1, cut: t - 2)], noise: [Float](repeating: 0, count: e),
                                               negatives: [1, 2])
        let f = try TokenMaturationTrainingStep.forward(model: a, inputIDs: [row], plan: plan, objective: TokenMaturationObjective(),
                                                        pool: nil)
        let engine = try GPT2CausalLM.load(directory: hub, options: LoadOptions(pool: .serial))
        let inputs = RowGatherOp.forward(table: f.embeddings, width: e, indices: f.inputRows)
        let reference = try engine.forward(inputsEmbeds: inputs, slices: [BackboneSlice(cache: engine.makeCache(), rows: f.length)])
        let (engineOK, engineErr) = Self.close(f.last, reference)
        #expect(engineOK, "TM step 0 vs GPT-2 on E's rows: relative error \(engineErr)")
        #expect(f.predictions == f.last, "the identity head changes nothing")
    }

    // MARK: the whole loss

    @Test func wholeLossMatchesFiniteDifferences() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url, trainEmbeddings: true)
        jitter(model.parameters, seed: 60, scale: 0.2)
        let batch = [[1, 5, 7, 2, 9, 3, 3, 8, 1], [3, 3, 8, 1, 0, 4, 6, 2, 5]]
        let plan = TokenMaturationTrainingTests.plan(model, negatives: [7, 11, 2, 17, 11, 20])
        var o = TokenMaturationObjective()
        o.logitScale = 5; o.lambda = 0.8
        let r = try TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: batch, plan: plan, objective: o, pool: nil)
        #expect(r.predictions == 5 + 6 && r.loss.isFinite)
        func loss() -> Double {
            Double((try? TokenMaturationTrainingStep.lossAndGradients(model: model, inputIDs: batch, plan: plan, objective: o,
                                                                      gradients: false, pool: nil).loss) ?? .nan)
        }
        for name in ["tm.head.weight", "tm.alpha_mlp.2.weight", "tm.tail_length.proj.weight", "transformer.wpe.weight",
                     "transformer.h.0.attn.c_attn.weight", "transformer.h.0.ln_1.bias", "transformer.h.1.mlp.c_proj.bias",
                     "transformer.ln_f.weight", "transformer.wte.weight"] {
            let p = model.parameters[name]
            let analytic = p.grad
            #expect(analytic.contains { $0 != 0 }, "\(name) gets a gradient")
            checkGradient(name, p, analytic: analytic, h: 2e-3, tol: 3e-2, loss: loss)
        }
        // positions 8… are never used (the longest sequence runs rows 0…7)
        #expect(model.parameters["transformer.wpe.weight"].grad[(8 * model.hidden)...].allSatisfy { $0 == 0 })
    }

    // MARK: training = inference

    /// A prefix of 4 clean tokens and a tail of K = 5 at maturities 0.6, 0.45, 0.3, 0.15, 0: the
    /// training forward's predictions equal what the inference model's `step` computes for the same
    /// vectors (the rate is so large that every slot with α > 0 becomes its prediction ẑ), with
    /// every conditioning path active (all parameters jittered).
    @Test func trainingForwardEqualsTheInferenceStep() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url, settings: Self.settings(maturityMax: 0.6))
        jitter(model.parameters, seed: 61, scale: 0.3)
        let folder = dir.url.appendingPathComponent("tm")
        try model.save(to: folder)
        let tm = try TokenMaturationModel.load(directory: folder, options: LoadOptions(pool: .serial))
        let d = model.hidden, k = 5, cut = 3
        let row = [22, 5, 7, 2, 9, 3, 3, 8, 1]
        var rng = TestRNG(62)
        let noise = rng.floats(k * d)
        let plan = TokenMaturationTrainingPlan(sequences: [.init(tailLength: k, cut: cut)], noise: noise, negatives: [1])
        let f = try TokenMaturationTrainingStep.forward(model: model, inputIDs: [row], plan: plan, objective: TokenMaturationObjective(),
                                                        pool: nil)
        func prediction(slot j: Int) -> [Float] { Array(f.predictions[((cut + j) * d)..<((cut + j + 1) * d)]) }

        // the same tail in an inference sequence: z_j = α_j·e + (1 − α_j)·σ·noise_j
        var p = TokenMaturationParameters(maxTokens: 4, tailLength: k, seed: 1)
        p.maturationRate = 1e6
        p.stopAtEndToken = false
        let sequence = try tm.makeSequence(prompt: Array(row[0...cut]), parameters: p)
        let alphas = TokenMaturationConfig.maturityProfile(tailLength: k, maturityMax: 0.6)
        let sigma = model.config.embryoScale * model.radius / Float(d).squareRoot()
        var tail = [Float](repeating: 0, count: k * d)
        for j in 0..<k {
            let e = tm.embedding.vector(row[cut + 1 + j])
            for x in 0..<d { tail[j * d + x] = alphas[j] * e[x] + (1 - alphas[j]) * sigma * noise[j * d + x] }
        }
        sequence.tail.vectors = tail
        _ = try tm.step([sequence])
        // slots 1…3 (α > 0) moved to their predictions and one place forward; slot 4 (α = 0) did not move
        for j in 1..<(k - 1) {
            let (ok, err) = Self.close(sequence.tail.slot(j - 1), prediction(slot: j))
            #expect(ok, "slot \(j): relative error \(err)")
        }
        #expect(sequence.tail.slot(k - 2) == Array(tail[((k - 1) * d)..<(k * d)]))
        // slot 0 became ẑ_0 and was committed: argmax ⟨ẑ_0, e⟩ over E
        let v = model.config.vocabSize
        let e = RowNormalizeOp.forward(model.parameters[model.embeddingName].value, rows: v, width: d, radius: model.radius).y
        let z = prediction(slot: 0)
        let scores = (0..<v).map { i in (0..<d).reduce(Float(0)) { $0 + z[$1] * e[i * d + $1] } }
        #expect(sequence.ids.last == scores.indices.max { scores[$0] < scores[$1] })
    }

    // MARK: training runs

    @Test func shortRunLearnsAndTheSavedFolderGenerates() throws {
        let dir = try TemporaryDirectory()
        let (_, model) = try Self.tinyModel(dir.url)
        let data = TokenMaturationTrainingTests.stream(count: 400)
        var o = TrainingRunOptions()
        o.steps = 30; o.batchSize = 4; o.blockSize = 16; o.learningRate = 1e-2; o.warmupSteps = 2; o.cosineDecay = true
        o.checkpointEvery = 0
        var objective = TokenMaturationObjective()
        objective.negatives = 16
        func heldOut() throws -> Float {
            try TokenMaturationTrainingStep.evaluate(model: model, data: data, batches: 3, rows: 4, length: 16, objective: objective,
                                                     pool: .serial).loss
        }
        let before = try heldOut()
        var losses: [Float] = []
        let end = try Trainer.trainTokenMaturation(model, data: data, options: o, objective: objective,
                                                   output: dir.url.appendingPathComponent("run"), pool: .serial) { losses.append($0.loss) }
        let after = try heldOut()
        #expect(losses.count == 30 && losses.allSatisfy { $0.isFinite })
        #expect(after < 0.8 * before, "held-out loss \(before) → \(after)")

        // the checkpoint is a GPT-2 TM folder that the inference model loads (also after export)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: end.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(json?["model_type"] as? String == "token_maturation" && json?["backbone"] as? String == "gpt2")
        #expect(json?["n_embd"] as? Int == 16 && json?["embedding_radius"] as? Double != nil)
        try TokenMaturationTrainingTests.expectExportedFolderGenerates(model, checkpoint: end, exportTo: dir.url.appendingPathComponent("export"))
    }

    @Test func resumeReproducesAnUninterruptedRun() throws {
        let dir = try TemporaryDirectory()
        let (folder, _) = try Self.tinyModel(dir.url)
        func fresh() throws -> TrainableTokenMaturation {
            try TrainableTokenMaturation.fromGPT2(directory: folder, settings: Self.settings(), trainEmbeddings: true, seed: 3)
        }
        let run = try TokenMaturationTrainingTests.runAndResume(in: dir.url, fresh: fresh)
        #expect(run.end.lastPathComponent == "checkpoint-4" && run.full.count == 4 && run.full.allSatisfy { $0.isFinite })
        #expect(run.resumed == Array(run.full[2...]))
        let a = try TrainableTokenMaturation.load(directory: run.end), b = try TrainableTokenMaturation.load(directory: run.resumedEnd)
        for p in a.parameters.parameters { #expect(b.parameters[p.name].value == p.value, "\(p.name)") }
        // W, the positions and every block were trained
        let start = try fresh()
        for name in ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.1.attn.c_attn.weight", "tm.head.weight"] {
            #expect(a.parameters[name].value != start.parameters[name].value, "\(name)")
        }
    }
}
