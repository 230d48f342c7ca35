import CALMModel
import CALMTensor
import Foundation

/// Checks this engine against the golden fixtures produced by the reference implementation
/// (`golden_<name>.safetensors`, `golden_train_<name>[_<variant>].safetensors`,
/// `sampler_synthetic.json`, with per-golden settings from `manifest.json`). GPT-2 goldens (whose
/// model folder is a `GPT2LMHeadModel`, e.g. `../shared/fixtures/gpt2`) are checked against every
/// layout folder of the same weights (`gpt2_tiny`, `gpt2_tiny_hub`).
///
/// ```swift
/// let runner = ConformanceRunner(fixtures: URL(fileURLWithPath: "../shared/fixtures/calm"))
/// let summary = runner.run { print($0.line) }
/// print("\(summary.passed) passed, \(summary.failed) failed")
/// ```
public struct ConformanceRunner: Sendable {
    /// Totals of a run.
    public struct Summary: Sendable {
        public var checks: [ConformanceCheck] = []
        public var passed: Int { checks.filter(\.passed).count }
        public var failed: Int { checks.count - passed }
    }

    public let fixtures: URL

    public init(fixtures: URL) { self.fixtures = fixtures }

    /// Golden files in the folder, in name order.
    public func goldenFiles() throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: fixtures.path)
        return names.filter { $0.hasPrefix("golden_") && $0.hasSuffix(".safetensors") }.sorted()
    }

    /// Runs every check, reporting each as it completes. `only` restricts to golden names containing it.
    @discardableResult
    public func run(only: String? = nil, report: (ConformanceCheck) -> Void = { _ in }) -> Summary {
        var summary = Summary()
        func emit(_ check: ConformanceCheck) { summary.checks.append(check); report(check) }
        let manifest = Manifest(fixtures: fixtures)
        let files: [String]
        do { files = try goldenFiles() } catch {
            emit(ConformanceCheck(file: fixtures.path, name: "fixtures folder", passed: false, detail: "\(error)"))
            return summary
        }
        if files.isEmpty {
            emit(ConformanceCheck(file: fixtures.path, name: "fixtures folder", passed: false, detail: "no golden_*.safetensors files"))
        }
        for file in files where only.map({ file.contains($0) }) ?? true {
            GoldenFileChecker(fixtures: fixtures, file: file, manifest: manifest).run(emit)
        }
        let synthetic = fixtures.appendingPathComponent("sampler_synthetic.json")
        if FileManager.default.fileExists(atPath: synthetic.path), only.map({ "sampler_synthetic".contains($0) }) ?? true {
            SyntheticSamplerChecker(url: synthetic).run(emit)
        }
        return summary
    }
}

/// `manifest.json`: per-golden settings (seeds, max_length, eos ids, sampler call records).
///
/// `@unchecked Sendable`: `json` is a `let` holding what `JSONSerialization` parsed (immutable
/// dictionaries, arrays, strings and numbers; `Any` is not `Sendable`), and the struct only reads
/// it.
struct Manifest: @unchecked Sendable {
    let json: [String: Any]
    init(fixtures: URL) {
        let url = fixtures.appendingPathComponent("manifest.json")
        json = (try? Data(contentsOf: url)).flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any] ?? [:]
    }
    /// manifest[golden][group] as a dictionary.
    func group(_ golden: String, _ group: String) -> [String: Any]? {
        (json[golden] as? [String: Any])?[group] as? [String: Any]
    }
}
