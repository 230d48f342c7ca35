import CALMTestSupport
import Foundation
import Testing
@testable import CALMTensor

/// Hand-built `torch.save` archives: valid ones read back exactly, hostile or broken ones give
/// typed errors (never a crash, never execution).
@Suite struct TorchCheckpointTests {
    let tmp: TemporaryDirectory
    let url: URL
    var path: String { url.path }

    init() throws {
        tmp = try TemporaryDirectory()
        url = tmp.url.appendingPathComponent("pytorch_model.bin")
    }

    func open(_ bytes: [UInt8]) throws -> TorchCheckpointFile {
        try writeBytes(bytes, to: url)
        return try TorchCheckpointFile(url: url)
    }

    func error(_ bytes: [UInt8]) -> CheckpointError? {
        expectCheckpointError { _ = try open(bytes) }
    }

    /// Three storages: an f32 one shared by three tensors (one at an offset), an f16 and an i64 one.
    func sampleArchive(zip64: Bool = true, zip64Extra: Bool = false, prefix: String = "archive") -> [UInt8] {
        let pickle = PickleBuilder.stateDict([
            .init(name: "w", key: "0", numel: 6, size: [2, 3]),
            .init(name: "w_alias", key: "0", numel: 6, size: [2, 3]),
            .init(name: "w_tail", key: "0", numel: 6, offset: 4, size: [2]),
            .init(name: "h", storageType: "HalfStorage", key: "1", numel: 3, size: [3, 1], stride: [1, 7]),
            .init(name: "ids", storageType: "LongStorage", key: "2", numel: 2, size: [2]),
            .init(name: "scalar", key: "3", numel: 1, size: []),
            .init(name: "empty", key: "4", numel: 0, size: [0, 5], stride: [1, 1]),
        ])
        let half: [UInt16] = [0x3C00, 0xC000, 0x3800]
        return torchArchive(
            pickle: pickle,
            storages: [("0", floatBytes([1, 2, 3, 4, 5, 6])), ("1", half.withUnsafeBytes { Array($0) }),
                       ("2", [Int64(-3), 1 << 40].withUnsafeBytes { Array($0) }), ("3", floatBytes([9])), ("4", [])],
            prefix: prefix, zip64: zip64, zip64Extra: zip64Extra)
    }

    @Test(arguments: [(true, false), (false, false), (true, true)])
    func readsHandBuiltArchive(zip64: Bool, zip64Extra: Bool) throws {
        let f = try open(sampleArchive(zip64: zip64, zip64Extra: zip64Extra))
        #expect(f.archiveName == "archive")
        #expect(f.tensorNames == ["w", "w_alias", "w_tail", "h", "ids", "scalar", "empty"])
        #expect(try f.tensor("w").floats() == [1, 2, 3, 4, 5, 6])
        #expect(try f.tensor("w").shape == [2, 3])
        #expect(try f.tensor("w_tail").floats() == [5, 6])
        #expect(try f.tensor("w_alias").sharesBytes(with: f.tensor("w")))
        #expect(try f.tensor("w_tail").sharesBytes(with: f.tensor("w")))
        #expect(try !f.tensor("h").sharesBytes(with: f.tensor("w")))
        #expect(f.storageKey("w_alias") == "0" && f.storageKey("h") == "1")
        #expect(f.info("h")! == (DType.f16, [3, 1]))
        #expect(try f.tensor("h").floats() == [1, -2, 0.5])
        #expect(try f.tensor("ids").int64s() == [-3, 1 << 40])
        #expect(try f.tensor("scalar").floats() == [9])
        #expect(try f.tensor("empty").elementCount == 0)
        #expect(f.metadata.isEmpty)
        #expect(expectCheckpointError { _ = try f.tensor("nope") } == .missingKey(file: path, key: "nope"))
        // The loader recognises it by content whatever its name.
        let renamed = tmp.url.appendingPathComponent("weights.pt")
        try FileManager.default.copyItem(at: url, to: renamed)
        #expect(try CheckpointLoader.open(file: renamed).tensorNames.count == 7)
    }

