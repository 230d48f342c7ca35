import CALMModel
import CALMTestSupport
import Foundation
import Testing

/// The kernels' instruction set as a user sees it: `$CALM_ISA`, `calm inspect`, and a model-level
/// golden parity run once per level this machine has (each in its own process, so forcing a level
/// never disturbs tests running beside it).
@Suite("ISA selection (calm subprocess)")
struct ISASelectionCLITests {
    static let levels = KernelISA.allCases

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)), arguments: levels)
    func goldenParityAtEachLevel(level: KernelISA) throws {
        guard KernelISA.available.contains(level) else {
            print("ISA \(level.rawValue): not available on this machine (\(KernelISA.selection)); its parity run is skipped")
            return
        }
        let fixtures = try SharedFixtures.calmFixtures()
        let inspect = try CLI.run(["inspect", "--model", fixtures.appendingPathComponent("calm_k4_gqa").path],
                                  environment: ["CALM_ISA": level.rawValue])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("kernels: \(level.rawValue) (CALM_ISA=\(level.rawValue))"), "\(inspect.stdout)")
        // backbone, head, generation, sampler and evaluation goldens of one model, on this level's kernels
        let run = try CLI.run(["conformance", "--fixtures", fixtures.path, "--only", "golden_calm_k4_gqa.safetensors"],
                              environment: ["CALM_ISA": level.rawValue])
        #expect(run.status == 0, "CALM_ISA=\(level.rawValue): \(run.stdout.split(separator: "\n").filter { $0.contains("FAIL") })")
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasSuffix(" 0 failed"), "\(last)")
        #expect((Int(last.split(separator: " ").first ?? "") ?? 0) > 30, "\(last)")
    }

    @Test func unavailableOrUnknownLevelsAreNamedAndIgnored() throws {
        let model = try TemporaryDirectory("calm-isa")
        let made = try CLI.run(["random-model", "--shape", "tiny", "--out", model.url.path])
        #expect(made.status == 0, "\(made.stderr)")
        let bad = try CLI.run(["inspect", "--model", model.url.path], environment: ["CALM_ISA": "sse9"])
        #expect(bad.status == 0)
        #expect(bad.stderr.contains("CALM_ISA='sse9' is not one of portable, avx2, avx512"), "\(bad.stderr)")
        #expect(bad.stdout.contains("kernels: \(KernelISA.startupChoice.rawValue)"), "\(bad.stdout)")
        if !KernelISA.available.contains(.avx512) {
            let missing = try CLI.run(["inspect", "--model", model.url.path], environment: ["CALM_ISA": "avx512"])
            #expect(missing.stderr.contains("CALM_ISA=avx512 is not available on this CPU"), "\(missing.stderr)")
            #expect(missing.stdout.contains("(CALM_ISA=avx512 is not available here)"), "\(missing.stdout)")
        }
    }
}
