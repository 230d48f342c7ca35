import CALMModel
import CALMTensor
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

/// Parity with the reference's training goldens (`golden_train_*.safetensors` in
/// ../shared/fixtures/calm): loss within 1e-4, every intermediate within relative 1e-4, every
/// `grad.<name>` within 1e-4 of that tensor's largest magnitude, and no parameter missing.
@Suite struct GoldenParityTests {
    static let goldens = ["ae_k4_h64", "ae_k4_h32", "calm_k4_mha", "calm_k4_gqa", "calm_k4_mha_labelmask", "calm_k4_gqa_labelmask"]

    func relativeError(_ ours: [Float], _ ref: [Float]) -> Double {
        precondition(ours.count == ref.count)
        let scale = ref.map { Double(abs($0)) }.max() ?? 0
        let diff = zip(ours, ref).map { abs(Double($0) - Double($1)) }.max() ?? 0
        return scale > 0 ? diff / scale : diff
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)), arguments: goldens)
    func golden(_ name: String) throws {
        let fixtures = try SharedFixtures.calmFixtures()
        let url = fixtures.appendingPathComponent("golden_train_\(name).safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else {
            #expect(name.hasSuffix("_labelmask"), "missing \(url.lastPathComponent)")
            return  // the README lists three label-mask variants; only those shipped are checked
        }
        let g = try SafetensorsFile(url: url)
        func f(_ key: String) throws -> [Float] { try g.tensor("train." + key).floats() }
        func i(_ key: String) throws -> [Int] { try g.tensor("train." + key).int64s().map(Int.init) }
        let isAE = name.hasPrefix("ae_")
        let folder = fixtures.appendingPathComponent(isAE ? name : String(name.prefix("calm_k4_mha".count)))
        let floats: [String: [Float]], ints: [String: [Int]], params: ParameterSet, loss: Float
        if isAE {
            let model = try TrainableAutoencoder.load(directory: folder)
            #expect(model.parameters.count == 27)
            let noise = AETrainingNoise(tokenDropoutUniform: try f("token_dropout_uniform"), posteriorEps: try f("posterior_eps"),
                                        latentDropoutKeep: try f("latent_dropout_keep"))
            let r = try AutoencoderTrainingStep.lossAndGradients(model: model, inputIDs: try i("input_ids"), injected: noise,
                                                                 recordIntermediates: true)
            (floats, ints, params, loss) = (r.intermediates, r.intIntermediates, model.parameters, r.loss)
            // The tied matrix's gradient is the total of its two uses.
            let total = model.parameters["encoder.embed_tokens.weight"].grad
            let parts = zip(r.intermediates["tied_grad_encoder_embedding_use"]!, r.intermediates["tied_grad_decoder_lm_head_use"]!).map { $0 + $1 }
            #expect(relativeError(parts, total) < 1e-6)
        } else {
            let model = try TrainableCALM.load(directory: folder)
            #expect(model.parameters.count == 60)
            let shape = g.info("train.input_ids")!.shape
            func rows(_ flat: [Int]) -> [[Int]] { (0..<shape[0]).map { Array(flat[($0 * shape[1])..<(($0 + 1) * shape[1])]) } }
            let noise = EnergyTrainingNoise(headUniform: try f("head_uniform"), targetEps: try f("target_eps"),
                                            targetSamples: g.info("train.target_eps")!.shape[0])
            let r = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: rows(try i("input_ids")), labels: rows(try i("labels")),
                                                            injected: noise, recordIntermediates: true)
            (floats, ints, params, loss) = (r.intermediates, r.intIntermediates, model.parameters, r.loss)
        }
        let refLoss = try f("loss")[0]
        #expect(abs(Double(loss) - Double(refLoss)) <= 1e-4, "loss \(loss) vs \(refLoss)")
        var gradKeys = 0
        for key in g.tensorNames {
            if key.hasPrefix("grad.") {
                let pname = String(key.dropFirst(5))
                #expect(params.contains(pname), "\(key): no such parameter")
                guard params.contains(pname) else { continue }
                gradKeys += 1
                let err = relativeError(params[pname].grad, try g.tensor(key).floats())
                #expect(err <= 1e-4, "\(key): relative error \(err)")
            } else if key.hasPrefix("train.") {
                let k = String(key.dropFirst(6))
                if let ours = floats[k] {
                    let err = relativeError(ours, try f(k))
                    #expect(err <= 1e-4, "\(key): relative error \(err)")
                } else if let ours = ints[k] {
                    let ref = try i(k)
                    #expect(ours == ref, "\(key) differs")
                } else {
                    Issue.record("\(key): not produced")
                }
            }
        }
        #expect(gradKeys == params.count, "every trainable parameter has a golden gradient")
    }
}
