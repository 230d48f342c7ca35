import Foundation
import Testing
@testable import CALMTraining

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

/// Streams generated once with Python's zlib (level 9) and embedded.
@Suite struct CorpusInflateTests {
    @Test func fixedHuffmanBlock() throws {
        let z = hexBytes("78dacb48cdc9c957c8402775148a133353144a325215d2322b5253149272f293b3017a72105a")
        #expect((z[2] >> 1) & 3 == 1)
        #expect(String(decoding: try Inflate.zlib(z), as: UTF8.self) == "hello hello hello hello, said the fixed block")
    }

    @Test func dynamicHuffmanBlock() throws {
        let z = hexBytes("78da258f519242210c04af9203589e633d06caf0482d2fd92241f4f69be81f143dd3c3cd898d0af95cde69093f31ad8cf1a6f2f815dd03f540bd90f7e28119cb3140671162a13f358319ab90b6783d542b359dbe04173a9739dd91e02ee25f6473c3957e74234434d83dea5224a100356084c248273d19db3265ebd1239ad2b3bcb332843d66379ea1803866840211f0d1efba668f25393aa0efcfe2604a1b6344ea859aab5278b2d48f242fb6e6d42535cb5a397930ecfa0f897668fb")
        #expect((z[2] >> 1) & 3 == 2)
        let expected = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. "
            + "However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families."
        #expect(String(decoding: try Inflate.zlib(z), as: UTF8.self) == expected)
    }

    @Test func rawStreamReportsConsumedBytes() throws {
        let raw = hexBytes("2b4a2c572882e294d4b49cc4925400")
        let (out, used) = try Inflate.raw(raw + [0xAA, 0xBB])
        #expect(String(decoding: out, as: UTF8.self) == "raw raw raw deflate")
        #expect(used == raw.count)
    }

    @Test func gzipMembersAreConcatenated() throws {
        let g = hexBytes("1f8b08000000000002034bafca2c50c84dcd4d4a2d52c8cf4be50200390c84dd100000001f8b08000000000002034bcc4b512829cfe70200d4fd1d4708000000")
        #expect(String(decoding: try Inflate.gzip(g), as: UTF8.self) == "gzip member one\nand two\n")
    }

    /// Builds a zlib stream of stored blocks in the test and decodes it.
    @Test func storedBlocksRoundTrip() throws {
        var payload: [UInt8] = []
        var state: UInt32 = 12345
        for _ in 0..<70_000 {
            state = state &* 1_103_515_245 &+ 12345
            payload.append(UInt8(truncatingIfNeeded: state >> 16))
        }
        var z: [UInt8] = [0x78, 0x01]
        var offset = 0
        while offset < payload.count {
            let length = min(65_535, payload.count - offset)
            let last: UInt8 = offset + length == payload.count ? 1 : 0
            z.append(last)  // BFINAL, BTYPE 00, then pad to the byte boundary
            z += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            z += payload[offset ..< offset + length]
            offset += length
        }
        let adler = Checksum.adler32(payload)
        z += [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
        #expect(try Inflate.zlib(z) == payload)
    }

    @Test func errorsAreReported() throws {
        let z = hexBytes("78dacb48cdc9c957c8402775148a133353144a325215d2322b5253149272f293b3017a72105a")
        #expect(throws: InflateError.truncated) { try Inflate.zlib(Array(z.prefix(12))) }
        var bad = z
        bad[bad.count - 1] ^= 1
        #expect(throws: InflateError.self) { try Inflate.zlib(bad) }
        #expect(throws: InflateError.invalidBlockType) { try Inflate.raw([0x07, 0x00]) }
        #expect(throws: InflateError.invalidStoredLength) { try Inflate.raw([0x01, 0x05, 0x00, 0x00, 0x00]) }
    }

    @Test func checksums() {
        #expect(Checksum.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(Checksum.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array(repeating: 0x61, count: 1_000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
