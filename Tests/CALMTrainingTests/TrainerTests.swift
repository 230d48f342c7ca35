import CALMModel
@testable import CALMTraining
import CALMTestSupport
import Foundation
import Testing

@Suite struct TrainerTests {
    @Test func resumeReproducesAnUninterruptedRun() throws {
        let dir = try TemporaryDirectory()
        _ = try tinyModel(dir.url)
        let folder = dir.url.appendingPathComponent("calm")
        var rng = TestRNG(31)
        let data = TokenData(ids: (0..<200).map { _ in rng.int(40) })
        var o = TrainingRunOptions()
        o.steps = 4; o.batchSize = 2; o.chunksPerSequence = 3; o.checkpointEvery = 2; o.learningRate = 1e-3; o.warmupSteps = 1
        var full: [Float] = []
        let end = try Trainer.trainCALM(try TrainableCALM.load(directory: folder), data: data, options: o,
                                        output: dir.url.appendingPathComponent("a"), pool: .serial) { full.append($0.loss) }
        #expect(end.lastPathComponent == "checkpoint-4" && full.count == 4 && full.allSatisfy { $0.isFinite })
        let mid = dir.url.appendingPathComponent("a/checkpoint-2")
        var resumed: [Float] = []
        let end2 = try Trainer.trainCALM(try TrainableCALM.load(directory: mid), data: data, options: o,
                                         output: dir.url.appendingPathComponent("b"), resume: mid, pool: .serial) { resumed.append($0.loss) }
        #expect(resumed == Array(full[2...]))
        let a = try TrainableCALM.load(directory: end), b = try TrainableCALM.load(directory: end2)
        for p in a.parameters.parameters { #expect(b.parameters[p.name].value == p.value, "\(p.name)") }
        // Checkpoints load in the engine.
        _ = try CALMModel.load(directory: end, options: LoadOptions(pool: .serial))
    }

    @Test func autoencoderRunWritesCheckpoints() throws {
        let dir = try TemporaryDirectory()
        let calm = try tinyModel(dir.url)
        let ae = TrainableAutoencoder(config: calm.autoencoder.config, parameters: calm.autoencoder.parameters.copy())
        ae.parameters.setRequiresGrad(true)
        var o = TrainingRunOptions()
        o.steps = 2; o.batchSize = 2; o.chunksPerSequence = 4
        var lines: [String] = []
        let end = try Trainer.trainAutoencoder(ae, data: TokenData(ids: Array(0..<40)), options: o,
                                               output: dir.url.appendingPathComponent("ae"), pool: .serial) { lines.append($0.line) }
        #expect(lines.count == 2 && lines[0].hasPrefix("step 1/2  loss ") && lines[0].contains("tokens/s") && lines[0].contains("ETA"))
        _ = try Autoencoder.load(directory: end)
    }

    @Test func tokenWindowsWrapAround() throws {
        let d = TokenData(ids: Array(0..<10))
        #expect(try d.batch(step: 0, rows: 2, length: 4) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(try d.batch(step: 1, rows: 2, length: 4) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(throws: TrainingError.self) { try d.batch(step: 0, rows: 1, length: 11) }
    }
}
