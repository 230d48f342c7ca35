import Foundation

/// Errors thrown while loading or writing tokenizer files. Each case names the file and the
/// line or key at fault.
///
/// ```swift
/// do { _ = try TokenizerLoader.load(directory: url) }
/// catch let error as TokenizerError { print(error) } // e.g. "tokenizer.model line 7: invalid base64 'ab$'"
/// ```
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required file does not exist.
    case fileNotFound(path: String)
    /// The directory holds neither `tokenizer.json` nor `tokenizer.model`.
    case noTokenizerFiles(directory: String)
    /// A file could not be read.
    case unreadable(path: String, reason: String)
    /// A tiktoken line is not "base64 rank".
    case malformedLine(path: String, line: Int, text: String)
    /// The base64 token on a tiktoken line does not decode.
    case invalidBase64(path: String, line: Int, text: String)
    /// The rank on a tiktoken line is not a non-negative integer below 2^24.
    case invalidRank(path: String, line: Int, text: String)
    /// A tiktoken rank far beyond the file's size (ranks may have holes, but the table is
    /// allocated up to the largest rank).
    case rankOutOfRange(path: String, line: Int, rank: Int, limit: Int)
    /// Two tiktoken lines have the same rank.
    case duplicateRank(path: String, line: Int, rank: Int)
    /// A token's bytes (or a vocabulary string) occur twice.
    case duplicateToken(path: String, line: Int, token: String)
    /// A file is not valid JSON or its top level is not an object.
    case invalidJSON(path: String, reason: String)
    /// A required JSON key is missing.
    case missingKey(path: String, key: String)
    /// A JSON key holds a value of the wrong type or an impossible value.
    case invalidValue(path: String, key: String, reason: String)
    /// The tokenizer model type is not supported (only byte-level BPE is).
    case unsupportedModelType(path: String, type: String)
    /// A pre-tokenizer split regex for which no scanner exists.
    case unsupportedPattern(path: String, pattern: String)
    /// A component (normalizer, pre-tokenizer, post-processor, decoder) type is not supported.
    case unsupportedComponent(path: String, key: String, type: String)
    /// A merge or special-token reference names a token missing from the vocabulary.
    case unknownToken(path: String, key: String, token: String)
    /// Writing a file failed.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "\(path): file not found"
        case .noTokenizerFiles(let directory):
            return "\(directory): no tokenizer.json or tokenizer.model found"
        case .unreadable(let path, let reason): return "\(path): cannot read (\(reason))"
        case .malformedLine(let path, let line, let text):
            return "\(path) line \(line): expected \"base64 rank\", found '\(text)'"
        case .invalidBase64(let path, let line, let text):
            return "\(path) line \(line): invalid base64 '\(text)'"
        case .invalidRank(let path, let line, let text):
            return "\(path) line \(line): invalid rank '\(text)'"
        case .rankOutOfRange(let path, let line, let rank, let limit):
            return "\(path) line \(line): rank \(rank) is beyond what a file of this size can hold (ranks must be below \(limit))"
        case .duplicateRank(let path, let line, let rank):
            return "\(path) line \(line): duplicate rank \(rank)"
        case .duplicateToken(let path, let line, let token):
            return "\(path) line \(line): duplicate token '\(token)'"
        case .invalidJSON(let path, let reason): return "\(path): invalid JSON (\(reason))"
        case .missingKey(let path, let key): return "\(path): missing key '\(key)'"
        case .invalidValue(let path, let key, let reason):
            return "\(path): invalid value for '\(key)' (\(reason))"
        case .unsupportedModelType(let path, let type):
            return "\(path): unsupported tokenizer model type '\(type)' (only byte-level BPE is supported)"
        case .unsupportedPattern(let path, let pattern):
            return "\(path): unsupported pre-tokenizer pattern '\(pattern)'"
        case .unsupportedComponent(let path, let key, let type):
            return "\(path): unsupported \(key) type '\(type)'"
        case .unknownToken(let path, let key, let token):
            return "\(path): '\(key)' refers to unknown token '\(token)'"
        case .writeFailed(let path, let reason): return "\(path): write failed (\(reason))"
        }
    }
}
