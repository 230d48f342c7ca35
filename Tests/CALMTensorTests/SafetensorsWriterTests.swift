import CALMTestSupport
import Foundation
import Testing
@testable import CALMTensor

@Suite struct SafetensorsWriterTests {
    @Test func roundTripOfEveryKind() throws {
        let tmp = try TemporaryDirectory()
        let url = tmp.url.appendingPathComponent("t.safetensors")
        let weights: [Float] = [1, -2, 0.5, 3.25, 1e-3, -65504]
        var writer = SafetensorsWriter(metadata: ["format": "pt", "note": "quote \" backslash \\ newline \n é 🙂"])
        try writer.add(name: "w32", shape: [2, 3], floats: weights)
        try writer.add(name: "w16", shape: [3, 2], floats: weights, dtype: .f16)
        try writer.add(name: "wbf", shape: [6], floats: weights, dtype: .bf16)
        writer.add(try TensorData(name: "ids", shape: [2, 2], int64s: [0, -1, 1 << 50, 7]))
        writer.add(name: "empty", dtype: .f32, shape: [0], bytes: [])
        writer.add(name: "empty2d", dtype: .bf16, shape: [4, 0], bytes: [])
        writer.add(name: "scalar", dtype: .f32, shape: [], bytes: floatBytes([42]))
        writer.add(name: "generated", dtype: .i32, shape: [3, 5]) { offset, chunk in
            for i in 0 ..< chunk.count / 4 { chunk.storeBytes(of: Int32(offset / 4 + i), toByteOffset: 4 * i, as: Int32.self) }
        }
        #expect(writer.count == 8)
        try writer.write(to: url)

        let raw = try Array(Data(contentsOf: url))
        let headerLength = raw[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLength) % 8 == 0)
        let header = String(decoding: raw[8 ..< 8 + headerLength], as: UTF8.self)
        #expect(header.hasPrefix("{\"__metadata__\":{\"format\":\"pt\",\"note\":"))
        #expect(!header.contains("\n"))   // escaped

