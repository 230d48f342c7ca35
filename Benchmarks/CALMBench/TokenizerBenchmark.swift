import CALMTokenizer
import Foundation

/// Tokenizer benchmark: load time, then single-thread encode speed over the WikiText test
/// documents (each encoded as BOS + text, as the reference does), best of 3.
///
///     swift run -c release calm-bench tokenizer [--data FILE] [--tokenizer DIR] [--repeat N] [--hf]
///
/// Defaults come from `$CALM_SHARED` or `../shared` relative to the current directory. With
/// `--hf` a tiktoken tokenizer is first converted to a temporary `tokenizer.json`, and the
/// Hugging Face path (load + encode) is measured instead.
func runTokenizerBenchmark(_ arguments: [String]) {
    func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }
    var dataPath: String?
    var tokenizerPath: String?
    var repeats = 3
    var huggingFace = false
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        let value = index + 1 < arguments.count ? arguments[index + 1] : nil
        switch argument {
        case "--data": dataPath = value; index += 2
        case "--tokenizer": tokenizerPath = value; index += 2
        case "--repeat": repeats = max(1, Int(value ?? "") ?? 3); index += 2
        case "--hf": huggingFace = true; index += 1
        default: fail("tokenizer benchmark: unknown option \(argument)")
        }
    }
    let environment = ProcessInfo.processInfo.environment
    let shared = environment["CALM_SHARED"].flatMap { $0.isEmpty ? nil : $0 } ?? "../shared"
    let dataURL = URL(fileURLWithPath: dataPath ?? "\(shared)/data/wikitext/wikitext_document_level-test.json")
    var tokenizerURL = URL(fileURLWithPath: tokenizerPath ?? "\(shared)/data/llama3")
    var temporary: URL?
    if huggingFace {
        do {
            guard let source = try TokenizerLoader.load(directory: tokenizerURL) as? TiktokenTokenizer else {
                fail("--hf needs a tiktoken tokenizer directory")
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let definition = source.huggingFaceDefinition()
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("calm-bench-tokenizer-\(ProcessInfo.processInfo.processIdentifier)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try definition.write(to: directory.appendingPathComponent("tokenizer.json"))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print("converted to tokenizer.json (\(definition.merges.count) merges) in \(String(format: "%.2f", seconds)) s")
            tokenizerURL = directory
            temporary = directory
        } catch {
            fail("conversion failed: \(error)")
        }
    }
    defer { if let temporary { try? FileManager.default.removeItem(at: temporary) } }

    guard let data = try? Data(contentsOf: dataURL) else { fail("cannot read \(dataURL.path)") }
    var documents: [String] = []
    for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
              let text = object["text"] as? String
        else { fail("\(dataURL.path): a line is not {\"text\": …}") }
        documents.append(text)
    }
    let bytes = documents.reduce(0) { $0 + $1.utf8.count }

    var loadTimes: [Double] = []
    var tokenizer: (any TextTokenizer)?
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            tokenizer = try TokenizerLoader.load(directory: tokenizerURL)
        } catch {
            fail("cannot load tokenizer: \(error)")
        }
        loadTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    guard let tokenizer else { fail("no tokenizer") }

    var best = Double.infinity
    var tokens = 0
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        var count = 0
        for document in documents {
            count += tokenizer.encode(document, addBOS: true, allowSpecialTokens: true).count
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        best = min(best, seconds)
        tokens = count
    }
    var decodeBest = Double.infinity
    let allIDs = documents.map { tokenizer.encode($0, addBOS: false, allowSpecialTokens: true) }
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        var decodedBytes = 0
        for ids in allIDs { decodedBytes += tokenizer.decode(ids).utf8.count }
        precondition(decodedBytes == bytes, "decode round trip lost bytes")
        decodeBest = min(decodeBest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    func format(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
    print("tokenizer: \(tokenizerURL.path) (\(type(of: tokenizer)), vocabulary \(tokenizer.vocabularySize))")
    print("load: best \(format((loadTimes.min() ?? 0) * 1000, 1)) ms, first \(format(loadTimes[0] * 1000, 1)) ms")
    print("data: \(documents.count) documents, \(bytes) UTF-8 bytes, \(tokens) tokens (with BOS)")
    print("encode (1 thread, best of \(repeats)): \(format(best * 1000, 1)) ms, "
        + "\(format(Double(bytes) / best / 1e6)) MB/s, \(format(Double(tokens) / best / 1e6)) M tokens/s")
    print("decode (best of \(repeats)): \(format(decodeBest * 1000, 1)) ms, "
        + "\(format(Double(bytes) / decodeBest / 1e6)) MB/s")
}
