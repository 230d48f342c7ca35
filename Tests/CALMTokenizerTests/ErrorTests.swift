import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

@Suite("Tokenizer errors")
struct ErrorTests {
    /// Writes `files` into a fresh directory.
    func directory(_ files: [String: String]) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("calm-tokenizer-errors")
        for (name, text) in files {
            try Data(text.utf8).write(to: directory.url.appendingPathComponent(name))
        }
        return directory
    }

    func loadError(_ files: [String: String]) throws -> (TokenizerError?, String) {
        let dir = try directory(files)
        do {
            _ = try TokenizerLoader.load(directory: dir.url)
            return (nil, dir.url.path)
        } catch let error as TokenizerError {
            return (error, dir.url.path)
        }
    }

    static let config = #"{"added_tokens_decoder": {"3": {"content": "<s>", "special": true}}, "bos_token": "<s>"}"#

    @Test func missingDirectoryAndFiles() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/calm-tokenizer")
        #expect(throws: TokenizerError.fileNotFound(path: missing.path)) {
            try TokenizerLoader.load(directory: missing)
        }
        let (error, path) = try loadError(["README.md": "hi"])
        #expect(error == .noTokenizerFiles(directory: path))
        #expect(error?.description.contains("no tokenizer.json or tokenizer.model") == true)
    }

    @Test func validTinyTiktokenFile() throws {
        let dir = try directory(["tokenizer.model": "YQ== 0\nYg== 1\r\nYWI= 2\n\n", "tokenizer_config.json": Self.config])
        let tokenizer = try TokenizerLoader.load(directory: dir.url)
        #expect(tokenizer.vocabularySize == 4)
        #expect(tokenizer.bosTokenID == 3)
        #expect(tokenizer.encode("abba") == [3, 2, 1, 0])
    }

    @Test func tiktokenLineErrors() throws {
        func error(_ model: String) throws -> TokenizerError? {
            let (error, path) = try loadError(["tokenizer.model": model, "tokenizer_config.json": Self.config])
            let file = path + "/tokenizer.model"
            #expect(error?.description.hasPrefix(file) == true, "\(String(describing: error))")
            return error.map { e in
                // Strip the temporary path so cases compare by line and text.
                switch e {
                case .invalidBase64(_, let line, let text): return .invalidBase64(path: "", line: line, text: text)
                case .invalidRank(_, let line, let text): return .invalidRank(path: "", line: line, text: text)
                case .duplicateRank(_, let line, let rank): return .duplicateRank(path: "", line: line, rank: rank)
                case .rankOutOfRange(_, let line, let rank, let limit): return .rankOutOfRange(path: "", line: line, rank: rank, limit: limit)
                case .duplicateToken(_, let line, let token): return .duplicateToken(path: "", line: line, token: token)
                case .malformedLine(_, let line, let text): return .malformedLine(path: "", line: line, text: text)
                default: return e
                }
            }
        }
        #expect(try error("YQ== 0\nY$== 1\n") == .invalidBase64(path: "", line: 2, text: "Y$=="))
        #expect(try error("YQ== 0\nYg= 1\n") == .invalidBase64(path: "", line: 2, text: "Yg="))
        #expect(try error("YQ== 0\nYg== 1x\n") == .invalidRank(path: "", line: 2, text: "1x"))
        #expect(try error("YQ== 0\nYg== -1\n") == .invalidRank(path: "", line: 2, text: "-1"))
        #expect(try error("YQ== 0\nYg== 99999999999\n") == .invalidRank(path: "", line: 2, text: "99999999999"))
        #expect(try error("YQ== 0\nYg== 1\nYWI= 1\n") == .duplicateRank(path: "", line: 3, rank: 1))
        // holes are fine, a rank no file of this size can need is refused before any allocation
        #expect(try loadError(["tokenizer.model": "YQ== 0\nYg== 65535\n", "tokenizer_config.json": Self.config]).0 == nil)
        #expect(try error("YQ== 0\nYg== 16777215\n") == .rankOutOfRange(path: "", line: 2, rank: 16_777_215, limit: 65_536))
        #expect(try error("YQ== 0\nYg== 1\nYQ== 2\n") == .duplicateToken(path: "", line: 3, token: "a"))
        #expect(try error("YQ== 0\nYg==\n") == .malformedLine(path: "", line: 2, text: "Yg=="))
    }

    @Test func binaryModelFileIsRejected() throws {
        let (error, path) = try loadError(["tokenizer.model": "\u{0A}\u{05}hello"])
        #expect(error == .unsupportedModelType(
            path: path + "/tokenizer.model", type: "binary (SentencePiece protobuf?), not tiktoken text"))
    }

    @Test func configErrors() throws {
        let (error, path) = try loadError([
            "tokenizer.model": "YQ== 0\n", "tokenizer_config.json": #"{"bos_token": "<nope>"}"#])
        #expect(error == .unknownToken(path: path + "/tokenizer_config.json", key: "bos_token", token: "<nope>"))
        let (bad, badPath) = try loadError(["tokenizer.model": "YQ== 0\n", "tokenizer_config.json": "{not json"])
        if case .invalidJSON(let file, _) = bad {
            #expect(file == badPath + "/tokenizer_config.json")
        } else {
            Issue.record("expected invalidJSON, got \(String(describing: bad))")
        }
        let (type, typePath) = try loadError(["tokenizer.model": "YQ== 0\n", "tokenizer_config.json": #"{"added_tokens_decoder": {"x": {}}}"#])
        #expect(type == .invalidValue(path: typePath + "/tokenizer_config.json", key: "added_tokens_decoder.x",
                                      reason: "id is not an integer in 0..<2^24"))
    }

    static func hfJSON(model: String = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#,
                       preTokenizer: String = #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#) -> String {
        #"{"added_tokens": [], "normalizer": null, "pre_tokenizer": \#(preTokenizer), "post_processor": null, "decoder": null, "model": \#(model)}"#
    }

    @Test func huggingFaceErrors() throws {
        func error(_ json: String) throws -> (TokenizerError?, String) {
            let (error, path) = try loadError(["tokenizer.json": json])
            return (error, path + "/tokenizer.json")
        }
        var (e, file) = try error(Self.hfJSON())
        #expect(e == nil)
        (e, file) = try error(Self.hfJSON(model: #"{"type": "WordPiece", "vocab": {"a": 0}}"#))
        #expect(e == .unsupportedModelType(path: file, type: "WordPiece"))
        #expect(e?.description.contains("WordPiece") == true)
        (e, file) = try error(Self.hfJSON(model: #"{"type": "Unigram", "vocab": []}"#))
        #expect(e == .unsupportedModelType(path: file, type: "Unigram"))
        let split = #"{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}"#
        (e, file) = try error(Self.hfJSON(preTokenizer: #"{"type": "Sequence", "pretokenizers": [\#(split), {"type": "ByteLevel", "use_regex": false}]}"#))
        #expect(e == .unsupportedPattern(path: file, pattern: #"\w+"#))
        (e, file) = try error(Self.hfJSON(preTokenizer: #"{"type": "Metaspace", "replacement": "▁"}"#))
        #expect(e == .unsupportedComponent(path: file, key: "pre_tokenizer", type: "Metaspace"))
        (e, file) = try error(Self.hfJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}"#))
        #expect(e == .unknownToken(path: file, key: "model.merges[0]", token: "ab"))
        (e, file) = try error(Self.hfJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "c"]]}"#))
        #expect(e == .unknownToken(path: file, key: "model.merges[0]", token: "c"))
        (e, file) = try error(Self.hfJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [3]}"#))
        #expect(e == .invalidValue(path: file, key: "model.merges[0]", reason: "expected a string or a pair of strings"))
        (e, file) = try error(Self.hfJSON(model: #"{"type": "BPE", "vocab": {"a": "zero"}, "merges": []}"#))
        #expect(e == .invalidValue(path: file, key: "model.vocab.a", reason: "id is not an integer in 0..<2^24"))
        (e, file) = try error(#"{"added_tokens": []}"#)
        #expect(e == .missingKey(path: file, key: "model"))
        (e, file) = try error("[1, 2]")
        #expect(e == .invalidJSON(path: file, reason: "top level is not an object"))
    }

    /// Ids are below 2^24 everywhere (as tiktoken ranks already were). Found while writing the fuzz
    /// harnesses (Fuzz/…/tokenizer-json, tokenizer-config; the inputs below): a vocabulary id of
    /// 2^30 − 1 made an 85-byte tokenizer.json allocate an 8 GiB table, and an added token at
    /// Int.max in tokenizer_config.json made `vocabularySize` (largest id + 1) overflow, a trap.
    @Test func hugeTokenIDsAreTypedErrors() throws {
        var (e, path) = try loadError(["tokenizer.json": #"{"model":{"vocab":{"a":1073741823},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}"#])
        #expect(e == .invalidValue(path: path + "/tokenizer.json", key: "model.vocab.a", reason: "id is not an integer in 0..<2^24"))
        (e, path) = try loadError(["tokenizer.json": Self.hfJSON().replacingOccurrences(
            of: #""added_tokens": []"#, with: #""added_tokens": [{"id": 16777216, "content": "<x>"}]"#)])
        #expect(e == .invalidValue(path: path + "/tokenizer.json", key: "added_tokens[0].id", reason: "not an integer in 0..<2^24"))
        let intMax = #"{"added_tokens_decoder":{"9223372036854775807":{"content":"x"}}}"#
        for model in [["tokenizer.model": "YQ== 0\n"], ["tokenizer.json": Self.hfJSON()]] {
            (e, path) = try loadError(model.merging(["tokenizer_config.json": intMax]) { a, _ in a })
            #expect(e == .invalidValue(path: path + "/tokenizer_config.json", key: "added_tokens_decoder.9223372036854775807",
                                       reason: "id is not an integer in 0..<2^24"))
            // The largest id allowed loads, and the vocabulary ends right after it.
            let dir = try directory(model.merging(["tokenizer_config.json": #"{"added_tokens_decoder":{"16777215":{"content":"x"}}}"#]) { a, _ in a })
            let tokenizer = try TokenizerLoader.load(directory: dir.url, addPadToken: true)
            #expect(tokenizer.encode("x", addBOS: false, allowSpecialTokens: true) == [16_777_215])
            #expect(tokenizer.vocabularySize == 16_777_217 && tokenizer.padTokenID == 16_777_216)
        }
        // Built in code rather than read: the same limit, as a typed error.
        let config = TokenizerConfig(addedTokens: [AddedToken(id: .max, content: "x")])
        let dir = try directory(["tokenizer.model": "YQ== 0\n"])
        #expect(throws: TokenizerError.self) {
            try TiktokenTokenizer(modelFile: dir.url.appendingPathComponent("tokenizer.model"), config: config)
        }
        #expect(throws: TokenizerError.self) {
            try HuggingFaceBPETokenizer(definition: HuggingFaceBPEDefinition(vocabulary: [[97]], merges: []), config: config)
        }
    }

    @Test func mergesArrayFormIsAccepted() throws {
        let dir = try directory(["tokenizer.json": Self.hfJSON(
            model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}"#)])
        let tokenizer = try TokenizerLoader.load(directory: dir.url)
        #expect(tokenizer.encode("abab", addBOS: false, allowSpecialTokens: true) == [2, 2])
    }
}

@Suite("JSON reading")
struct JSONReadingTests {
    @Test func escapesAndErrorsInConfig() throws {
        let directory = try TemporaryDirectory("calm-json")
        let url = directory.url.appendingPathComponent("tokenizer_config.json")
        let text = #"""
        {"added_tokens_decoder": {"5": {"content": "<\"q\u00e9\ud83d\ude00\/\n>", "special": true, "lstrip": false}},
         "bos_token": {"content": "<\"q\u00e9\ud83d\ude00/\n>", "lstrip": false}, "eos_token": null,
         "model_max_length": 1000000000000000019884624838656, "x": [-1.5e3, 0, true, false, null, {}, []]}
        """#
        try Data(text.utf8).write(to: url)
        let config = try TokenizerConfig(contentsOf: url)
        #expect(config.addedTokens == [AddedToken(id: 5, content: "<\"qé😀/\n>")])
        #expect(config.bosToken == "<\"qé😀/\n>")
        #expect(config.eosToken == nil)

        try Data("{\n  \"bos_token\": \"a\",\n  \"eos_token\": tru\n}".utf8).write(to: url)
        #expect(throws: TokenizerError.invalidJSON(path: url.path, reason: "line 3, column 16: invalid literal")) {
            try TokenizerConfig(contentsOf: url)
        }
        try Data("{\"a\": \"unterminated}".utf8).write(to: url)
        #expect(throws: TokenizerError.invalidJSON(path: url.path, reason: "line 1, column 21: unterminated string")) {
            try TokenizerConfig(contentsOf: url)
        }
        try Data("{\"bos_token\": 3}".utf8).write(to: url)
        #expect(throws: TokenizerError.invalidValue(path: url.path, key: "bos_token",
                                                    reason: "expected a string or {\"content\": …}")) {
            try TokenizerConfig(contentsOf: url)
        }
    }
}
