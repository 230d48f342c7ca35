import Foundation
import Testing
@testable import CALMTensor

/// Writes minimal ZIP archives with stored entries, laid out the way `torch.save` does it
/// (optionally with a ZIP64 end record and ZIP64 extra fields).
struct StoredZipWriter {
    var entries: [(name: String, data: [UInt8])] = []
    /// Compression method to claim per entry name (default 0, stored).
    var methods: [String: Int] = [:]

    mutating func add(_ name: String, _ data: [UInt8]) { entries.append((name, data)) }

    /// The archive bytes. `zip64` adds ZIP64 end records (as PyTorch always does) and, with
    /// `zip64Extra`, saturates the 32-bit sizes/offsets and stores them in ZIP64 extra fields.
    func bytes(zip64: Bool = true, zip64Extra: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ v: Int, _ a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        func u64(_ v: Int, _ a: inout [UInt8]) { for i in 0..<8 { a.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        for (name, data) in entries {
            let offset = out.count
            let nameBytes = Array(name.utf8)
            let method = methods[name] ?? 0
            u32(0x0403_4B50, &out); u16(20, &out); u16(0, &out); u16(method, &out); u16(0, &out); u16(0, &out)
            u32(0, &out); u32(data.count, &out); u32(data.count, &out)
            u16(nameBytes.count, &out); u16(0, &out)
            out += nameBytes
            out += data
            u32(0x0201_4B50, &central); u16(45, &central); u16(45, &central); u16(0, &central); u16(method, &central)
            u16(0, &central); u16(0, &central); u32(0, &central)
            var extra: [UInt8] = []
            if zip64Extra {
                u32(0xFFFF_FFFF, &central); u32(0xFFFF_FFFF, &central)
                u16(1, &extra); u16(24, &extra); u64(data.count, &extra); u64(data.count, &extra); u64(offset, &extra)
            } else {
                u32(data.count, &central); u32(data.count, &central)
            }
            u16(nameBytes.count, &central); u16(extra.count, &central); u16(0, &central); u16(0, &central)
            u16(0, &central); u32(0, &central)
            u32(zip64Extra ? 0xFFFF_FFFF : offset, &central)
            central += nameBytes
            central += extra
        }
        let directoryOffset = out.count
        out += central
        if zip64 {
            let recordOffset = out.count
            u32(0x0606_4B50, &out); u64(44, &out); u16(45, &out); u16(45, &out); u32(0, &out); u32(0, &out)
            u64(entries.count, &out); u64(entries.count, &out); u64(central.count, &out); u64(directoryOffset, &out)
            u32(0x0706_4B50, &out); u32(0, &out); u64(recordOffset, &out); u32(1, &out)
        }
        u32(0x0605_4B50, &out); u16(0, &out); u16(0, &out)
        u16(zip64 ? 0xFFFF : entries.count, &out); u16(zip64 ? 0xFFFF : entries.count, &out)
        u32(zip64 ? 0xFFFF_FFFF : central.count, &out); u32(zip64 ? 0xFFFF_FFFF : directoryOffset, &out)
        u16(0, &out)
        return out
    }
}

/// Builds pickle (protocol 2) byte strings by hand, the way `torch.save` writes a state dict.
struct PickleBuilder {
    var bytes: [UInt8] = [0x80, 0x02]

    mutating func raw(_ b: [UInt8]) { bytes += b }
    mutating func op(_ c: Character) { bytes.append(c.asciiValue!) }
    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        op("X"); bytes += withUnsafeBytes(of: UInt32(u.count).littleEndian) { Array($0) }; bytes += u
    }
    mutating func int(_ v: Int) {
        op("J"); bytes += withUnsafeBytes(of: Int32(v).littleEndian) { Array($0) }
    }
    mutating func global(_ module: String, _ name: String) {
        op("c"); bytes += Array("\(module)\n\(name)\n".utf8)
    }
    mutating func intTuple(_ values: [Int]) {
        op("("); for v in values { int(v) }; op("t")
    }

    struct TensorSpec {
        var name: String
        var storageType = "FloatStorage"
        var key: String
        var numel: Int
        var offset = 0
        var size: [Int]
        var stride: [Int]? = nil
    }

    /// `{name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()), ...}`.
    static func stateDict(_ tensors: [TensorSpec]) -> [UInt8] {
        var p = PickleBuilder()
        p.op("}")
        p.op("(")
        for t in tensors {
            p.string(t.name)
            p.global("torch._utils", "_rebuild_tensor_v2")
            p.op("(")
            p.op("("); p.string("storage"); p.global("torch", t.storageType); p.string(t.key); p.string("cpu"); p.int(t.numel); p.op("t")
            p.op("Q")
            p.int(t.offset)
            p.intTuple(t.size)
            var stride = t.stride ?? []
            if t.stride == nil {
                var s = 1
                for d in t.size.reversed() { stride.insert(s, at: 0); s *= d }
            }
            p.intTuple(stride)
            p.raw([0x89])
            p.global("collections", "OrderedDict"); p.op(")"); p.op("R")
            p.op("t")
            p.op("R")
        }
        p.op("u")
        p.op(".")
        return p.bytes
    }
}

/// A torch.save-style archive holding `pickle` and the given storages.
func torchArchive(pickle: [UInt8], storages: [(String, [UInt8])], prefix: String = "archive",
                  zip64: Bool = true, zip64Extra: Bool = false) -> [UInt8] {
    var zip = StoredZipWriter()
    zip.add("\(prefix)/data.pkl", pickle)
    zip.add("\(prefix)/byteorder", Array("little".utf8))
    for (key, data) in storages { zip.add("\(prefix)/data/\(key)", data) }
    zip.add("\(prefix)/version", Array("3\n".utf8))
    return zip.bytes(zip64: zip64, zip64Extra: zip64Extra)
}

func floatBytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// Writes `bytes` to a fresh file at `url` (unlinking first: truncating a file in place makes ext4
/// flush it on close, which costs milliseconds per write in the fuzz loops).
func writeBytes(_ bytes: [UInt8], to url: URL) throws {
    unlink(url.path)
    guard let f = fopen(url.path, "wb") else { throw CocoaError(.fileWriteUnknown) }
    defer { fclose(f) }
    guard bytes.isEmpty || fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw CocoaError(.fileWriteUnknown) }
}

/// Runs `body`, expecting a `CheckpointError`; returns it (records an issue otherwise).
@discardableResult
func expectCheckpointError(sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: () throws -> Void) -> CheckpointError? {
    do {
        try body()
        Issue.record("expected a CheckpointError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as CheckpointError {
        return error
    } catch {
        Issue.record("expected a CheckpointError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A deterministic pseudo-random generator for fuzz-style tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
