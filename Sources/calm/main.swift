import Foundation

/// `calm`: generate, tokenize, inspect and check CALM models from the command line.
enum Commands {
    static let all: [String: (summary: String, run: @Sendable ([String]) async throws -> Void)] = [
    "generate": ("stream a generation from a model", GenerateCommand.run),
    "tokenize": ("text on stdin → token ids, one per line", TokenizeCommand.tokenize),
    "detokenize": ("token ids on stdin → text", TokenizeCommand.detokenize),
    "random-model": ("write a model folder with random weights", RandomModelCommand.run),
    "inspect": ("config, parameter counts, dtypes and size of a model", InspectCommand.run),
    "conformance": ("check the engine against golden fixtures", ConformanceCommand.run),
    "train-autoencoder": ("train a chunk autoencoder (AdamW, checkpoints, --resume)", TrainCommand.autoencoder),
    "train": ("train a CALM model with the energy loss (AdamW, checkpoints, --resume)", TrainCommand.calm),
    "train-baseline": ("train the discrete Llama baseline (cross-entropy, Hugging Face layout)", TrainCommand.baseline),
    "train-tm": ("train a Token Maturation model from a train-baseline checkpoint", TrainCommand.tokenMaturation),
    "bench-train": ("time training steps and report tokens/s and % of FMA peak", TrainBenchCommand.run),
    "serve": ("OpenAI-compatible HTTP server: /v1/completions (SSE streaming), /v1/models, /metrics", ServeCommand.run),
    "bench-serve": ("drive many seeded requests through the engine and report throughput", BenchServeCommand.run),
    "corpus": ("download and build the public-domain English training corpus", CorpusCommand.run),
    "train-tokenizer": ("train a byte-level BPE tokenizer.json from a corpus", TrainTokenizerCommand.run),
    "export": ("checkpoint → distributable model folder (bf16 weights, config, tokenizer)", ExportCommand.run),
    "eval": ("BrierLM of a CALM, Llama or Token Maturation model on a text corpus", EvalCommand.run),
    "eval-repetition": ("Dist-n, Rep-n and Loop % of generations from a prompt file (any family)", EvalRepetitionCommand.run),
    ]
}
let commands = Commands.all

func topLevelHelp() -> String {
    var s = "usage: calm <command> [options]   (calm <command> --help for details)\n\ncommands:\n"
    for name in Commands.all.keys.sorted() { s += "  \(name.padding(toLength: 19, withPad: " ", startingAt: 0))\(Commands.all[name]!.summary)\n" }
    return s
}

var args = Array(CommandLine.arguments.dropFirst())
guard let name = args.first, name != "--help", name != "-h", name != "help" else {
    writeStdout(topLevelHelp())
    exit(args.isEmpty ? 2 : 0)
}
guard let command = commands[name] else {
    printError("unknown command '\(name)'. Commands: \(commands.keys.sorted().joined(separator: ", "))")
    exit(2)
}
do {
    try await command.run(Array(args.dropFirst()))
} catch {
    let (message, status) = ErrorMessages.message(for: error, command: name)
    printError(message)
    exit(status)
}
