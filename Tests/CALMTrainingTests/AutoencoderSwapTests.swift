import CALMModel
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

/// The two ways a trained CALM folder's autoencoder is changed (issue 16's recipe experiments): its
/// embedded `ae_model.*` autoencoder is trained further on its own (`train-autoencoder --model
/// CALM-FOLDER`), and the energy model is then warm-started on the new one (`train --model
/// CALM-FOLDER --autoencoder AE-FOLDER`).
@Suite struct AutoencoderSwapTests {
    func values(_ set: ParameterSet) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: set.parameters.map { ($0.name, $0.value) })
    }

    /// A tiny CALM folder that embeds its autoencoder under `ae_model.*`, as trained folders do
    /// (the random-model writer links a separate autoencoder folder instead).
    func embeddedFolder(_ dir: URL, seed: UInt64) throws -> (TrainableCALM, URL) {
        let work = dir.appendingPathComponent("random-\(seed)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let model = try tinyModel(work, seed: seed)
        let folder = dir.appendingPathComponent("calm-\(seed)")
        try model.save(to: folder)
        return (model, folder)
    }

    @Test func aCALMFolderLoadsAsItsEmbeddedAutoencoder() throws {
        let dir = try TemporaryDirectory()
        let (calm, folder) = try embeddedFolder(dir.url, seed: 7)
        let ae = try TrainableAutoencoder.load(directory: folder)
        #expect(ae.config.vocabSize == 48 && ae.config.latentSize == 4 && ae.config.patchSize == 2)
        #expect(ae.config.hiddenSize == 12 && ae.config.intermediateSize == 20)
        #expect(ae.config.padTokenID == 47 && ae.config.eosTokenID == 46)
        let same = values(ae.parameters) == values(calm.autoencoder.parameters)
        #expect(same)
        #expect(ae.parameters.parameters.allSatisfy { $0.requiresGrad })
    }

    @Test func theEnergyModelMovesOntoAnotherAutoencoder() throws {
        let dir = try TemporaryDirectory()
        let (original, calmFolder) = try embeddedFolder(dir.url, seed: 7)
        let (donor, _) = try embeddedFolder(dir.url, seed: 8)
        let aeFolder = dir.url.appendingPathComponent("ae")
        try donor.autoencoder.save(to: aeFolder)
        let differ = values(donor.autoencoder.parameters) != values(original.autoencoder.parameters)
        #expect(differ)

        let swapped = try TrainableCALM.load(directory: calmFolder, replacingAutoencoder: aeFolder)
        let energyKept = values(swapped.parameters) == values(original.parameters)
        let aeSwapped = values(swapped.autoencoder.parameters) == values(donor.autoencoder.parameters)
        #expect(energyKept && aeSwapped)
        #expect(swapped.autoencoder.parameters.parameters.allSatisfy { !$0.requiresGrad })
        // without the replacement the embedded autoencoder stays, even with an autoencoderPath
        // (which then only names the config), as when a run is resumed
        let kept = try TrainableCALM.load(directory: calmFolder, autoencoderPath: aeFolder)
        let embeddedKept = values(kept.autoencoder.parameters) == values(original.autoencoder.parameters)
        #expect(embeddedKept)
        // the saved folder embeds the new autoencoder
        let saved = dir.url.appendingPathComponent("saved")
        try swapped.save(to: saved)
        let reloaded = values(try TrainableCALM.load(directory: saved).autoencoder.parameters) == values(donor.autoencoder.parameters)
        #expect(reloaded)
    }

    @Test func anAutoencoderOfAnotherLatentSizeIsRefused() throws {
        let dir = try TemporaryDirectory()
        let (_, calmFolder) = try embeddedFolder(dir.url, seed: 7)
        var (_, a) = tinyConfigs()
        a.latentSize = 6
        let aeFolder = dir.url.appendingPathComponent("ae6")
        try TrainableAutoencoder.initialized(config: a, seed: 1).save(to: aeFolder)
        #expect {
            try TrainableCALM.load(directory: calmFolder, replacingAutoencoder: aeFolder)
        } throws: { error in
            "\(error)".contains("latent_size") && "\(error)".contains("ae6")
        }
    }
}
