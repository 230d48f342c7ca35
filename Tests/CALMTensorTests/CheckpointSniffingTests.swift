import CALMTestSupport
import Foundation
import Testing
@testable import CALMTensor

/// `CheckpointLoader.open(file:)` picks the reader from the file's first bytes.
@Suite struct CheckpointSniffingTests {
    /// A safetensors header length whose low byte is 0x80 (the legacy pickle's first byte) must
    /// still open as safetensors: one trained checkpoint in 256 has such a header.
    @Test func safetensorsWhoseHeaderLengthStartsWithThePickleByte() throws {
        let tmp = try TemporaryDirectory()
        let url = tmp.url.appendingPathComponent("model.safetensors")
        var found = false
        for padding in 0..<512 {
            var writer = SafetensorsWriter(metadata: ["format": "pt", "pad": String(repeating: "x", count: padding)])
            try writer.add(name: "w", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
            try writer.write(to: url)
            let first = try Data(contentsOf: url).first
            guard first == 0x80 else { continue }
            found = true
            let source = try CheckpointLoader.open(file: url)
            #expect(source is SafetensorsFile)
            #expect(try source.tensor("w").floats() == [1, 2, 3, 4, 5, 6])
            break
        }
        #expect(found, "no metadata padding gave a header length with low byte 0x80")
    }

    /// A real legacy pickle (protocol 2 magic, no '{' at byte 8) still gets the legacy-format error.
    @Test func legacyPickleStillNamedAsSuch() throws {
        let tmp = try TemporaryDirectory()
        let url = tmp.url.appendingPathComponent("pytorch_model.bin")
        try Data([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8]).write(to: url)
        do {
            _ = try CheckpointLoader.open(file: url)
            Issue.record("a legacy pickle must not open")
        } catch let error as CheckpointError {
            #expect("\(error)".contains("legacy"))
        }
    }
}
