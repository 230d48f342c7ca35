// A sharded checkpoint's index JSON (ShardedCheckpoint, MiniJSON) in a folder that also holds two
// safetensors shards and a PyTorch .bin shard, so that valid indexes open real shards: opening
// succeeds and every tensor reads, or a CheckpointError is thrown. Through CheckpointLoader, as
// model loading does (a `.json` file is an index).
import CALMTensor
import Foundation
import FuzzSupport

nonisolated(unsafe) var folder: URL!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    folder = Harness.folder("sharded")
    do {
        var first = SafetensorsWriter(metadata: ["format": "pt"])
        try first.add(name: "model.embed_tokens.weight", shape: [4, 2], floats: [1, 2, 3, 4, 5, 6, 7, 8])
        try first.add(name: "model.norm.weight", shape: [2], floats: [1, 1], dtype: .bf16)
        try first.write(to: folder.appendingPathComponent("model-00001-of-00002.safetensors"))
        var second = SafetensorsWriter()
        try second.add(name: "lm_head.weight", shape: [4, 2], floats: [0, 1, 0, 1, 0, 1, 0, 1], dtype: .f16)
        second.add(name: "ids", dtype: .i64, shape: [1], bytes: [7, 0, 0, 0, 0, 0, 0, 0])
        try second.write(to: folder.appendingPathComponent("model-00002-of-00002.safetensors"))
        let pickle = PickleBuilder.stateDict([.init(name: "extra.weight", key: "0", numel: 2, size: [2])])
        let bin = torchArchive(pickle: pickle, storages: [("0", [0, 0, 128, 63, 0, 0, 0, 64])], prefix: "pytorch_model")
        Harness.write(bin, to: "pytorch_model-00001-of-00001.bin", in: folder)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
    } catch {
        Harness.fail("sharded: cannot write the fixed shards: \(error)")
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let url = Harness.write(UnsafeRawBufferPointer(start: data, count: size), to: "model.safetensors.index.json", in: folder)
    do {
        let source = try CheckpointLoader.open(file: url)
        Harness.readAll(source, "sharded index")
    } catch let error as CheckpointError {
            Harness.refused(error)
    } catch {
        Harness.untyped(error, "sharded index")
    }
    return 0
}

func seeds() throws -> [(String, [UInt8])] {
    [
        ("two-shards", #"{"metadata": {"total_size": 60, "format": "pt", "ok": true}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors", "model.norm.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors", "ids": "model-00002-of-00002.safetensors"}}"#),
        ("bin-shard", #"{"metadata": null, "weight_map": {"extra.weight": "pytorch_model-00001-of-00001.bin"}}"#),
        ("mixed", #"{"weight_map": {"extra.weight": "pytorch_model-00001-of-00001.bin", "lm_head.weight": "./model-00002-of-00002.safetensors"}, "metadata": {"total_size": 1.5e3}}"#),
        ("missing-shard", #"{"weight_map": {"x": "model-00003-of-00003.safetensors"}}"#),
        ("empty", #"{"weight_map": {}}"#),
    ].map { ($0.0, Array($0.1.utf8)) }
}
