import CALMTestSupport
import Foundation
import Testing

/// `calm train-autoencoder --model DIR` continuing a trained autoencoder: the loss's hyperparameters
/// given on the command line (KL weight, KL clamp, dropout) are the new run's and are saved with its
/// checkpoints; shape flags that disagree with the folder are an error, not silently dropped (they were,
/// and a "KL weight 1e-2" experiment quietly ran at the folder's 1e-3).
@Suite("train-autoencoder CLI (calm subprocess)")
struct TrainAutoencoderCLITests {
    @Test func continuedRunTakesTheLossFlagsAndRefusesShapeChanges() throws {
        let dir = try TemporaryDirectory("calm-cli-train-ae")
        let ids = (0..<400).map { String(($0 * 7) % 37 + 1) }.joined(separator: " ")
        let data = dir.url.appendingPathComponent("ids.txt")
        try Data(ids.utf8).write(to: data)
        func savedFolder(_ r: CLI.Result) throws -> String {
            let line = r.stdout.split(separator: "\n").map(String.init).last { $0.hasPrefix("saved ") }
            return String(try #require(line, "\(r.stdout)\n\(r.stderr)").dropFirst("saved ".count))
        }
        let common = ["--data", data.path, "--steps", "1", "--block", "16", "--batch-size", "2", "--threads", "1"]
        let fresh = try CLI.run(["train-autoencoder", "--vocab", "40", "--hidden", "16", "--intermediate", "32", "--latent", "8",
                                 "--output", dir.url.appendingPathComponent("fresh").path] + common)
        #expect(fresh.status == 0, "\(fresh.stderr)")
        let first = try savedFolder(fresh)

        let continued = try CLI.run(["train-autoencoder", "--model", first, "--kl-weight", "0.05", "--kl-clamp", "0.25",
                                     "--dropout", "0.1", "--output", dir.url.appendingPathComponent("continued").path] + common)
        #expect(continued.status == 0, "\(continued.stderr)")
        let saved = try savedFolder(continued)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saved).appendingPathComponent("config.json")))
            as? [String: Any]
        #expect(config?["kl_weight"] as? Double == 0.05, "\(String(describing: config))")
        #expect(config?["kl_clamp"] as? Double == 0.25)
        #expect(config?["ae_dropout"] as? Double == 0.1)
        #expect(config?["hidden_size"] as? Int == 16)

        let reshaped = try CLI.run(["train-autoencoder", "--model", first, "--hidden", "32",
                                    "--output", dir.url.appendingPathComponent("reshaped").path] + common)
        #expect(reshaped.status != 0)
        #expect(reshaped.stderr.contains("--hidden 32 (the folder has 16) disagrees with"), "\(reshaped.stderr)")
        let negative = try CLI.run(["train-autoencoder", "--model", first, "--kl-weight", "-1",
                                    "--output", dir.url.appendingPathComponent("negative").path] + common)
        #expect(negative.status != 0)
        #expect(negative.stderr.contains("kl_weight"), "\(negative.stderr)")
    }
}
