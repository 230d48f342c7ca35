import Foundation

/// Token byte strings stored flat and indexed both ways: id → bytes and bytes → id.
///
/// The bytes → id index is an open-addressing hash table that is probed with a pointer and a
/// length, so lookups in the encoding hot loop allocate nothing.
final class TokenByteTable: Sendable {
    /// All token bytes, concatenated in id order.
    let storage: [UInt8]
    /// Start of each id's bytes in `storage`.
    let starts: [Int32]
    /// Length of each id's bytes; -1 for an id that has no bytes (a hole).
    let lengths: [Int32]
    /// Hash slots: 0 = empty, else `hash >> 32 << 32 | (id + 1)`.
    let slots: [UInt64]
    let mask: Int

    /// The number of ids (one past the largest id).
    var count: Int { lengths.count }

    /// Builds the table; `duplicate` reports the first pair of ids with equal bytes, if any
    /// (the later id is then not indexed).
    init(storage: [UInt8], starts: [Int32], lengths: [Int32], duplicate: inout (first: Int, second: Int)?) {
        self.storage = storage
        self.starts = starts
        self.lengths = lengths
        var present = 0
        for length in lengths where length >= 0 { present += 1 }
        var capacity = 16
        while capacity < present * 2 { capacity <<= 1 }
        var slots = [UInt64](repeating: 0, count: capacity)
        let mask = capacity - 1
        var firstDuplicate: (Int, Int)?
        storage.withUnsafeBufferPointer { bytes in
            let base = bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!
            for id in 0..<lengths.count where lengths[id] >= 0 {
                let start = Int(starts[id]), length = Int(lengths[id])
                let hash = hashBytes(base + start, length)
                var slot = Int(truncatingIfNeeded: hash) & mask
                let tag = hash & 0xFFFF_FFFF_0000_0000
                var isDuplicate = false
                while slots[slot] != 0 {
                    let entry = slots[slot]
                    if entry & 0xFFFF_FFFF_0000_0000 == tag {
                        let other = Int(entry & 0xFFFF_FFFF) - 1
                        if Int(lengths[other]) == length,
                           memcmp(base + Int(starts[other]), base + start, length) == 0 {
                            if firstDuplicate == nil { firstDuplicate = (other, id) }
                            isDuplicate = true
                            break
                        }
                    }
                    slot = (slot + 1) & mask
                }
                if !isDuplicate { slots[slot] = tag | UInt64(id + 1) }
            }
        }
        self.slots = slots
        self.mask = mask
        duplicate = firstDuplicate
    }

    /// Builds a table from byte arrays indexed by id (`nil` = hole).
    convenience init(tokens: [[UInt8]?], duplicate: inout (first: Int, second: Int)?) {
        var storage: [UInt8] = []
        var starts = [Int32](repeating: 0, count: tokens.count)
        var lengths = [Int32](repeating: -1, count: tokens.count)
        for (id, token) in tokens.enumerated() {
            guard let token else { continue }
            starts[id] = Int32(storage.count)
            lengths[id] = Int32(token.count)
            storage.append(contentsOf: token)
        }
        self.init(storage: storage, starts: starts, lengths: lengths, duplicate: &duplicate)
    }

    /// The bytes of `id`, or `nil` for a hole or an id out of range.
    func bytes(of id: Int) -> [UInt8]? {
        guard id >= 0, id < lengths.count, lengths[id] >= 0 else { return nil }
        let start = Int(starts[id])
        return Array(storage[start ..< start + Int(lengths[id])])
    }

    /// Runs `body` with raw pointers for fast lookups.
    @inline(__always)
    func withView<R>(_ body: (TokenByteView) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { bytes in
            try starts.withUnsafeBufferPointer { starts in
                try lengths.withUnsafeBufferPointer { lengths in
                    try slots.withUnsafeBufferPointer { slots in
                        try body(TokenByteView(
                            storage: bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!,
                            starts: starts.baseAddress ?? UnsafePointer(bitPattern: 4)!,
                            lengths: lengths.baseAddress ?? UnsafePointer(bitPattern: 4)!,
                            slots: slots.baseAddress!, mask: mask))
                    }
                }
            }
        }
    }
}

/// Pointer view of a `TokenByteTable`, valid inside `withView`.
struct TokenByteView {
    let storage: UnsafePointer<UInt8>
    let starts: UnsafePointer<Int32>
    let lengths: UnsafePointer<Int32>
    let slots: UnsafePointer<UInt64>
    let mask: Int

    /// The id whose bytes equal `bytes[0 ..< length]`, or -1.
    @inline(__always)
    func lookup(_ bytes: UnsafePointer<UInt8>, _ length: Int) -> Int {
        let hash = hashBytes(bytes, length)
        let tag = hash & 0xFFFF_FFFF_0000_0000
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 { return -1 }
            if entry & 0xFFFF_FFFF_0000_0000 == tag {
                let id = Int(entry & 0xFFFF_FFFF) - 1
                if Int(lengths[id]) == length,
                   memcmp(storage + Int(starts[id]), bytes, length) == 0 {
                    return id
                }
            }
            slot = (slot + 1) & mask
        }
    }
}

/// A fast 64-bit hash of a short byte string.
@inline(__always)
func hashBytes(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: n &+ 1)
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 8 <= n {
        let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        h = (h ^ w) &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 32
        i += 8
    }
    if i < n {
        var w: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            w |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ w) &* 0xC4CE_B9FE_1A85_EC53
    }
    h ^= h >> 33
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 29
    return h
}
