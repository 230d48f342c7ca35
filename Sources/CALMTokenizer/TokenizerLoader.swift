import Foundation

/// Loads the tokenizer in a model directory.
///
/// Picks `tokenizer.json` (Hugging Face) when present, else `tokenizer.model` (tiktoken) with
/// `tokenizer_config.json`.
///
/// ```swift
/// let tokenizer = try TokenizerLoader.load(directory: URL(fileURLWithPath: "llama3"), addPadToken: true)
/// tokenizer.vocabularySize // 128257
/// tokenizer.padTokenID     // 128256 ("[PAD]", as the CALM training scripts add it)
/// ```
public enum TokenizerLoader {
    /// The one tokenizer discovery of the package (CLI, engine, built-in model): the folder given
    /// explicitly, else the model folder when it holds `tokenizer.json` or `tokenizer.model`, else nil.
    public static func discover(explicit: URL? = nil, modelDirectory: URL) throws -> (any TextTokenizer)? {
        if let explicit { return try load(directory: explicit) }
        let fm = FileManager.default
        if fm.fileExists(atPath: modelDirectory.appendingPathComponent("tokenizer.json").path)
            || fm.fileExists(atPath: modelDirectory.appendingPathComponent("tokenizer.model").path) {
            return try load(directory: modelDirectory)
        }
        return nil
    }

    /// Loads the tokenizer in `directory`.
    ///
    /// - Parameter addPadToken: when the tokenizer has no pad token, add `"[PAD]"` as a special
    ///   token with id `vocabularySize` (what the CALM training scripts do).
    public static func load(directory: URL, addPadToken: Bool = false) throws -> any TextTokenizer {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TokenizerError.fileNotFound(path: directory.path)
        }
        let json = directory.appendingPathComponent("tokenizer.json")
        let model = directory.appendingPathComponent("tokenizer.model")
        let tokenizer: any TextTokenizer
        if fileManager.fileExists(atPath: json.path) {
            tokenizer = try HuggingFaceBPETokenizer(directory: directory)
        } else if fileManager.fileExists(atPath: model.path) {
            tokenizer = try TiktokenTokenizer(directory: directory)
        } else {
            throw TokenizerError.noTokenizerFiles(directory: directory.path)
        }
        return addPadToken ? tokenizer.addingPadTokenIfMissing() : tokenizer
    }
}
