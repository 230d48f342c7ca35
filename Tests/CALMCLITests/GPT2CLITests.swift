import CALMTestSupport
import Foundation
import Testing

/// `calm random-model --shape gpt2-tiny`, `calm inspect` of the folder it writes, and
/// `calm conformance` over the shared GPT-2 fixtures, on the built executable.
@Suite("GPT-2 CLI (calm subprocess)")
struct GPT2CLITests {
    @Test func randomGPT2FolderIsWrittenAndInspected() throws {
        let dir = try TemporaryDirectory("calm-cli-gpt2")
        let out = dir.url.appendingPathComponent("m")
        let written = try CLI.run(["random-model", "--shape", "gpt2-tiny", "--dtype", "bf16", "--out", out.path])
        #expect(written.status == 0, "\(written.stderr)")
        let inspect = try CLI.run(["inspect", "--model", out.path])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("(GPT-2 causal LM)") && inspect.stdout.contains("position_embedding"), "\(inspect.stdout)")
        let refused = try CLI.run(["random-model", "--shape", "gpt2-tiny", "--embed-autoencoder", "--out", dir.url.appendingPathComponent("n").path])
        #expect(refused.status == 2 && refused.stderr.contains("a GPT-2 shape has no autoencoder"), "\(refused.stderr)")
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func conformanceOverTheGPT2FixturesPasses() throws {
        let r = try CLI.run(["conformance", "--fixtures", try SharedFixtures.gpt2Fixtures().path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.hasSuffix("18 passed, 0 failed\n"), "\(r.stdout)")
    }
}
