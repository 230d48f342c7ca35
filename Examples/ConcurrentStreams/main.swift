// Streams several generations at once from one shared engine.
//
//   swift run -c release concurrent-streams                      # the built-in model
//   swift run -c release concurrent-streams --model DIR [--tokenizer DIR]
//
// Each request runs in its own task; the engine batches them into shared steps, and each stream
// receives its own chunks as soon as they are decoded.
import CALMDefaultModel
import CALMEngine
import Foundation

let args = CommandLine.arguments
func option(_ name: String) -> String? {
    args.firstIndex(of: "--\(name)").flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil }
}

do {
    let engine: CALMEngine
    if let modelPath = option("model") {
        engine = try CALMEngine(directory: URL(fileURLWithPath: modelPath),
                                tokenizerDirectory: option("tokenizer").map { URL(fileURLWithPath: $0) })
    } else {
        engine = try DefaultModel.engine()
    }
    // Text prompts need a tokenizer; without one, token-id prompts.
    let prompts: [Prompt] = engine.tokenizer != nil
        ? ["Once upon a time", "The Lord said unto", "It is a truth universally acknowledged", "Call me"]
        : [.tokens([1, 2, 3, 4, 5]), .tokens([10, 20, 30]), .tokens([7, 7, 7, 7, 7, 7, 7]), .tokens([42])]
    try await withThrowingTaskGroup(of: Void.self) { group in
        for (i, prompt) in prompts.enumerated() {
            let stream = try engine.generate(prompt: prompt, parameters: SamplingParameters(
                maxTokens: 24, temperature: 0.5, seed: UInt64(i), stopAtEndToken: false))
            group.addTask {
                for await event in stream {
                    switch event {
                    case let .chunk(chunk):
                        let shown = engine.tokenizer == nil ? chunk.tokens.map(String.init).joined(separator: " ") : chunk.text
                        print("[request \(i)] chunk \(chunk.index): \(shown.debugDescription)")
                    case let .completed(info):
                        print("[request \(i)] done: \(info.reason), \(info.generatedTokens) tokens, first chunk after \(String(format: "%.1f", (info.timeToFirstChunk ?? 0) * 1000)) ms")
                    }
                }
            }
        }
        try await group.waitForAll()
    }
} catch {
    FileHandle.standardError.write(Data("concurrent-streams: \(error)\n".utf8))
    exit(1)
}
