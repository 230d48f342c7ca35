import CALMTestSupport
import Foundation
import Testing
@testable import CALMTensor

/// `keys.json` of a fixture folder: ordered state_dict keys with shapes, and shared-storage groups.
struct FixtureKeys {
    var order: [String]
    var shapes: [String: [Int]]
    var sharedGroups: [[String]]

    init(folder: URL) throws {
        let bytes = try Array(Data(contentsOf: folder.appendingPathComponent("keys.json")))
        let root = try #require(try MiniJSONParser.parse(bytes).objectValue)
        let keys = try #require(root["state_dict_keys"]?.objectValue)
        order = keys.keys
        shapes = [:]
        for k in keys.keys { shapes[k] = try #require(keys[k]?.arrayValue).map { try #require($0.intValue) } }
        sharedGroups = try (root["shared_storage_groups"]?.arrayValue ?? []).map { group in
            try #require(group.arrayValue).map { try #require($0.stringValue) }
        }
    }
}

@Suite struct FixtureCheckpointTests {
    static let folders = ["ae_k4_h32", "ae_k4_h64", "calm_k4_gqa", "calm_k4_mha"]

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)),
          arguments: folders)
    func safetensorsLoadWithEveryKey(folder: String) throws {
        _ = try SharedFixtures.require()
        let dir = try SharedFixtures.calmFixtures().appendingPathComponent(folder)
        let keys = try FixtureKeys(folder: dir)
        let source = try CheckpointLoader.open(directory: dir)
        #expect(source is SafetensorsFile)
        #expect(source.metadata == ["format": "pt"])
        #expect(source.tensorNames.count == keys.order.count)
        #expect(Set(source.tensorNames) == Set(keys.order))
        for name in keys.order {
            let info = try #require(source.info(name))
            #expect(info.dtype == .f32)
            #expect(info.shape == keys.shapes[name], "\(name)")
            let t = try source.tensor(name, shape: keys.shapes[name]!)
            let values = try t.floats()
            #expect(values.count == t.elementCount)
            #expect(values.allSatisfy { $0.isFinite })
        }
        // Aliases are written as separate, equal copies in the safetensors files.
        for group in keys.sharedGroups {
            let first = try source.tensor(group[0]).bytes
            for name in group.dropFirst() { #expect(try source.tensor(name).bytes == first, "\(name)") }
        }
        let expectedCount = folder.hasPrefix("ae") ? 28 : 122
        #expect(keys.order.count == expectedCount)
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func pytorchBinMatchesSafetensorsBitForBit() throws {
        _ = try SharedFixtures.require()
        let dir = try SharedFixtures.calmFixtures().appendingPathComponent("calm_k4_gqa")
        let keys = try FixtureKeys(folder: dir)
        let bin = try TorchCheckpointFile(url: dir.appendingPathComponent("pytorch_model.bin"))
        let safe = try SafetensorsFile(url: dir.appendingPathComponent("model.safetensors"))
        #expect(bin.archiveName == "pytorch_model")
        #expect(bin.tensorNames.count == 122)
        #expect(bin.tensorNames == keys.order)          // state_dict order is kept
        #expect(Set(safe.tensorNames) == Set(bin.tensorNames))
        for name in bin.tensorNames {
            let a = try bin.tensor(name)
            let b = try safe.tensor(name)
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(name)")
            #expect(a.bytes == b.bytes, "\(name) differs")
            #expect(try a.floats() == b.floats())
        }
        // mlp_generator.* and generative_head.* share one storage in the .bin.
        #expect(keys.sharedGroups.count == 34)
        for group in keys.sharedGroups {
            let first = try bin.tensor(group[0])
            for name in group.dropFirst() {
                #expect(bin.storageKey(name) == bin.storageKey(group[0]), "\(name)")
                #expect(try bin.tensor(name).sharesBytes(with: first), "\(name)")
                #expect(try !safe.tensor(name).sharesBytes(with: safe.tensor(group[0])))
            }
        }
        // The AE embedding / lm_head pair was untied by from_pretrained: equal values, separate storages.
        let embed = "ae_model.encoder.embed_tokens.weight", head = "ae_model.decoder.lm_head_weight"
        #expect(bin.storageKey(embed) != bin.storageKey(head))
        #expect(try bin.tensor(embed).bytes == bin.tensor(head).bytes)
        let storages = Set(bin.tensorNames.compactMap { bin.storageKey($0) })
        #expect(storages.count == 122 - 34)
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func loaderPrefersSafetensorsAndOpensBinByContent() throws {
        _ = try SharedFixtures.require()
        let dir = try SharedFixtures.calmFixtures().appendingPathComponent("calm_k4_gqa")
        #expect(try CheckpointLoader.open(dir) is SafetensorsFile)
        #expect(try CheckpointLoader.open(file: dir.appendingPathComponent("pytorch_model.bin")) is TorchCheckpointFile)
        // A folder with only the .bin falls back to it.
        let tmp = try TemporaryDirectory()
        try FileManager.default.createSymbolicLink(
            at: tmp.url.appendingPathComponent("pytorch_model.bin"), withDestinationURL: dir.appendingPathComponent("pytorch_model.bin"))
        let source = try CheckpointLoader.open(directory: tmp.url)
        #expect(source is TorchCheckpointFile)
        #expect(source.tensorNames.count == 122)
    }

    /// The writer reproduces Python `safetensors` output byte for byte (mixed I64/F32/F64 goldens too).
    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)),
          arguments: ["calm_k4_gqa/model.safetensors", "ae_k4_h32/model.safetensors",
                      "golden_calm_k4_gqa.safetensors", "golden_ae_k4_h32.safetensors",
                      "golden_train_calm_k4_gqa.safetensors"])
    func writerReproducesPythonFilesByteForByte(path: String) throws {
        _ = try SharedFixtures.require()
        let url = try SharedFixtures.calmFixtures().appendingPathComponent(path)
        let source = try SafetensorsFile(url: url)
        var writer = SafetensorsWriter(metadata: source.metadata)
        // Add in reverse order: the writer must sort like the reference.
        for name in source.tensorNames.reversed() { writer.add(try source.tensor(name)) }
        let tmp = try TemporaryDirectory()
        let out = tmp.url.appendingPathComponent("copy.safetensors")
        try writer.write(to: out)
        let original = try Data(contentsOf: url)
        let copy = try Data(contentsOf: out)
        #expect(copy.count == original.count)
        #expect(copy == original)
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func truncatedRealBinNeverCrashes() throws {
        _ = try SharedFixtures.require()
        let url = try SharedFixtures.calmFixtures().appendingPathComponent("calm_k4_gqa/pytorch_model.bin")
        let bytes = try Array(Data(contentsOf: url))
        let tmp = try TemporaryDirectory()
        let cut = tmp.url.appendingPathComponent("pytorch_model.bin")
        var points = [0, 1, 4, 30, 64, 100, 1000, 14_000, 14_300, 50_000, bytes.count / 2]
        points += [bytes.count - 200, bytes.count - 100, bytes.count - 60, bytes.count - 23, bytes.count - 22, bytes.count - 1]
        for point in points {
            try writeBytes(Array(bytes[..<point]), to: cut)
            let error = expectCheckpointError { _ = try TorchCheckpointFile(url: cut) }
            #expect(error?.description.contains("pytorch_model.bin") == true, "cut at \(point): \(String(describing: error))")
            if case .truncated = error {} else { Issue.record("cut at \(point): \(String(describing: error))") }
        }
    }

    @Test(.enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
    func goldenFilesOfMixedDTypesRead() throws {
        _ = try SharedFixtures.require()
        let file = try SafetensorsFile(url: SharedFixtures.calmFixtures().appendingPathComponent("golden_calm_k4_gqa.safetensors"))
        let ids = try file.tensor("bb.input_ids")
        #expect(ids.dtype == .i64)
        #expect(ids.shape == [2, 20])
        #expect(try ids.int64s().allSatisfy { $0 >= 0 && $0 < 256 })
        #expect(file.metadata["config"] == "calm_k4_gqa")
        let loss = try file.tensor("eval.loss")
        #expect(loss.shape == [])
        #expect(loss.elementCount == 1)
        #expect(try loss.floats().count == 1)
    }
}
