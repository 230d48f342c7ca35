import CALMTokenizer
import Foundation

/// Errors reading an evaluation corpus or building its blocks; each names the file (and line).
public enum CorpusError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// The file can't be read.
    case unreadable(file: String, reason: String)
    /// A JSON-lines record is malformed.
    case invalidLine(file: String, line: Int, reason: String)
    /// The file holds no documents.
    case empty(file: String)
    /// The corpus is too short for one block.
    case tooShort(file: String, tokens: Int, blockSize: Int)
    /// A block-building parameter is unusable.
    case invalidParameter(name: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .invalidLine(file, line, reason): return "\(file):\(line): \(reason)"
        case let .empty(file): return "\(file): no documents"
        case let .tooShort(file, tokens, blockSize):
            return "\(file): \(tokens) tokens is less than one block of \(blockSize); use a smaller --block-size"
        case let .invalidParameter(name, reason): return "parameter '\(name)': \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// How a corpus file is laid out.
public enum CorpusFormat: String, Sendable, CaseIterable {
    /// JSON Lines, one `{"text": …}` object per line (blank lines skipped), like the reference's
    /// `wikitext_document_level-test.json`.
    case jsonLines = "jsonl"
    /// Plain UTF-8 text: the whole file is one document.
    case plainText = "text"

    /// `.jsonl`/`.json` files, or files whose first non-blank character is `{`, are JSON Lines;
    /// anything else is plain text.
    public static func detect(_ url: URL, data: Data) -> CorpusFormat {
        let ext = url.pathExtension.lowercased()
        if ext == "jsonl" || ext == "json" { return .jsonLines }
        if let first = data.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }), first == UInt8(ascii: "{") {
            return .jsonLines
        }
        return .plainText
    }
}

/// Reading evaluation documents.
public enum EvaluationCorpus {
    /// The documents of `url`, in file order.
    public static func readDocuments(_ url: URL, format: CorpusFormat? = nil) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CorpusError.unreadable(file: url.path, reason: FileManager.default.fileExists(atPath: url.path) ? error.localizedDescription : "no such file")
        }
        let documents: [String]
        switch format ?? CorpusFormat.detect(url, data: data) {
        case .plainText:
            guard let text = String(data: data, encoding: .utf8) else {
                throw CorpusError.unreadable(file: url.path, reason: "not valid UTF-8")
            }
            documents = text.isEmpty ? [] : [text]
        case .jsonLines:
            documents = try jsonLines(data, file: url.path)
        }
        guard !documents.isEmpty else { throw CorpusError.empty(file: url.path) }
        return documents
    }

    /// Parses JSON Lines `{"text": …}` records.
    public static func jsonLines(_ data: Data, file: String) throws -> [String] {
        var documents: [String] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed]) } catch {
                throw CorpusError.invalidLine(file: file, line: lineNumber, reason: "not valid JSON")
            }
            guard let record = object as? [String: Any] else {
                throw CorpusError.invalidLine(file: file, line: lineNumber, reason: "expected a JSON object with a \"text\" string")
            }
            guard let value = record["text"] else {
                throw CorpusError.invalidLine(file: file, line: lineNumber, reason: "no \"text\" key")
            }
            guard let text = value as? String else {
                throw CorpusError.invalidLine(file: file, line: lineNumber, reason: "\"text\" is not a string")
            }
            documents.append(text)
        }
        return documents
    }
}

/// The reference's evaluation stream cut into blocks: every document becomes
/// `[BOS] + BPE(text)` (no EOS), the documents are concatenated in file order, and the stream is
/// cut into consecutive blocks of `blockSize` ids; the remainder is dropped (WikiText test with
/// the Llama 3 tokenizer: 289,145 ids → 35 blocks of 8192, 2,425 dropped).
public struct TokenBlocks: Sendable, Equatable {
    public var blocks: [[Int]]
    public var blockSize: Int
    /// Ids in the concatenated stream.
    public var totalIDs: Int
    /// Trailing ids that did not fill a block.
    public var droppedIDs: Int
    /// Documents read.
    public var documents: Int

    /// Cuts an id stream into blocks.
    public init(stream: [Int], blockSize: Int, documents: Int = 1, maxBlocks: Int? = nil) throws {
        guard blockSize >= 2 else { throw CorpusError.invalidParameter(name: "blockSize", reason: "must be at least 2, got \(blockSize)") }
        if let maxBlocks, maxBlocks < 1 { throw CorpusError.invalidParameter(name: "maxBlocks", reason: "must be at least 1, got \(maxBlocks)") }
        self.blockSize = blockSize
        self.totalIDs = stream.count
        self.documents = documents
        let count = stream.count / blockSize
        droppedIDs = stream.count - count * blockSize
        blocks = (0..<min(count, maxBlocks ?? count)).map { Array(stream[($0 * blockSize)..<(($0 + 1) * blockSize)]) }
    }

    /// Tokenises documents as the reference does (BOS + BPE, concatenated) and cuts blocks.
    /// `mapID` rewrites every id (for `--fold-ids-into-vocab`); identity by default.
    public static func tokenize(_ documents: [String], tokenizer: any TextTokenizer, blockSize: Int,
                                maxBlocks: Int? = nil, mapID: ((Int) -> Int)? = nil) throws -> TokenBlocks {
        guard let bos = tokenizer.bosTokenID else {
            throw CorpusError.invalidParameter(name: "tokenizer", reason: "the tokenizer has no BOS token; the protocol prepends BOS to every document")
        }
        var stream: [Int] = []
        for document in documents {
            stream.append(bos)
            stream += tokenizer.encode(document, addBOS: false, allowSpecialTokens: true)
        }
        if let mapID { stream = stream.map(mapID) }
        return try TokenBlocks(stream: stream, blockSize: blockSize, documents: documents.count, maxBlocks: maxBlocks)
    }
}
