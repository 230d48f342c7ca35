import CALMModel
import CALMTensor
import Foundation

/// `calm inspect`: what a model folder holds.
enum InspectCommand {
    static let help = """
    usage: calm inspect --model DIR [--json]

      Prints the config, parameter counts (backbone, head, chunk embedding, autoencoder), the
      weights' dtypes and the size on disk.
    """

    static func run(_ raw: [String]) throws {
        if raw.contains("--help") || raw.contains("-h") { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: ["json"])
        let dir = URL(fileURLWithPath: try a.required("model"))
        let json = a.flag("json")
        try a.finish()
        let report = try ModelInspection(directory: dir)
        if json {
            let data = try JSONSerialization.data(withJSONObject: report.dictionary, options: [.prettyPrinted, .sortedKeys])
            writeStdout(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            writeStdout(report.text)
        }
    }
}
