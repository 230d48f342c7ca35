@testable import CALMConformance
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// The `gen_T0.5` group (generation at T = 1/2, README "Generation at T = 1/2"): its name holds a dot,
/// and the shipped fixtures have no such group, so our own goldens (Tests/CALMConformanceTests/Fixtures,
/// written by Scripts/make_gen_t05_fixture.py with an independent NumPy re-implementation that first
/// reproduces the shipped gen/gen_eos/ts_real goldens) are replayed beside the shipped model folders.
@Suite("T = 1/2 generation goldens")
struct TemperatureGenerationGoldenTests {
    static let ourFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    @Test func groupNamesKeepTheirDecimalPart() {
        #expect(GoldenKeyGroup.of("gen_T0.5.prompt_ids") == "gen_T0.5")
        #expect(GoldenKeyGroup.of("gen_T0.25.choice_u") == "gen_T0.25")
        #expect(GoldenKeyGroup.of("gen_T1.output_ids") == "gen_T1")
        #expect(GoldenKeyGroup.of("gen.step_latent") == "gen")
        #expect(GoldenKeyGroup.of("gen_eos.raw_ids") == "gen_eos")
        #expect(GoldenKeyGroup.of("bb.layer0_input") == "bb")
        #expect(GoldenKeyGroup.of("grad.embed_proj.0.bias") == "grad")
        #expect(GoldenKeyGroup.of("grad.decoder.decoder_layers.1.mlp.up_proj.weight") == "grad")
        #expect(GoldenKeyGroup.of("enc2.5") == "enc2") // a trailing number is a leaf, not a fraction
        let groups = GoldenKeyGroup.grouping(["gen_T0.5.prompt_ids", "gen_T0.5.output_ids", "gen.prompt_ids"])
        #expect(Set(groups.keys) == ["gen_T0.5", "gen"])
        #expect(groups["gen_T0.5"]?.count == 2)
    }

    @Test func ourGoldenFileHasTheDocumentedGroup() throws {
        let golden = try SafetensorsFile(url: Self.ourFixtures.appendingPathComponent("golden_calm_k4_mha_t05.safetensors"))
        let groups = GoldenKeyGroup.grouping(golden.tensorNames)
        #expect(Array(groups.keys) == ["gen_T0.5"])
        #expect(golden.info("gen_T0.5.step_uniform")?.shape.dropLast() == [4, 2, 200])
    }

    /// A fixtures folder: the shipped model folders (linked, never copied) plus our goldens and manifest.
    static func fixtureFolder(goldens: [String: URL]? = nil) throws -> TemporaryDirectory {
        let shared = try SharedFixtures.calmFixtures()
        let dir = try TemporaryDirectory("calm-t05")
        let fm = FileManager.default
        for entry in try fm.contentsOfDirectory(atPath: shared.path) {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: shared.appendingPathComponent(entry).path, isDirectory: &isDir), isDir.boolValue {
                try fm.createSymbolicLink(at: dir.url.appendingPathComponent(entry), withDestinationURL: shared.appendingPathComponent(entry))
            }
        }
        try fm.copyItem(at: ourFixtures.appendingPathComponent("manifest.json"), to: dir.url.appendingPathComponent("manifest.json"))
        for name in ["golden_calm_k4_mha_t05.safetensors", "golden_calm_k4_gqa_t05.safetensors"] {
            try fm.copyItem(at: goldens?[name] ?? ourFixtures.appendingPathComponent(name), to: dir.url.appendingPathComponent(name))
        }
        return dir
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func temperatureHalfReplayPasses() throws {
        let dir = try Self.fixtureFolder()
        let summary = ConformanceRunner(fixtures: dir.url).run(only: "_t05")
        for f in summary.checks where !f.passed { Issue.record(Comment(rawValue: f.line)) }
        #expect(summary.failed == 0)
        for file in ["golden_calm_k4_mha_t05.safetensors", "golden_calm_k4_gqa_t05.safetensors"] {
            let names = Set(summary.checks.filter { $0.file == file && $0.passed }.map(\.name))
            for key in ["gen_T0.5.steps", "gen_T0.5.step_noise", "gen_T0.5.step_pool_tokens", "gen_T0.5.choice_index",
                        "gen_T0.5.step_selected_tokens", "gen_T0.5.output_ids"] {
                #expect(names.contains(key), "\(file): no passing check \(key)")
            }
            // The same goldens replayed with lazy decoding.
            for key in ["gen_T0.5.steps", "gen_T0.5.random draws", "gen_T0.5.step_pool_tokens", "gen_T0.5.choice_index",
                        "gen_T0.5.step_selected_tokens", "gen_T0.5.output_ids"] {
                #expect(names.contains(key + " [lazy decoding]"), "\(file): no passing check \(key) [lazy decoding]")
            }
        }
    }

    /// The replay is not vacuous: one wrong selected token is a failure.
    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func aWrongTokenFails() throws {
        let scratch = try TemporaryDirectory("calm-t05-bad")
        let name = "golden_calm_k4_mha_t05.safetensors"
        let golden = try SafetensorsFile(url: Self.ourFixtures.appendingPathComponent(name))
        var tensors: [TensorData] = []
        for key in golden.tensorNames {
            var t = try golden.tensor(key)
            if key == "gen_T0.5.output_ids" {
                var ids = try t.int64s()
                ids[5] = (ids[5] + 1) % 500
                t = try TensorData(name: key, shape: t.shape, int64s: ids)
            }
            tensors.append(t)
        }
        let bad = scratch.url.appendingPathComponent(name)
        try SafetensorsWriter.write(tensors, to: bad)
        let dir = try Self.fixtureFolder(goldens: [name: bad])
        let summary = ConformanceRunner(fixtures: dir.url).run(only: "mha_t05")
        #expect(Set(summary.checks.filter { !$0.passed }.map(\.name)) == ["gen_T0.5.output_ids", "gen_T0.5.output_ids [lazy decoding]"])
    }
}