        let file = try SafetensorsFile(url: url)
        #expect(file.metadata["note"] == "quote \" backslash \\ newline \n é 🙂")
        #expect(file.metadata["format"] == "pt")
        // Largest elements first, then by name (the reference order).
        #expect(file.tensorNames == ["ids", "empty", "generated", "scalar", "w32", "empty2d", "w16", "wbf"])
        #expect(try file.tensor("w32").floats() == weights)
        #expect(try file.tensor("w16").floats() == weights.map { TensorConversion.float(fromHalf: TensorConversion.half(from: $0)) })
        #expect(try file.tensor("wbf").floats() == weights.map { TensorConversion.float(fromBFloat16: TensorConversion.bfloat16(from: $0)) })
        #expect(try file.tensor("ids").int64s() == [0, -1, 1 << 50, 7])
        #expect(try file.tensor("ids").shape == [2, 2])
        #expect(try file.tensor("empty").elementCount == 0)
        #expect(try file.tensor("empty").floats() == [])
        #expect(try file.tensor("empty2d").shape == [4, 0])
        let scalar = try file.tensor("scalar")
        #expect(scalar.shape == [])
        #expect(try scalar.floats() == [42])
        #expect(try file.tensor("generated").int64s() == (0..<15).map(Int64.init))
        #expect(file.info("w16")! == (DType.f16, [3, 2]))
    }

    @Test func largeGeneratedTensorStreamsInPieces() throws {
        let tmp = try TemporaryDirectory()
        let url = tmp.url.appendingPathComponent("big.safetensors")
        var writer = SafetensorsWriter()
        let count = 3 * (1 << 20) + 5      // 12 MiB of f32: three pieces
        writer.add(name: "big", dtype: .f32, shape: [count]) { offset, chunk in
            #expect(offset % 4 == 0 && chunk.count % 4 == 0 && chunk.count <= 4 << 20)
            for i in 0 ..< chunk.count / 4 { chunk.storeBytes(of: Float(offset / 4 + i), toByteOffset: 4 * i, as: Float.self) }
        }
        try writer.write(to: url)
        let values = try SafetensorsFile(url: url).tensor("big").floats()
        #expect(values.count == count)
        #expect(values[0] == 0 && values[count - 1] == Float(count - 1) && values[1 << 20] == Float(1 << 20))
        // Copying a mapped tensor into another file is zero-copy on the read side.
        let copy = tmp.url.appendingPathComponent("copy.safetensors")
        try SafetensorsWriter.write([try SafetensorsFile(url: url).tensor("big")], to: copy)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: url))
    }

    @Test func writerRejectsInconsistentInput() throws {
        let tmp = try TemporaryDirectory()
        let url = tmp.url.appendingPathComponent("bad.safetensors")
        var dup = SafetensorsWriter()
        dup.add(name: "a", dtype: .u8, shape: [1], bytes: [1])
        dup.add(name: "a", dtype: .u8, shape: [1], bytes: [2])
        let e1 = expectCheckpointError { try dup.write(to: url) }
        #expect(e1?.description.contains("'a' added twice") == true)
        var short = SafetensorsWriter()
        short.add(name: "w", dtype: .f32, shape: [2, 2], bytes: [0, 0, 0, 0])
        #expect(expectCheckpointError { try short.write(to: url) }
                    == .outOfBounds(file: url.path, key: "w", detail: "has 4 bytes but shape [2, 2] of F32 needs 16"))
        var reserved = SafetensorsWriter()
        reserved.add(name: "__metadata__", dtype: .u8, shape: [0], bytes: [])
        #expect(expectCheckpointError { try reserved.write(to: url) } != nil)
        var ints = SafetensorsWriter()
        #expect(expectCheckpointError { try ints.add(name: "x", shape: [1], floats: [1], dtype: .i64) } != nil)
        // Nothing was left behind: neither the destination nor a temporary file.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.url.path).isEmpty)
        // A destination in a missing folder is a typed write error.
        let nowhere = tmp.url.appendingPathComponent("missing/x.safetensors")
        let e2 = expectCheckpointError { try SafetensorsWriter().write(to: nowhere) }
        if case .writeFailed(let file, _) = e2 { #expect(file == nowhere.path) } else { Issue.record("\(String(describing: e2))") }
    }

    /// Writes two shards and an index, then reads them back through the loader.
    @Test func shardedRoundTrip() throws {
        let tmp = try TemporaryDirectory()
        let a = try TensorData(name: "layers.0.weight", shape: [2, 2], floats: [1, 2, 3, 4])
        let b = try TensorData(name: "layers.1.weight", shape: [3], floats: [5, 6, 7], dtype: .bf16)
        let c = try TensorData(name: "embed", shape: [2], int64s: [8, 9])
        try SafetensorsWriter.write([a, c], metadata: ["format": "pt"],
                                    to: tmp.url.appendingPathComponent("model-00001-of-00002.safetensors"))
        try SafetensorsWriter.write([b], metadata: ["format": "pt"],
                                    to: tmp.url.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index = """
            {"metadata": {"total_size": 38, "format": "pt"}, "weight_map": {
              "embed": "model-00001-of-00002.safetensors",
              "layers.0.weight": "model-00001-of-00002.safetensors",
              "layers.1.weight": "model-00002-of-00002.safetensors"}}
            """
        try Data(index.utf8).write(to: tmp.url.appendingPathComponent("model.safetensors.index.json"))

        let source = try CheckpointLoader.open(directory: tmp.url)
        let sharded = try #require(source as? ShardedSafetensors)
        #expect(sharded.tensorNames == ["embed", "layers.0.weight", "layers.1.weight"])
        #expect(sharded.metadata == ["total_size": "38", "format": "pt"])
        #expect(sharded.shardNames == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        #expect(try sharded.tensor("layers.0.weight").floats() == [1, 2, 3, 4])
        #expect(try sharded.tensor("layers.1.weight").floats() == [5, 6, 7])
        #expect(try sharded.tensor("layers.1.weight").file.hasSuffix("model-00002-of-00002.safetensors"))
        #expect(try sharded.tensor("embed").int64s() == [8, 9])
        #expect(sharded.info("layers.1.weight")! == (DType.bf16, [3]))
        #expect(expectCheckpointError { _ = try sharded.tensor("nope") }
                    == .missingKey(file: tmp.url.appendingPathComponent("model.safetensors.index.json").path, key: "nope"))
    }

    @Test func shardedIndexErrors() throws {
        let tmp = try TemporaryDirectory()
        let indexURL = tmp.url.appendingPathComponent("model.safetensors.index.json")
        try SafetensorsWriter.write([try TensorData(name: "a", shape: [1], floats: [1])],
                                    to: tmp.url.appendingPathComponent("s1.safetensors"))
        func check(_ json: String) -> CheckpointError? {
            try? Data(json.utf8).write(to: indexURL)
            return expectCheckpointError { _ = try ShardedSafetensors(indexURL: indexURL) }
        }
        #expect(check(#"{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#)
                    == .missingShard(index: indexURL.path, shard: "s2.safetensors"))
        #expect(check(#"{"weight_map": {"b": "s1.safetensors"}}"#)
                    == .missingKey(file: tmp.url.appendingPathComponent("s1.safetensors").path, key: "b"))
        #expect(check(#"{"weight_map": {"a": "../s1.safetensors"}}"#)?.description.contains("outside") == true)
        #expect(check(#"{"weight_map": {"a": 3}}"#)?.description.contains("'a'") == true)
        #expect(check(#"{"metadata": {}}"#)?.description.contains("weight_map") == true)
        #expect(check(#"{"weight_map": {"a": "s1.safetensors"#)?.description.contains("not valid JSON") == true)
        try Data(#"{"weight_map": {}}"#.utf8).write(to: indexURL)
        #expect(try ShardedSafetensors(indexURL: indexURL).tensorNames.isEmpty)
    }

    @Test func loaderErrorsNameTheFolder() throws {
        let tmp = try TemporaryDirectory()
        #expect(expectCheckpointError { _ = try CheckpointLoader.open(directory: tmp.url) }
                    == .noCheckpoint(directory: tmp.url.path))
        #expect(expectCheckpointError { _ = try CheckpointLoader.open(directory: tmp.url) }?.description
                    .contains(tmp.url.path) == true)
        let missing = tmp.url.appendingPathComponent("nope")
        #expect(expectCheckpointError { _ = try CheckpointLoader.open(missing) } == .fileNotFound(path: missing.path))
        #expect(expectCheckpointError { _ = try SafetensorsFile(url: missing) } == .fileNotFound(path: missing.path))
        if case .unreadable(let file, _) = expectCheckpointError({ _ = try SafetensorsFile(url: tmp.url) }) {
            #expect(file == tmp.url.path)
        } else { Issue.record("a directory should be unreadable") }
        // Preference order: model.safetensors wins over pytorch_model.bin.
        try SafetensorsWriter.write([try TensorData(name: "x", shape: [1], floats: [1])],
                                    to: tmp.url.appendingPathComponent("model.safetensors"))
        let zip = torchArchive(pickle: PickleBuilder.stateDict([.init(name: "y", key: "0", numel: 1, size: [1])]),
                               storages: [("0", floatBytes([2]))])
        try writeBytes(zip, to: tmp.url.appendingPathComponent("pytorch_model.bin"))
        #expect(try CheckpointLoader.open(directory: tmp.url).tensorNames == ["x"])
        try FileManager.default.removeItem(at: tmp.url.appendingPathComponent("model.safetensors"))
        #expect(try CheckpointLoader.open(directory: tmp.url).tensorNames == ["y"])
        #expect(try CheckpointLoader.open(file: tmp.url.appendingPathComponent("pytorch_model.bin")) is TorchCheckpointFile)
    }
}
