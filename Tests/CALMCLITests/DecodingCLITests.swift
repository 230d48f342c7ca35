import CALMTestSupport
import Foundation
import Testing

/// `--decoding lazy|full`: the same tokens either way; `--stats` reports the argmax rows.
@Suite("calm generate --decoding")
struct DecodingCLITests {
    @Test func lazyAndFullGiveTheSameTokens() throws {
        let dir = try TemporaryDirectory("calm-cli-decoding")
        let made = try CLI.run(["random-model", "--shape", "tiny", "--out", dir.url.path])
        #expect(made.status == 0, "\(made.stderr)")
        func generate(_ decoding: String) throws -> (ids: String, stats: [String: Any]) {
            let r = try CLI.run(["generate", "--model", dir.url.path, "--prompt-ids", "5,6,7", "--max-tokens", "16",
                                 "--temperature", "1/2", "--samples", "24", "--seed", "3", "--ids", "--stats", "--decoding", decoding])
            #expect(r.status == 0, "\(r.stderr)")
            let line = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
            return (r.stdout, (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:])
        }
        let full = try generate("full"), lazy = try generate("lazy")
        #expect(full.ids == lazy.ids && !full.ids.isEmpty)
        let samples = full.stats["samples_drawn"] as? Int ?? 0   // 24 a step (fewer steps if a chunk ends the text)
        #expect(samples > 0 && samples % 24 == 0 && lazy.stats["samples_drawn"] as? Int == samples, "\(full.stats)")
        #expect(full.stats["argmax_rows"] as? Int == samples * 4, "\(full.stats)")
        #expect((lazy.stats["argmax_rows"] as? Int ?? .max) < samples * 4, "\(lazy.stats)")

        let bad = try CLI.run(["generate", "--model", dir.url.path, "--prompt-ids", "5", "--decoding", "eager"])
        #expect(bad.status == 2 && bad.stderr == "calm: option --decoding: 'eager' is not lazy or full\n", "\(bad.stderr)")
    }
}