    @Test func osSystemGlobalIsRefused() throws {
        // pickle.dumps(os.system reduce) as in the brief: GLOBAL 'os system', REDUCE ('ls',).
        let hostile: [UInt8] = Array("\u{80}\u{02}cos\nsystem\nq\u{00}X\u{02}\u{00}\u{00}\u{00}lsq\u{01}\u{85}q\u{02}Rq\u{03}.".unicodeScalars.map { UInt8($0.value) })
        let e = error(torchArchive(pickle: hostile, storages: []))
        #expect(e == .unsafePickle(file: path, detail: "global 'os.system' is not allowed (only tensor-rebuilding globals are)"))
        #expect(e?.description.contains("os.system") == true)
        #expect(e?.description.contains("pytorch_model.bin") == true)

        // STACK_GLOBAL (protocol 4) of builtins.eval.
        var p = PickleBuilder()
        p.bytes = [0x80, 0x04]
        p.string("builtins"); p.string("eval"); p.raw([0x93]); p.string("1+1"); p.raw([0x85]); p.op("R"); p.op(".")
        #expect(error(torchArchive(pickle: p.bytes, storages: []))
                    == .unsafePickle(file: path, detail: "global 'builtins.eval' is not allowed (only tensor-rebuilding globals are)"))

        // Allowed names that are not callables must not be called.
        var q = PickleBuilder()
        q.global("torch", "FloatStorage"); q.op(")"); q.op("R"); q.op(".")
        if case .unsafePickle = error(torchArchive(pickle: q.bytes, storages: [])) {} else { Issue.record("calling a storage type") }

