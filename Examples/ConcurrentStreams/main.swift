// Streams several generations at once from one shared engine.
//
//   swift run -c release concurrent-streams --model DIR [--tokenizer DIR]
//
// Each request runs in its own task; the engine batches them into shared steps, and each stream
// receives its own chunks as soon as they are decoded.
import CALMEngine
import Foundation

let args = CommandLine.arguments
func option(_ name: String) -> String? {
    args.firstIndex(of: "--\(name)").flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil }
}
guard let modelPath = option("model") else {
    print("usage: concurrent-streams --model DIR [--tokenizer DIR]")
    exit(2)
}

do {
    let engine = try CALMEngine(directory: URL(fileURLWithPath: modelPath),
                                tokenizerDirectory: option("tokenizer").map { URL(fileURLWithPath: $0) })
    let prompts: [[Int]] = [[1, 2, 3, 4, 5], [10, 20, 30], [7, 7, 7, 7, 7, 7, 7], [42]]
    try await withThrowingTaskGroup(of: Void.self) { group in
        for (i, ids) in prompts.enumerated() {
            let stream = try engine.generate(prompt: .tokens(ids), parameters: SamplingParameters(
                maxTokens: 24, temperature: 1, seed: UInt64(i), stopAtEndToken: false, sampler: .single))
            group.addTask {
                for await event in stream {
                    switch event {
                    case let .chunk(chunk):
                        let shown = engine.tokenizer == nil ? chunk.tokens.map(String.init).joined(separator: " ") : chunk.text
                        print("[request \(i)] chunk \(chunk.index): \(shown)")
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
