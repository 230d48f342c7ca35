import CALMDefaultModel
import CALMTokenizer
import Foundation

/// `calm tokenize` / `calm detokenize`.
enum TokenizeCommand {
    static let tokenizeHelp = """
    usage: calm tokenize [--tokenizer DIR] [--bos] [--no-special] < text

      Reads text on stdin and prints its token ids, one per line.
      --tokenizer DIR   tokenizer folder (tokenizer.json, or tokenizer.model + tokenizer_config.json;
                        a model folder with its tokenizer will do; default: the built-in model's)
      --bos             prepend the beginning-of-text id
      --no-special      encode special-token text (e.g. <|eot_id|>) as plain text
    """

    static let detokenizeHelp = """
    usage: calm detokenize [--tokenizer DIR] < ids

      Reads token ids (whitespace or comma separated) on stdin and prints the text.
      --tokenizer DIR   tokenizer folder, as for calm tokenize (default: the built-in model's)
    """

    static func tokenize(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(tokenizeHelp + "\n"); return }
        var a = try Arguments(raw, switches: ["bos", "no-special"], values: ["tokenizer"])
        let dir = a.string("tokenizer")
        let bos = a.flag("bos")
        let noSpecial = a.flag("no-special")
        try a.finish()
        let tokenizer = try load(dir)
        let data = FileHandle.standardInput.readDataToEndOfFile()
        guard let text = String(data: data, encoding: .utf8) else { throw UsageError("stdin is not valid UTF-8") }
        let ids = tokenizer.encode(text, addBOS: bos, allowSpecialTokens: !noSpecial)
        writeStdout(ids.map(String.init).joined(separator: "\n") + (ids.isEmpty ? "" : "\n"))
    }

    static func detokenize(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(detokenizeHelp + "\n"); return }
        var a = try Arguments(raw, switches: [], values: ["tokenizer"])
        let dir = a.string("tokenizer")
        try a.finish()
        let tokenizer = try load(dir)
        let data = FileHandle.standardInput.readDataToEndOfFile()
        let text = String(decoding: data, as: UTF8.self)
        var ids: [Int] = []
        for (n, part) in text.split(whereSeparator: { $0.isWhitespace || $0 == "," }).enumerated() {
            guard let id = Int(part), id >= 0, id < tokenizer.vocabularySize else {
                throw UsageError("stdin item \(n + 1): '\(part)' is not a token id of this tokenizer (0..<\(tokenizer.vocabularySize))")
            }
            ids.append(id)
        }
        writeStdout(tokenizer.decode(ids))
    }

    /// The tokenizer in `path`, or the built-in model's (as `generate` and `eval` default to it).
    static func load(_ path: String?) throws -> any TextTokenizer {
        guard let path else { return try DefaultModel.tokenizer() }
        return try TokenizerLoader.load(directory: URL(fileURLWithPath: path))
    }
}
