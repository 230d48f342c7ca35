import CALMModel
import CALMTensor
import Foundation

/// `calm export`: a training checkpoint → a distributable model folder (bf16/f16/f32 weights,
/// config, tokenizer; no optimizer state).
enum ExportCommand {
    static let help = """
    usage: calm export --model DIR --out DIR [--dtype bf16] [--tokenizer DIR]

      --model DIR       checkpoint or model folder (config.json + weights in any supported format)
      --out DIR         folder to write: model.safetensors, config.json and the tokenizer files
      --dtype D         bf16 (default), f16 or f32 for the floating-point weights
      --tokenizer DIR   copy tokenizer files from here (default: those in --model, if any)
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: [], values: ["model", "out", "dtype", "tokenizer"])
        let model = URL(fileURLWithPath: try a.required("model"))
        let out = URL(fileURLWithPath: try a.required("out"))
        let dtypeName = a.string("dtype") ?? "bf16"
        let tokenizer = a.string("tokenizer").map { URL(fileURLWithPath: $0) }
        try a.finish()
        guard let dtype = DType(userName: dtypeName) else { throw UsageError("option --dtype: '\(dtypeName)' is not f32, f16 or bf16") }
        let report = try ModelFolderExport.export(from: model, to: out, dtype: dtype, tokenizer: tokenizer)
        let mb = Double(report.weightBytes) / 1e6
        writeStdout("wrote \(out.path): \(report.tensors) tensors (\(String(format: "%.1f", mb)) MB, \(dtype.rawValue))"
                    + (report.tokenizerFiles.isEmpty ? "" : ", " + report.tokenizerFiles.joined(separator: ", ")) + "\n")
    }
}
