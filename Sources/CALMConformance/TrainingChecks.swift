import CALMModel
import CALMTensor
import CALMTraining
import Foundation

/// Checks of `golden_train_*` files: re-runs the training forward + backward with the golden's
/// injected random values on its model folder, then compares the loss, every `train.*`
/// intermediate and every `grad.<name>` (floats within 1e-4 of the tensor's largest magnitude,
/// integer tensors exactly). A key this runner does not produce is a failure.
enum TrainingChecks {
    static func run(folder: URL, context: GoldenContext) {
        let keys = context.golden.tensorNames.sorted()
        do {
            let produced: Produced
            if try ModelFolderKind.detect(folder) == .autoencoder {
                produced = try autoencoder(folder: folder, context)
            } else {
                produced = try energy(folder: folder, context)
            }
            var checked = Set<String>()
            for key in keys {
                if key.hasPrefix("train.") {
                    let name = String(key.dropFirst("train.".count))
                    if let f = produced.floats[name] {
                        context.check(key, floats: f)
                        checked.insert(key)
                    } else if let i = produced.ints[name] {
                        context.check(key, ints: i)
                        checked.insert(key)
                    }
                } else if key.hasPrefix("grad.") {
                    let name = String(key.dropFirst("grad.".count))
                    if produced.parameters.contains(name) {
                        context.check(key, floats: produced.parameters[name].grad)
                        checked.insert(key)
                    }
                }
            }
            context.reportUnchecked(keys, checked: checked)
            // Every trainable parameter must have a golden gradient (no silent gaps either way).
            let goldenGrads = Set(keys.filter { $0.hasPrefix("grad.") })
            let missing = produced.parameters.names.filter { !goldenGrads.contains("grad." + $0) }
            if !missing.isEmpty {
                context.fail("grad.*", "parameters without a golden gradient: \(missing.joined(separator: ", "))")
            }
        } catch {
            context.fail("training step", "\(error)")
        }
    }

    struct Produced {
        var floats: [String: [Float]]
        var ints: [String: [Int]]
        var parameters: ParameterSet
    }

    static func autoencoder(folder: URL, _ context: GoldenContext) throws -> Produced {
        let model = try TrainableAutoencoder.load(directory: folder)
        let ids = try context.ints("train.input_ids")
        let noise = AETrainingNoise(tokenDropoutUniform: try context.floats("train.token_dropout_uniform"),
                                    posteriorEps: try context.floats("train.posterior_eps"),
                                    latentDropoutKeep: try context.floats("train.latent_dropout_keep"))
        if context.has("train.labels"), try context.ints("train.labels") != ids {
            throw TrainingError.invalidInput("autoencoder labels differ from input_ids (not supported by the reference objective)")
        }
        let r = try AutoencoderTrainingStep.lossAndGradients(model: model, inputIDs: ids, injected: noise,
                                                             recordIntermediates: true, pool: .shared)
        return Produced(floats: r.intermediates, ints: r.intIntermediates, parameters: model.parameters)
    }

    static func energy(folder: URL, _ context: GoldenContext) throws -> Produced {
        let model = try TrainableCALM.load(directory: folder)
        let shape = context.shape("train.input_ids")
        guard shape.count == 2 else { throw TrainingError.invalidInput("train.input_ids must be 2-D") }
        func rows(_ flat: [Int]) -> [[Int]] { (0..<shape[0]).map { Array(flat[($0 * shape[1])..<(($0 + 1) * shape[1])]) } }
        let ids = rows(try context.ints("train.input_ids"))
        let labels = context.has("train.labels") ? rows(try context.ints("train.labels")) : ids
        let eps = try context.floats("train.target_eps")
        let m = context.shape("train.target_eps").first ?? 100
        let noise = EnergyTrainingNoise(headUniform: try context.floats("train.head_uniform"), targetEps: eps, targetSamples: m)
        let r = try EnergyTrainingStep.lossAndGradients(model: model, inputIDs: ids, labels: labels, injected: noise,
                                                        recordIntermediates: true, pool: .shared)
        return Produced(floats: r.intermediates, ints: r.intIntermediates, parameters: model.parameters)
    }
}
