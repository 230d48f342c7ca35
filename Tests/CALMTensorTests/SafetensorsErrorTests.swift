import CALMTestSupport
import Foundation
import Testing
@testable import CALMTensor

/// Hand-made broken safetensors files: every one must give the right `CheckpointError`, naming the
/// file and the key or offset at fault, and never crash.
@Suite struct SafetensorsErrorTests {
    let tmp: TemporaryDirectory
    let url: URL
    var path: String { url.path }

    init() throws {
        tmp = try TemporaryDirectory()
        url = tmp.url.appendingPathComponent("model.safetensors")
    }

    func file(header: String, data: [UInt8] = [], length: UInt64? = nil) throws {
        let h = Array(header.utf8)
        var bytes = withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { Array($0) }
        bytes += h
        bytes += data
        try writeBytes(bytes, to: url)
    }

    func open() -> CheckpointError? { expectCheckpointError { _ = try SafetensorsFile(url: url) } }

    @Test func emptyAndShortFiles() throws {
        try writeBytes([], to: url)
        #expect(open() == .truncated(file: path, detail: "0 bytes, too short for the 8-byte header length"))
        try writeBytes([1, 0, 0], to: url)
        #expect(open() == .truncated(file: path, detail: "3 bytes, too short for the 8-byte header length"))
        #expect(open()?.description.hasPrefix(path + ": file is truncated") == true)
    }

    @Test func headerLengthOutOfRange() throws {
        try file(header: "{}", length: 1 << 40)
        #expect(open() == .malformedHeader(file: path, detail: "header length 1099511627776 exceeds the limit of 100000000 bytes"))
        try file(header: "{}", length: 100)
        #expect(open() == .truncated(file: path, detail: "header length 100 exceeds the 2 bytes after the length prefix"))
        try file(header: "{}", length: UInt64.max)
        if case .malformedHeader = open() {} else { Issue.record("u64 max header length") }
    }

    @Test func garbledJSON() throws {
        for header in ["{\"a\": ", "{\"a\" 1}", "nonsense", "{\"a\":{\"dtype\":\"F32\",}}", "{\"a\":1}{}", "{'a':1}", "", "{\"a\":\"\u{1}\"}"] {
            try file(header: header)
            let error = open()
            guard case .malformedHeader(let f, let detail) = error else { Issue.record("\(header): \(String(describing: error))"); continue }
            #expect(f == path)
            #expect(detail.contains("not valid JSON"), "\(detail)")
        }
        try file(header: "[1, 2]")
        #expect(open() == .malformedHeader(file: path, detail: "header is an array, not a JSON object"))
        try file(header: #"{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
                 data: [0, 0, 0, 0])
        #expect(open()?.description.contains("duplicate key 'x'") == true)
    }

