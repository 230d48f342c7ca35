import Foundation

/// Parses a Hugging Face `tokenizer.json` (byte-level BPE only) into a `HuggingFaceBPEDefinition`.
enum HuggingFaceTokenizerParser {
    static func parse(_ url: URL) throws -> HuggingFaceBPEDefinition {
        try parse(JSONFile.readObject(url), path: url.path)
    }

    static func parse(_ json: [String: Any], path: String) throws -> HuggingFaceBPEDefinition {
        func fail(_ key: String, _ reason: String) -> TokenizerError {
            .invalidValue(path: path, key: key, reason: reason)
        }
        guard let modelValue = json["model"] else { throw TokenizerError.missingKey(path: path, key: "model") }
        guard let model = modelValue as? [String: Any] else { throw fail("model", "not an object") }
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : "unknown")
        guard type == "BPE" else { throw TokenizerError.unsupportedModelType(path: path, type: type) }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key] as? String, !value.isEmpty {
                throw TokenizerError.unsupportedComponent(path: path, key: "model.\(key)", type: value)
            }
        }
        if let dropout = model["dropout"], !(dropout is NSNull), (JSONFile.int(dropout) ?? 1) != 0 {
            throw TokenizerError.unsupportedComponent(path: path, key: "model.dropout", type: "\(dropout)")
        }

        // Vocabulary.
        guard let vocabValue = model["vocab"] else { throw TokenizerError.missingKey(path: path, key: "model.vocab") }
        guard let vocab = vocabValue as? [String: Any] else { throw fail("model.vocab", "not an object") }
        var idOf: [String: Int] = [:]
        idOf.reserveCapacity(vocab.count)
        var maxID = -1
        for (token, value) in vocab {
            guard let id = JSONFile.int(value), id >= 0, id < TokenizerSupport.idLimit else {
                throw fail("model.vocab.\(token)", "id is not an integer in 0..<2^24")
            }
            idOf[token] = id
            maxID = max(maxID, id)
        }
        var vocabulary = [[UInt8]?](repeating: nil, count: maxID + 1)
        for (token, id) in idOf {
            if vocabulary[id] != nil {
                throw fail("model.vocab.\(token)", "id \(id) is used by two tokens")
            }
            vocabulary[id] = ByteLevelMapping.decode(token).bytes
        }

        // Merges: "a b" strings or ["a", "b"] pairs.
        var merges: [BPEMerge] = []
        if let mergesValue = model["merges"], !(mergesValue is NSNull) {
            guard let list = mergesValue as? [Any] else { throw fail("model.merges", "not an array") }
            merges.reserveCapacity(list.count)
            for (index, entry) in list.enumerated() {
                let key = "model.merges[\(index)]"
                let left: String, right: String
                if let text = entry as? String {
                    guard let space = text.utf8.firstIndex(of: 0x20),
                          !text.utf8[text.utf8.index(after: space)...].contains(0x20) else {
                        throw fail(key, "expected \"left right\", found '\(text)'")
                    }
                    left = String(text[..<space])
                    right = String(text[text.index(after: space)...])
                } else if let pair = entry as? [Any], pair.count == 2,
                          let a = pair[0] as? String, let b = pair[1] as? String {
                    left = a
                    right = b
                } else {
                    throw fail(key, "expected a string or a pair of strings")
                }
                guard let l = idOf[left] else { throw TokenizerError.unknownToken(path: path, key: key, token: left) }
                guard let r = idOf[right] else { throw TokenizerError.unknownToken(path: path, key: key, token: right) }
                // The merged token is checked when the tokenizer is built (by bytes).
                merges.append(BPEMerge(l, r))
            }
        }

        // Added tokens.
        var addedTokens: [AddedToken] = []
        if let addedValue = json["added_tokens"], !(addedValue is NSNull) {
            guard let list = addedValue as? [Any] else { throw fail("added_tokens", "not an array") }
            for (index, entry) in list.enumerated() {
                let key = "added_tokens[\(index)]"
                guard let object = entry as? [String: Any] else { throw fail(key, "not an object") }
                guard let idValue = object["id"] else { throw TokenizerError.missingKey(path: path, key: "\(key).id") }
                guard let id = JSONFile.int(idValue), id >= 0, id < TokenizerSupport.idLimit else {
                    throw fail("\(key).id", "not an integer in 0..<2^24")
                }
                addedTokens.append(try JSONFile.addedToken(object, id: id, path: path, key: key))
            }
        }

        var definition = HuggingFaceBPEDefinition(
            vocabulary: vocabulary, merges: merges, addedTokens: addedTokens, preTokenizer: [])
        definition.ignoreMerges = (model["ignore_merges"]).flatMap(JSONFile.bool) ?? false
        if let unk = model["unk_token"] as? String { definition.unknownToken = unk }
        definition.normalizers = try normalizers(json["normalizer"], key: "normalizer", path: path)
        definition.preTokenizer = try preTokenizer(json["pre_tokenizer"], key: "pre_tokenizer", path: path)
        guard definition.preTokenizer.contains(where: {
            if case .byteLevel = $0 { return true } else { return false }
        }) else {
            throw TokenizerError.unsupportedComponent(
                path: path, key: "pre_tokenizer", type: "no ByteLevel step (only byte-level BPE is supported)")
        }
        let template = try postProcessor(json["post_processor"], key: "post_processor", path: path)
        definition.templatePrefix = template.prefix
        definition.templateSuffix = template.suffix
        try checkDecoder(json["decoder"], key: "decoder", path: path)
        return definition
    }

    private static func isNull(_ value: Any?) -> Bool { value == nil || value is NSNull }

    private static func object(_ value: Any, key: String, path: String) throws -> (type: String, object: [String: Any]) {
        guard let object = value as? [String: Any] else {
            throw TokenizerError.invalidValue(path: path, key: key, reason: "not an object")
        }
        guard let type = object["type"] as? String else {
            throw TokenizerError.missingKey(path: path, key: "\(key).type")
        }
        return (type, object)
    }

    static func normalizers(_ value: Any?, key: String, path: String) throws -> [UnicodeNormalization] {
        guard !isNull(value) else { return [] }
        let (type, object) = try Self.object(value!, key: key, path: path)
        if let form = UnicodeNormalization(rawValue: type) { return [form] }
        if type == "Sequence" {
            guard let list = object["normalizers"] as? [Any] else {
                throw TokenizerError.missingKey(path: path, key: "\(key).normalizers")
            }
            return try list.enumerated().flatMap { try normalizers($1, key: "\(key).normalizers[\($0)]", path: path) }
        }
        throw TokenizerError.unsupportedComponent(path: path, key: key, type: type)
    }

    static func preTokenizer(_ value: Any?, key: String, path: String) throws -> [PreTokenizerStep] {
        guard !isNull(value) else { return [] }
        let (type, object) = try Self.object(value!, key: key, path: path)
        switch type {
        case "Sequence":
            guard let list = object["pretokenizers"] as? [Any] else {
                throw TokenizerError.missingKey(path: path, key: "\(key).pretokenizers")
            }
            return try list.enumerated().flatMap {
                try preTokenizer($1, key: "\(key).pretokenizers[\($0)]", path: path)
            }
        case "ByteLevel":
            let addPrefixSpace = object["add_prefix_space"].flatMap(JSONFile.bool) ?? true
            let useRegex = object["use_regex"].flatMap(JSONFile.bool) ?? true
            return [.byteLevel(addPrefixSpace: addPrefixSpace, useRegex: useRegex)]
        case "Split":
            guard let pattern = object["pattern"] as? [String: Any] else {
                throw TokenizerError.missingKey(path: path, key: "\(key).pattern")
            }
            guard let regex = pattern["Regex"] as? String else {
                let literal = pattern["String"] as? String ?? "\(pattern)"
                throw TokenizerError.unsupportedPattern(path: path, pattern: literal)
            }
            guard let scanner = PreTokenizationPattern(regex: regex) else {
                throw TokenizerError.unsupportedPattern(path: path, pattern: regex)
            }
            let behavior = object["behavior"] as? String ?? "Isolated"
            guard behavior == "Isolated" else {
                throw TokenizerError.unsupportedComponent(path: path, key: "\(key).behavior", type: behavior)
            }
            if let invert = object["invert"].flatMap(JSONFile.bool), invert {
                throw TokenizerError.unsupportedComponent(path: path, key: "\(key).invert", type: "true")
            }
            return [.split(scanner)]
        default:
            throw TokenizerError.unsupportedComponent(path: path, key: key, type: type)
        }
    }

    static func postProcessor(_ value: Any?, key: String, path: String) throws -> (prefix: [String], suffix: [String]) {
        guard !isNull(value) else { return ([], []) }
        let (type, object) = try Self.object(value!, key: key, path: path)
        switch type {
        case "ByteLevel":
            return ([], [])
        case "Sequence":
            guard let list = object["processors"] as? [Any] else {
                throw TokenizerError.missingKey(path: path, key: "\(key).processors")
            }
            var prefix: [String] = [], suffix: [String] = []
            for (index, entry) in list.enumerated() {
                let part = try postProcessor(entry, key: "\(key).processors[\(index)]", path: path)
                prefix += part.prefix
                suffix = part.suffix + suffix
            }
            return (prefix, suffix)
        case "TemplateProcessing":
            guard let single = object["single"] as? [Any] else {
                throw TokenizerError.missingKey(path: path, key: "\(key).single")
            }
            var prefix: [String] = [], suffix: [String] = []
            var seenSequence = false
            for (index, item) in single.enumerated() {
                let itemKey = "\(key).single[\(index)]"
                guard let item = item as? [String: Any] else {
                    throw TokenizerError.invalidValue(path: path, key: itemKey, reason: "not an object")
                }
                if item["Sequence"] != nil {
                    seenSequence = true
                } else if let special = item["SpecialToken"] as? [String: Any], let id = special["id"] as? String {
                    if seenSequence { suffix.append(id) } else { prefix.append(id) }
                } else {
                    throw TokenizerError.invalidValue(path: path, key: itemKey, reason: "expected Sequence or SpecialToken")
                }
            }
            return (prefix, suffix)
        case "RobertaProcessing", "BertProcessing":
            func name(_ field: String) throws -> String {
                guard let pair = object[field] as? [Any], let text = pair.first as? String else {
                    throw TokenizerError.missingKey(path: path, key: "\(key).\(field)")
                }
                return text
            }
            return ([try name("cls")], [try name("sep")])
        default:
            throw TokenizerError.unsupportedComponent(path: path, key: key, type: type)
        }
    }

    static func checkDecoder(_ value: Any?, key: String, path: String) throws {
        guard !isNull(value) else { return }
        let (type, object) = try Self.object(value!, key: key, path: path)
        switch type {
        case "ByteLevel":
            return
        case "Sequence":
            for (index, entry) in (object["decoders"] as? [Any] ?? []).enumerated() {
                try checkDecoder(entry, key: "\(key).decoders[\(index)]", path: path)
            }
        default:
            throw TokenizerError.unsupportedComponent(path: path, key: key, type: type)
        }
    }
}