        // INST / OBJ (protocol 0 object construction) are refused outright.
        let inst: [UInt8] = [0x80, 0x02, 0x28] + Array("isubprocess\nPopen\n.".utf8)
        if case .unsafePickle = error(torchArchive(pickle: inst, storages: [])) {} else { Issue.record("INST") }
    }

    @Test func garbledAndTruncatedPickles() throws {
        let good = PickleBuilder.stateDict([.init(name: "w", key: "0", numel: 2, size: [2])])
        let storages = [("0", floatBytes([1, 2]))]
        // Truncated anywhere: a typed error.
        for cut in [0, 1, 2, 5, 20, good.count / 2, good.count - 1] {
            let e = error(torchArchive(pickle: Array(good[..<cut]), storages: storages))
            #expect(e?.description.hasPrefix(path) == true, "cut \(cut): \(String(describing: e))")
        }
        // Garbage bytes.
        #expect(error(torchArchive(pickle: Array("hello world".utf8), storages: storages)) != nil)
        #expect(error(torchArchive(pickle: [0x80, 0x02, 0xFF, 0x2E], storages: storages))
                    == .malformedPickle(file: path, detail: "unsupported opcode 0xFF at byte 2"))
        // A state dict whose value is not a tensor.
        var p = PickleBuilder()
        p.op("}"); p.string("x"); p.int(3); p.op("s"); p.op(".")
        #expect(error(torchArchive(pickle: p.bytes, storages: []))
                    == .unsupportedFormat(file: path, detail: "state dict entry 'x' is a int, not a tensor"))
        // Not a dict at all.
        #expect(error(torchArchive(pickle: [0x80, 0x02, 0x4E, 0x2E], storages: []))
                    == .malformedPickle(file: path, detail: "data.pkl holds a None, not a state dict"))

        // Random corruption: typed error or a valid file, never a crash.
        var rng = SplitMix64(state: 1)
        for _ in 0..<2000 {
            var bytes = good
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                if rng.next() % 3 == 0 { bytes.remove(at: i) } else { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            try writeBytes(torchArchive(pickle: bytes, storages: storages), to: url)
            do {
                let f = try TorchCheckpointFile(url: url)
                for name in f.tensorNames { _ = try f.tensor(name).bytes }
            } catch let e as CheckpointError {
                #expect(e.description.hasPrefix(path), "\(e)")
            }
        }
    }

    @Test func deepNestingAndCyclesDoNotCrash() throws {
        // 300k nested tuples, then a chain of 200k lists each appended into the previous one,
        // and a list appended to itself: all torn down without recursion.
        var p = PickleBuilder()
        p.op(")")
        p.raw(Array(repeating: 0x85, count: 300_000))   // TUPLE1
        p.raw([0x30])                                     // POP
        p.op("]")                                         // root list
        for i in 0..<200_000 {                            // previous.append(x); push x again: a 200k-deep chain
            let index = withUnsafeBytes(of: UInt32(i).littleEndian) { Array($0) }
            p.op("]"); p.op("r"); p.raw(index); p.op("a"); p.op("j"); p.raw(index)
        }
        p.raw([0x30])
        p.op("]"); p.raw([0x32]); p.op("a")               // l = []; l.append(l)
        p.op(".")
        let e = error(torchArchive(pickle: p.bytes, storages: []))
        if case .malformedPickle = e {} else { Issue.record("\(String(describing: e))") }
    }

    @Test func missingStorageEntry() throws {
        let pickle = PickleBuilder.stateDict([.init(name: "w", key: "0", numel: 2, size: [2]),
                                              .init(name: "v", key: "9", numel: 2, size: [2])])
        let e = error(torchArchive(pickle: pickle, storages: [("0", floatBytes([1, 2]))]))
        #expect(e == .missingStorage(file: path, key: "v", entry: "archive/data/9"))
        #expect(e?.description == "\(path): tensor 'v' refers to storage 'archive/data/9', which is not in the archive")
    }

    @Test func nonContiguousStrides() throws {
        let pickle = PickleBuilder.stateDict([.init(name: "w.T", key: "0", numel: 6, size: [3, 2], stride: [1, 3])])
        let e = error(torchArchive(pickle: pickle, storages: [("0", floatBytes([1, 2, 3, 4, 5, 6]))]))
        #expect(e == .nonContiguous(file: path, key: "w.T", shape: [3, 2], strides: [1, 3]))
        #expect(e?.description.contains("'w.T'") == true)
        // Size-1 dimensions may carry any stride (PyTorch's own contiguity rule).
        let ok = PickleBuilder.stateDict([.init(name: "b", key: "0", numel: 6, size: [1, 6, 1], stride: [99, 1, 5])])
        #expect(try open(torchArchive(pickle: ok, storages: [("0", floatBytes([1, 2, 3, 4, 5, 6]))])).tensor("b").shape == [1, 6, 1])
    }

    @Test func storageBounds() throws {
        let beyond = PickleBuilder.stateDict([.init(name: "w", key: "0", numel: 4, offset: 3, size: [2])])
        #expect(error(torchArchive(pickle: beyond, storages: [("0", floatBytes([1, 2, 3, 4]))]))
                    == .outOfBounds(file: path, key: "w", detail: "storage offset 3 + 2 elements of F32 exceed storage 'archive/data/0' (16 bytes)"))
        let short = PickleBuilder.stateDict([.init(name: "w", key: "0", numel: 4, size: [4])])
        let e = error(torchArchive(pickle: short, storages: [("0", floatBytes([1, 2, 3]))]))
        if case .truncated(let f, let detail) = e { #expect(f == path && detail.contains("'w'")) } else { Issue.record("\(String(describing: e))") }
        let negative = PickleBuilder.stateDict([.init(name: "w", key: "0", numel: 4, offset: -1, size: [2])])
        if case .malformedPickle = error(torchArchive(pickle: negative, storages: [("0", floatBytes([1, 2, 3, 4]))])) {} else {
            Issue.record("negative offset")
        }
        let complex = PickleBuilder.stateDict([.init(name: "z", storageType: "ComplexFloatStorage", key: "0", numel: 1, size: [1])])
        #expect(error(torchArchive(pickle: complex, storages: [("0", floatBytes([1, 2]))]))
                    == .unsupportedDType(file: path, key: "z", dtype: "ComplexFloatStorage"))
    }

    @Test func truncatedArchivesAtEveryRegion() throws {
        let bytes = sampleArchive()
        var cuts = Array(stride(from: 0, to: bytes.count, by: 37))
        cuts += [bytes.count - 1, bytes.count - 22, bytes.count - 23, bytes.count - 42, bytes.count - 98]
        for cut in cuts {
            let e = error(Array(bytes[..<cut]))
            guard case .truncated(let f, _) = e else { Issue.record("cut at \(cut): \(String(describing: e))"); continue }
            #expect(f == path)
        }
    }

    /// Random corruption anywhere in the archive (headers, directory, ZIP64 records, data).
    @Test(arguments: [false, true])
    func fuzzedArchivesNeverCrash(zip64Extra: Bool) throws {
        let original = sampleArchive(zip64Extra: zip64Extra)
        var rng = SplitMix64(state: zip64Extra ? 11 : 12)
        var failures = 0
        for round in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                // Half of the edits hit the directory and end records at the tail.
                let tail = round % 2 == 0 ? 0 : max(0, bytes.count - 400)
                let i = tail + Int(rng.next() % UInt64(bytes.count - tail))
                switch rng.next() % 3 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[i] = [0x00, 0xFF, 0x7F, 0x80, 0x50, 0x4B].randomElement(using: &rng)!
                default: bytes[i] ^= 1 << UInt8(rng.next() % 8)
                }
            }
            try writeBytes(bytes, to: url)
            do {
                let f = try TorchCheckpointFile(url: url)
                for name in f.tensorNames {
                    let t = try f.tensor(name)
                    _ = t.bytes
                    if t.dtype.isFloatingWeight { _ = try t.floats() } else { _ = try t.int64s() }
                }
            } catch let e as CheckpointError {
                failures += 1
                #expect(e.description.hasPrefix(path), "\(e)")
            }
        }
        #expect(failures > 100)
    }

    @Test func unsupportedArchives() throws {
        var zip = StoredZipWriter()
        zip.add("archive/data.pkl", PickleBuilder.stateDict([]))
        zip.methods["archive/data.pkl"] = 8
        let deflate = error(zip.bytes())
        #expect(deflate?.description.contains("'archive/data.pkl' is compressed (deflate)") == true)
        if case .unsupportedFormat = deflate {} else { Issue.record("\(String(describing: deflate))") }

        var big = StoredZipWriter()
        big.add("archive/data.pkl", PickleBuilder.stateDict([]))
        big.add("archive/byteorder", Array("big".utf8))
        #expect(error(big.bytes()) == .unsupportedFormat(file: path, detail: "byte order 'big'; only little-endian archives are supported"))

        #expect(error([0x80, 0x02, 0x8A, 0x0A]) == .unsupportedFormat(
            file: path, detail: "legacy (pre-1.6, non-zip) torch.save format; re-save it with a recent PyTorch"))
        #expect(error(Array("not a checkpoint at all".utf8)) == .unsupportedFormat(file: path, detail: "not a zip archive (torch.save format)"))
        #expect(error([]) == .truncated(file: path, detail: "empty file"))

        var noPickle = StoredZipWriter()
        noPickle.add("archive/version", Array("3".utf8))
        #expect(error(noPickle.bytes()) == .unsupportedFormat(file: path, detail: "zip archive has no 'archive/data.pkl'"))

        // An empty state dict is valid.
        #expect(try open(torchArchive(pickle: PickleBuilder.stateDict([]), storages: [])).tensorNames.isEmpty)
    }

    /// A shard index may point at `.bin` shards too.
    @Test func binShardIndex() throws {
        try writeBytes(sampleArchive(), to: tmp.url.appendingPathComponent("pytorch_model-00001-of-00001.bin"))
        let index = #"{"metadata": {"total_size": 60}, "weight_map": {"w": "pytorch_model-00001-of-00001.bin", "ids": "pytorch_model-00001-of-00001.bin"}}"#
        try Data(index.utf8).write(to: tmp.url.appendingPathComponent("pytorch_model.bin.index.json"))
        let source = try CheckpointLoader.open(directory: tmp.url)
        #expect(source.tensorNames == ["w", "ids"])
        #expect(try source.tensor("ids").int64s() == [-3, 1 << 40])
    }
}
