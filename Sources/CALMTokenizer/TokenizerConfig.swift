import Foundation

/// The parts of a Hugging Face `tokenizer_config.json` the tokenizers use.
///
/// ```swift
/// let config = try TokenizerConfig(contentsOf: dir.appendingPathComponent("tokenizer_config.json"))
/// config.bosToken // "<|begin_of_text|>"
/// ```
public struct TokenizerConfig: Sendable, Equatable {
    /// `added_tokens_decoder`, sorted by id.
    public var addedTokens: [AddedToken]
    /// `bos_token` text (a string or an `{"content": …}` object).
    public var bosToken: String?
    /// `eos_token` text.
    public var eosToken: String?
    /// `pad_token` text.
    public var padToken: String?
    /// `add_bos_token`, when present.
    public var addBOSToken: Bool?

    /// Creates a config from its parts.
    public init(addedTokens: [AddedToken] = [], bosToken: String? = nil, eosToken: String? = nil,
                padToken: String? = nil, addBOSToken: Bool? = nil) {
        self.addedTokens = addedTokens
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.padToken = padToken
        self.addBOSToken = addBOSToken
    }

    /// Reads and parses a `tokenizer_config.json` file.
    public init(contentsOf url: URL) throws {
        let object = try JSONFile.readObject(url)
        try self.init(json: object, path: url.path)
    }

    /// Parses a decoded `tokenizer_config.json` object; `path` names the file in errors.
    init(json: [String: Any], path: String) throws {
        var tokens: [AddedToken] = []
        if let decoder = json["added_tokens_decoder"] {
            guard let decoder = decoder as? [String: Any] else {
                throw TokenizerError.invalidValue(path: path, key: "added_tokens_decoder", reason: "not an object")
            }
            for (key, value) in decoder {
                let fullKey = "added_tokens_decoder.\(key)"
                guard let id = Int(key), id >= 0, id < TokenizerSupport.idLimit else {
                    throw TokenizerError.invalidValue(path: path, key: fullKey, reason: "id is not an integer in 0..<2^24")
                }
                guard let entry = value as? [String: Any] else {
                    throw TokenizerError.invalidValue(path: path, key: fullKey, reason: "not an object")
                }
                tokens.append(try JSONFile.addedToken(entry, id: id, path: path, key: fullKey))
            }
        }
        addedTokens = tokens.sorted { $0.id < $1.id }
        bosToken = try Self.tokenText(json, "bos_token", path: path)
        eosToken = try Self.tokenText(json, "eos_token", path: path)
        padToken = try Self.tokenText(json, "pad_token", path: path)
        if let value = json["add_bos_token"], !(value is NSNull) {
            guard let flag = JSONFile.bool(value) else {
                throw TokenizerError.invalidValue(path: path, key: "add_bos_token", reason: "not a boolean")
            }
            addBOSToken = flag
        } else {
            addBOSToken = nil
        }
    }

    private static func tokenText(_ json: [String: Any], _ key: String, path: String) throws -> String? {
        guard let value = json[key], !(value is NSNull) else { return nil }
        if let text = value as? String { return text }
        if let object = value as? [String: Any], let text = object["content"] as? String { return text }
        throw TokenizerError.invalidValue(path: path, key: key, reason: "expected a string or {\"content\": …}")
    }
}

/// JSON helpers shared by the config and `tokenizer.json` parsers.
enum JSONFile {
    /// Reads a file and decodes a top-level JSON object.
    static func readObject(_ url: URL) throws -> [String: Any] {
        let data = try read(url)
        let value: Any
        do {
            value = try FastJSON.parse(data)
        } catch {
            throw TokenizerError.invalidJSON(path: url.path, reason: "\(error)")
        }
        guard let object = value as? [String: Any] else {
            throw TokenizerError.invalidJSON(path: url.path, reason: "top level is not an object")
        }
        return object
    }

    /// Reads a file, mapping a missing file to `TokenizerError.fileNotFound`.
    static func read(_ url: URL) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TokenizerError.fileNotFound(path: url.path)
        }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(path: url.path, reason: error.localizedDescription)
        }
    }

    /// A JSON boolean (NSNumber booleans on Linux come through as `Bool`).
    static func bool(_ value: Any) -> Bool? {
        if let flag = value as? Bool { return flag }
        return nil
    }

    /// A JSON integer.
    static func int(_ value: Any) -> Int? {
        if let n = value as? Int { return n }
        if let n = value as? NSNumber { return n.intValue }
        return nil
    }

    /// Parses an added-token object (`content`, `special`, `lstrip`, …).
    static func addedToken(_ entry: [String: Any], id: Int, path: String, key: String) throws -> AddedToken {
        guard let content = entry["content"] as? String else {
            throw TokenizerError.missingKey(path: path, key: "\(key).content")
        }
        func flag(_ name: String, _ fallback: Bool) throws -> Bool {
            guard let value = entry[name], !(value is NSNull) else { return fallback }
            guard let flag = bool(value) else {
                throw TokenizerError.invalidValue(path: path, key: "\(key).\(name)", reason: "not a boolean")
            }
            return flag
        }
        return AddedToken(
            id: id, content: content, special: try flag("special", false),
            lstrip: try flag("lstrip", false), rstrip: try flag("rstrip", false),
            singleWord: try flag("single_word", false), normalized: try flag("normalized", false))
    }
}
