import Foundation

/// How merges are spelled in a written `tokenizer.json`.
public enum MergesFormat: Sendable {
    /// `"left right"` strings (readable by every `tokenizers` version) when no token contains a
    /// space, else pairs.
    case automatic
    /// `"left right"` strings (older format).
    case strings
    /// `["left", "right"]` arrays (format of `tokenizers` ≥ 0.20).
    case pairs
}

extension HuggingFaceBPEDefinition {
    /// Writes a standard Hugging Face `tokenizer.json`.
    ///
    /// ```swift
    /// try definition.write(to: dir.appendingPathComponent("tokenizer.json"))
    /// let reloaded = try HuggingFaceBPETokenizer(directory: dir)
    /// ```
    public func write(to url: URL, merges format: MergesFormat = .automatic) throws {
        do {
            try jsonData(merges: format).write(to: url, options: .atomic)
        } catch {
            throw TokenizerError.writeFailed(path: url.path, reason: error.localizedDescription)
        }
    }

    /// The `tokenizer.json` text (UTF-8), in the key order `tokenizers` itself writes.
    public func jsonData(merges format: MergesFormat = .automatic) -> Data {
        var w = JSONWriter()
        let strings = vocabulary.map { $0.map(ByteLevelMapping.string(for:)) }
        w.raw("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
        for (index, token) in addedTokens.sorted(by: { $0.id < $1.id }).enumerated() {
            w.raw(index == 0 ? "\n    {" : ",\n    {")
            w.raw("\"id\": \(token.id), \"content\": ")
            w.string(token.content)
            w.raw(", \"single_word\": \(token.singleWord), \"lstrip\": \(token.lstrip), \"rstrip\": \(token.rstrip)")
            w.raw(", \"normalized\": \(token.normalized), \"special\": \(token.special)}")
        }
        w.raw(addedTokens.isEmpty ? "],\n" : "\n  ],\n")

        w.raw("  \"normalizer\": ")
        switch normalizers.count {
        case 0: w.raw("null")
        case 1: w.raw("{\"type\": \"\(normalizers[0].rawValue)\"}")
        default:
            w.raw("{\"type\": \"Sequence\", \"normalizers\": [")
            w.raw(normalizers.map { "{\"type\": \"\($0.rawValue)\"}" }.joined(separator: ", "))
            w.raw("]}")
        }
        w.raw(",\n  \"pre_tokenizer\": ")
        func step(_ step: PreTokenizerStep) {
            switch step {
            case .split(let pattern):
                w.raw("{\"type\": \"Split\", \"pattern\": {\"Regex\": ")
                w.string(pattern.regex)
                w.raw("}, \"behavior\": \"Isolated\", \"invert\": false}")
            case .byteLevel(let addPrefixSpace, let useRegex):
                w.raw("{\"type\": \"ByteLevel\", \"add_prefix_space\": \(addPrefixSpace), \"trim_offsets\": true, ")
                w.raw("\"use_regex\": \(useRegex)}")
            }
        }
        switch preTokenizer.count {
        case 0: w.raw("null")
        case 1: step(preTokenizer[0])
        default:
            w.raw("{\"type\": \"Sequence\", \"pretokenizers\": [")
            for (index, s) in preTokenizer.enumerated() {
                if index > 0 { w.raw(", ") }
                step(s)
            }
            w.raw("]}")
        }

        w.raw(",\n  \"post_processor\": ")
        if templatePrefix.isEmpty && templateSuffix.isEmpty {
            w.raw("{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true}")
        } else {
            func special(_ name: String, _ typeID: Int) {
                w.raw("{\"SpecialToken\": {\"id\": ")
                w.string(name)
                w.raw(", \"type_id\": \(typeID)}}")
            }
            func sequence(_ name: String, _ typeID: Int) {
                w.raw("{\"Sequence\": {\"id\": \"\(name)\", \"type_id\": \(typeID)}}")
            }
            func items(_ list: [(String, Bool, Int)]) {
                w.raw("[")
                for (index, item) in list.enumerated() {
                    if index > 0 { w.raw(", ") }
                    if item.1 { sequence(item.0, item.2) } else { special(item.0, item.2) }
                }
                w.raw("]")
            }
            let single = templatePrefix.map { ($0, false, 0) } + [("A", true, 0)] + templateSuffix.map { ($0, false, 0) }
            let pair = single + templatePrefix.map { ($0, false, 1) } + [("B", true, 1)]
                + templateSuffix.map { ($0, false, 1) }
            w.raw("{\"type\": \"TemplateProcessing\", \"single\": ")
            items(single)
            w.raw(", \"pair\": ")
            items(pair)
            w.raw(", \"special_tokens\": {")
            var seen = Set<String>()
            var first = true
            for name in templatePrefix + templateSuffix where seen.insert(name).inserted {
                let id = addedTokens.first(where: { $0.content == name })?.id
                    ?? strings.firstIndex(where: { $0.map(ByteLevelMapping.bytes(for:)) == Array(name.utf8) })
                    ?? -1
                if !first { w.raw(", ") }
                first = false
                w.string(name)
                w.raw(": {\"id\": ")
                w.string(name)
                w.raw(", \"ids\": [\(id)], \"tokens\": [")
                w.string(name)
                w.raw("]}")
            }
            w.raw("}}")
        }
        w.raw(",\n  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, ")
        w.raw("\"use_regex\": true},\n")

        w.raw("  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ")
        if let unknownToken { w.string(unknownToken) } else { w.raw("null") }
        w.raw(",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n")
        w.raw("    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": \(ignoreMerges),\n")
        w.raw("    \"vocab\": {")
        var firstEntry = true
        for (id, string) in strings.enumerated() {
            guard let string else { continue }
            w.raw(firstEntry ? "\n      " : ",\n      ")
            firstEntry = false
            w.string(string)
            w.raw(": \(id)")
        }
        w.raw(firstEntry ? "},\n" : "\n    },\n")
        let usePairs: Bool
        switch format {
        case .pairs: usePairs = true
        case .strings: usePairs = false
        case .automatic: usePairs = strings.contains { $0?.unicodeScalars.contains(" ") ?? false }
        }
        w.raw("    \"merges\": [")
        for (index, merge) in merges.enumerated() {
            w.raw(index == 0 ? "\n      " : ",\n      ")
            let left = strings.indices.contains(merge.left) ? strings[merge.left] ?? "" : ""
            let right = strings.indices.contains(merge.right) ? strings[merge.right] ?? "" : ""
            if usePairs {
                w.raw("[")
                w.string(left)
                w.raw(", ")
                w.string(right)
                w.raw("]")
            } else {
                w.string(left + " " + right)
            }
        }
        w.raw(merges.isEmpty ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n")
        return Data(w.bytes)
    }
}

/// Minimal JSON text builder.
struct JSONWriter {
    var bytes: [UInt8] = []

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    /// Appends a JSON string literal.
    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
