import Foundation

/// (A copy of the test suite's helpers in Tests/CALMTensorTests/TestHelpers.swift.)
/// Writes minimal ZIP archives with stored entries, laid out the way `torch.save` does it
/// (optionally with a ZIP64 end record and ZIP64 extra fields).
public struct StoredZipWriter {
    public var entries: [(name: String, data: [UInt8])] = []
    /// Compression method to claim per entry name (default 0, stored).
    public var methods: [String: Int] = [:]

    public init() {}

    public mutating func add(_ name: String, _ data: [UInt8]) { entries.append((name, data)) }

    /// The archive bytes. `zip64` adds ZIP64 end records (as PyTorch always does) and, with
    /// `zip64Extra`, saturates the 32-bit sizes/offsets and stores them in ZIP64 extra fields.
    public func bytes(zip64: Bool = true, zip64Extra: Bool = false) -> [UInt8] {
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
public struct PickleBuilder {
    public var bytes: [UInt8] = [0x80, 0x02]

    public init() {}

    public mutating func raw(_ b: [UInt8]) { bytes += b }
    public mutating func op(_ c: Character) { bytes.append(c.asciiValue!) }
    public mutating func string(_ s: String) {
        let u = Array(s.utf8)
        op("X"); bytes += withUnsafeBytes(of: UInt32(u.count).littleEndian) { Array($0) }; bytes += u
    }
    public mutating func int(_ v: Int) {
        op("J"); bytes += withUnsafeBytes(of: Int32(v).littleEndian) { Array($0) }
    }
    public mutating func global(_ module: String, _ name: String) {
        op("c"); bytes += Array("\(module)\n\(name)\n".utf8)
    }
    public mutating func intTuple(_ values: [Int]) {
        op("("); for v in values { int(v) }; op("t")
    }

    public struct TensorSpec {
        public var name: String
        public var storageType = "FloatStorage"
        public var key: String
        public var numel: Int
        public var offset = 0
        public var size: [Int]
        public var stride: [Int]? = nil

        public init(name: String, storageType: String = "FloatStorage", key: String, numel: Int, offset: Int = 0,
                    size: [Int], stride: [Int]? = nil) {
            self.name = name; self.storageType = storageType; self.key = key; self.numel = numel
            self.offset = offset; self.size = size; self.stride = stride
        }
    }

    /// `{name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()), ...}`.
    public static func stateDict(_ tensors: [TensorSpec]) -> [UInt8] {
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
public func torchArchive(pickle: [UInt8], storages: [(String, [UInt8])], prefix: String = "archive",
                  zip64: Bool = true, zip64Extra: Bool = false) -> [UInt8] {
    var zip = StoredZipWriter()
    zip.add("\(prefix)/data.pkl", pickle)
    zip.add("\(prefix)/byteorder", Array("little".utf8))
    for (key, data) in storages { zip.add("\(prefix)/data/\(key)", data) }
    zip.add("\(prefix)/version", Array("3\n".utf8))
    return zip.bytes(zip64: zip64, zip64Extra: zip64Extra)
}
