import CALMConformance
import Foundation

/// `calm conformance`: every golden fixture check, one line each, then "N passed, M failed".
enum ConformanceCommand {
    static let help = """
    usage: calm conformance --fixtures DIR [--only NAME]

      Checks every golden_<name>.safetensors (and golden_train_*, sampler_synthetic.json) in DIR
      against its model folder. Floats within relative error 1e-4, ids and Brier values exactly.
      Exit status 1 if any check fails.
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: [], values: ["fixtures", "only"])
        let dir = URL(fileURLWithPath: try a.required("fixtures"))
        let only = a.string("only")
        try a.finish()
        guard FileManager.default.fileExists(atPath: dir.path) else { throw UsageError("fixtures folder \(dir.path) does not exist") }
        let summary = ConformanceRunner(fixtures: dir).run(only: only) { writeStdout($0.line + "\n") }
        writeStdout("\(summary.passed) passed, \(summary.failed) failed\n")
        if summary.failed > 0 { exit(1) }
    }
}
