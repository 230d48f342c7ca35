import CALMDefaultModel
import CALMModel
import CALMTensor
import Foundation

/// `calm inspect`: what a model folder holds.
enum InspectCommand {
    static let help = """
    usage: calm inspect [--model DIR | --family tm|calm] [--json]

      Prints the config, parameter counts (CALM: backbone, head, chunk embedding, autoencoder;
      Llama: token embedding, backbone, lm_head), the weights' dtypes, the size on disk, and the
      kernels' instruction set on this machine (CALM_ISA=portable|avx2|avx512 overrides the
      measured choice).
      --model DIR   CALM, autoencoder, Token Maturation or LlamaForCausalLM folder (default: the
                    built-in model)
      --family F    a built-in model instead: calm (the default) or tm
      --json        one JSON object instead of the text
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: ["json"], values: ["model", "family"])
        let explicit = try EngineOptions.modelFolder(&a)?.0
        let json = a.flag("json")
        try a.finish()
        let report = try ModelInspection(directory: explicit ?? DefaultModel.directory())
        // the machine side of "what will run": the kernels' instruction set and how it was chosen
        if json {
            var dictionary = report.dictionary
            dictionary["isa"] = KernelISA.active.rawValue
            dictionary["isa_selection"] = KernelISA.selection
            let data = try JSONSerialization.data(withJSONObject: dictionary, options: [.prettyPrinted, .sortedKeys])
            writeStdout(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            writeStdout(report.text + "kernels: \(KernelISA.selection)\n")
        }
    }
}
