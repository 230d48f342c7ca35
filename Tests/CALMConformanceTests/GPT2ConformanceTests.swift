@testable import CALMConformance
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// The conformance runner over ../shared/fixtures/gpt2 (transformers' `GPT2LMHeadModel` goldens):
/// every key, for both layouts of the tiny model, must pass; a wrong value or an unknown key must fail.
@Suite("GPT-2 conformance")
struct GPT2ConformanceTests {
    static let folders = ["gpt2_tiny", "gpt2_tiny_hub"]

    /// A fixtures folder with the shared GPT-2 model folders linked (never copied) and `goldens`
    /// written into it.
    static func fixtureFolder(goldens: [String: [TensorData]]) throws -> TemporaryDirectory {
        let shared = try SharedFixtures.gpt2Fixtures()
        let dir = try TemporaryDirectory("calm-gpt2-conf")
        for folder in folders {
            try FileManager.default.createSymbolicLink(at: dir.url.appendingPathComponent(folder),
                                                       withDestinationURL: shared.appendingPathComponent(folder))
        }
        for (name, tensors) in goldens { try SafetensorsWriter.write(tensors, to: dir.url.appendingPathComponent(name)) }
        return dir
    }

    static func sharedGolden() throws -> [TensorData] {
        let golden = try SafetensorsFile(url: try SharedFixtures.gpt2Fixtures().appendingPathComponent("golden_gpt2_tiny.safetensors"))
        return try golden.tensorNames.map { name in
            let t = try golden.tensor(name)
            return try TensorData(name: name, dtype: t.dtype, shape: t.shape, bytes: t.bytes)
        }
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func everyGoldenKeyPassesForBothLayouts() throws {
        let summary = ConformanceRunner(fixtures: try SharedFixtures.gpt2Fixtures()).run()
        for f in summary.checks where !f.passed { Issue.record(Comment(rawValue: f.line)) }
        #expect(summary.failed == 0)
        let names = Set(summary.checks.filter(\.passed).map(\.name))
        for folder in Self.folders {
            for key in ["ids.hidden_states[0]", "ids.hidden_states[1]", "ids.hidden_states[2]", "ids.logits", "embeds.last_hidden",
                        "cache.prefix_last_hidden", "cache.step_last_hidden", "cache.step_last_hidden (4 rows, persist 1)",
                        "cache.step_last_hidden (rows 2…4 after a scratch pass)"] {
                #expect(names.contains("\(key) (\(folder))"), "no passing check \(key) for \(folder)")
            }
        }
        #expect(summary.passed == 18)
    }

    /// Not vacuous: one wrong logit and a key the runner does not know fail, for each layout.
    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func aWrongValueOrUnknownKeyFails() throws {
        var tensors = try Self.sharedGolden()
        for (i, t) in tensors.enumerated() where t.name == "ids.logits" {
            var values = try t.floats()
            values[77] += 0.01 * (values.map(abs).max() ?? 1)
            tensors[i] = try TensorData(name: t.name, shape: t.shape, floats: values)
        }
        tensors.append(try TensorData(name: "ids.attention_mask", shape: [1], floats: [1]))
        let dir = try Self.fixtureFolder(goldens: ["golden_gpt2_tiny.safetensors": tensors])
        let summary = ConformanceRunner(fixtures: dir.url).run()
        let failed = Set(summary.checks.filter { !$0.passed }.map(\.name))
        #expect(failed == Set(Self.folders.flatMap { ["ids.logits (\($0))", "ids.attention_mask (\($0))"] }))
    }

    /// Goldens and folders are discovered: a layout folder that a longer golden name claims is
    /// checked against that golden only.
    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func eachFolderIsCheckedAgainstTheGoldenThatClaimsIt() throws {
        let tensors = try Self.sharedGolden()
        let dir = try Self.fixtureFolder(goldens: ["golden_gpt2_tiny.safetensors": tensors,
                                                   "golden_gpt2_tiny_hub.safetensors": tensors])
        let checker = GoldenFileChecker(fixtures: dir.url, file: "golden_gpt2_tiny.safetensors", manifest: Manifest(fixtures: dir.url))
        let own = checker.gpt2Folders(for: "gpt2_tiny", primary: dir.url.appendingPathComponent("gpt2_tiny"))
        #expect(own.map(\.lastPathComponent) == ["gpt2_tiny"])
        let summary = ConformanceRunner(fixtures: dir.url).run()
        #expect(summary.failed == 0)
        #expect(summary.passed == 18)
        #expect(Set(summary.checks.filter { $0.name.hasSuffix("(gpt2_tiny_hub)") }.map(\.file)) == ["golden_gpt2_tiny_hub.safetensors"])
    }
}
