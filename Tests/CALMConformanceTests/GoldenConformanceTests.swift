import CALMConformance
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// The conformance runner over ../shared/fixtures/calm: every check, inference and training, must pass.
@Suite("Golden conformance")
struct GoldenConformanceTests {
    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func everyInferenceGoldenPasses() throws {
        let fixtures = try SharedFixtures.calmFixtures()
        let summary = ConformanceRunner(fixtures: fixtures).run()
        let failures = summary.checks.filter { !$0.passed }
        for f in failures { Issue.record(Comment(rawValue: f.line)) }
        #expect(failures.isEmpty)
        // Sanity: the run covered every documented group.
        let names = Set(summary.checks.map(\.name))
        for key in ["enc.latent_states", "dec.logits_mean", "dec.argmax_rand", "bb.last_hidden_state", "head.latent",
                    "gen.output_ids", "gen_eos.output_ids", "ts_real.selected", "eval.brier", "eval.loss",
                    // the generation and sampler goldens replayed with lazy decoding too
                    "gen.output_ids [lazy decoding]", "gen_eos.output_ids [lazy decoding]", "gen.random draws [lazy decoding]",
                    "ts_real.selected [lazy decoding]", "ts_real.pool_tokens [lazy decoding]",
                    "ts_real candidates/weights/index [lazy decoding]"] {
            #expect(names.contains(key), "no check named \(key)")
        }
        #expect(summary.passed > 80)
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func trainingGoldensPass() throws {
        let fixtures = try SharedFixtures.calmFixtures()
        let summary = ConformanceRunner(fixtures: fixtures).run(only: "golden_train_")
        for f in summary.checks where !f.passed { Issue.record(Comment(rawValue: f.line)) }
        #expect(summary.failed == 0)
        // Every training golden was checked: loss, intermediates and gradients.
        let files = Set(summary.checks.map(\.file))
        #expect(files.count >= 5)
        for file in files {
            let names = Set(summary.checks.filter { $0.file == file }.map(\.name))
            #expect(names.contains("train.loss"), "\(file): no loss check")
            #expect(names.contains { $0.hasPrefix("grad.") }, "\(file): no gradient checks")
        }
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func trainingGoldenWithUnknownKeysFails() throws {
        // A training golden whose keys the runner does not produce: each is a failure.
        let dir = try TemporaryDirectory()
        let fixtures = try SharedFixtures.calmFixtures()
        let src = fixtures.appendingPathComponent("ae_k4_h32")
        let model = dir.url.appendingPathComponent("ae_k4_h32")
        try FileManager.default.copyItem(at: src, to: model)
        let golden = try SafetensorsFile(url: fixtures.appendingPathComponent("golden_train_ae_k4_h32.safetensors"))
        var tensors = try golden.tensorNames.map { try golden.tensor($0) }
        tensors.append(try TensorData(name: "train.something_new", shape: [1], floats: [1]))
        tensors.append(try TensorData(name: "grad.encoder.not_a_parameter", shape: [1], floats: [1]))
        try SafetensorsWriter.write(tensors, to: dir.url.appendingPathComponent("golden_train_ae_k4_h32.safetensors"))
        let summary = ConformanceRunner(fixtures: dir.url).run(only: "golden_train_")
        let failed = Set(summary.checks.filter { !$0.passed }.map(\.name))
        #expect(failed == ["train.something_new", "grad.encoder.not_a_parameter"])
    }

    @Test func unknownKeyGroupIsAFailure() throws {
        // A fixture folder with a golden whose key group the runner does not know.
        let dir = try TemporaryDirectory()
        let model = dir.url.appendingPathComponent("ae_x")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        let summary = ConformanceRunner(fixtures: dir.url).run()
        #expect(summary.failed >= 1, "an empty fixtures folder must not pass")
    }
}