    @Test func unknownDType() throws {
        try file(header: #"{"x.weight": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}"#, data: [0, 0])
        #expect(open() == .unsupportedDType(file: path, key: "x.weight", dtype: "F8_E4M3"))
        #expect(open()?.description == "\(path): tensor 'x.weight' has unsupported dtype 'F8_E4M3'")
        try file(header: #"{"x.weight": {"shape": [2], "data_offsets": [0, 2]}}"#, data: [0, 0])
        #expect(open() == .malformedHeader(file: path, detail: "tensor 'x.weight': missing or non-string 'dtype'"))
    }

    @Test func offsetsOutOfBounds() throws {
        try file(header: #"{"x.weight": {"dtype": "F32", "shape": [17], "data_offsets": [12, 80]}}"#, data: Array(repeating: 0, count: 64))
        let error = open()
        #expect(error == .outOfBounds(file: path, key: "x.weight", detail: "data_offsets [12, 80] exceed the data section (64 bytes)"))
        #expect(error?.description == "\(path): tensor 'x.weight' data_offsets [12, 80] exceed the data section (64 bytes)")
        try file(header: #"{"x": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}"#, data: Array(repeating: 0, count: 8))
        #expect(open() == .malformedHeader(file: path, detail: "tensor 'x' data_offsets [8, 4] are reversed"))
        for offsets in ["[0]", "[0, 4, 8]", "[-4, 0]", "[0, 4.0]", "\"0,4\"", "[0, 99999999999999999999999]"] {
            try file(header: #"{"x": {"dtype": "F32", "shape": [1], "data_offsets": \#(offsets)}}"#, data: Array(repeating: 0, count: 8))
            #expect(open() == .malformedHeader(file: path, detail: "tensor 'x': 'data_offsets' must be [begin, end] with non-negative integers"), "\(offsets)")
        }
    }

    @Test func sizeDoesNotMatchShape() throws {
        try file(header: #"{"x.weight": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}}"#, data: Array(repeating: 0, count: 16))
        #expect(open() == .malformedHeader(
            file: path, detail: "tensor 'x.weight' data_offsets [0, 8] hold 8 bytes but shape [2, 3] of BF16 needs 12"))
        for shape in ["[-1]", "[1.5]", "\"2\"", "[true]", "7"] {
            try file(header: #"{"x": {"dtype": "F32", "shape": \#(shape), "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
            let error = open()
            guard case .malformedHeader(_, let detail) = error else { Issue.record("\(shape): \(String(describing: error))"); continue }
            #expect(detail.contains("tensor 'x'"), "\(detail)")
        }
        try file(header: #"{"x": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
        #expect(open()?.description.contains("'x'") == true)
    }

    @Test func metadataMustBeStrings() throws {
        try file(header: #"{"__metadata__": {"format": "pt", "total": 3}}"#)
        #expect(open() == .malformedHeader(file: path, detail: "__metadata__ value 'total' is a number, not a string"))
        try file(header: #"{"__metadata__": ["pt"]}"#)
        #expect(open() == .malformedHeader(file: path, detail: "__metadata__ is an array, not an object of strings"))
        try file(header: #"{"__metadata__": null}"#)
        #expect(try SafetensorsFile(url: url).metadata.isEmpty)
        try file(header: #"{"x": [1]}"#)
        #expect(open() == .malformedHeader(file: path, detail: "tensor 'x': entry is an array, not an object"))
    }

    @Test func missingKeyShapeMismatchAndAliases() throws {
        let data = floatBytes([1, 2, 3, 4])
        try file(header: #"{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "c": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}, "e": {"dtype": "F32", "shape": [0], "data_offsets": [16, 16]}}"#,
                 data: data)
        let f = try SafetensorsFile(url: url)
        #expect(f.tensorNames == ["a", "b", "c", "e"])
        #expect(expectCheckpointError { _ = try f.tensor("zz") } == .missingKey(file: path, key: "zz"))
        #expect(expectCheckpointError { _ = try f.tensor("zz") }?.description == "\(path): no tensor named 'zz'")
        #expect(expectCheckpointError { _ = try f.tensor("a", shape: [4]) }
                    == .shapeMismatch(file: path, key: "a", expected: [4], actual: [2, 2]))
        #expect(try f.tensor(anyOf: ["nope", "c"]).floats() == [3, 4])
        #expect(expectCheckpointError { _ = try f.tensor(anyOf: ["p", "q"]) } == .missingKey(file: path, key: "p"))
        // Overlapping ranges are aliases, not errors.
        #expect(try f.tensor("a").sharesBytes(with: f.tensor("b")))
        #expect(try f.tensor("a").sharesBytes(with: f.tensor("c")))
        #expect(try !f.tensor("a").sharesBytes(with: f.tensor("e")))
        #expect(try f.tensor("b").floats() == [1, 2, 3, 4])
        #expect(f.dataOffsets("c") == 8 ..< 16)
        #expect(f.metadata.isEmpty)
    }

    /// Random corruption of a valid file's header and data: a typed error or a valid file, never a crash.
    @Test func fuzzedHeadersNeverCrash() throws {
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        try writer.add(name: "model.layers.0.weight", shape: [3, 4], floats: (0..<12).map(Float.init))
        try writer.add(name: "b", shape: [2], floats: [1, 2], dtype: .bf16)
        writer.add(name: "ids", dtype: .i64, shape: [2], bytes: Array(repeating: 1, count: 16))
        let good = tmp.url.appendingPathComponent("good.safetensors")
        try writer.write(to: good)
        let original = try Array(Data(contentsOf: good))
        var rng = SplitMix64(state: 42)
        var failures = 0
        for round in 0..<3000 {
            var bytes = original
            let edits = 1 + Int(rng.next() % 4)
            for _ in 0..<edits {
                let position = Int(rng.next() % UInt64(min(bytes.count, round % 2 == 0 ? bytes.count : 40)))
                switch rng.next() % 4 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[position] = Array("{}[]\",:0123456789-.eE \\u".utf8).randomElement(using: &rng)!
                case 2: bytes.removeSubrange(position...)
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: position)
                }
                if bytes.isEmpty { break }
            }
            try writeBytes(bytes, to: url)
            do {
                let f = try SafetensorsFile(url: url)
                for name in f.tensorNames {
                    let t = try f.tensor(name)
                    _ = t.bytes
                    if t.dtype.isFloatingWeight { _ = try t.floats() }
                }
            } catch let error as CheckpointError {
                failures += 1
                #expect(error.description.hasPrefix(path), "\(error)")
            }
        }
        #expect(failures > 1000)
    }
}
