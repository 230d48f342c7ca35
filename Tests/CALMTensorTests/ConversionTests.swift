import Foundation
import Testing
@testable import CALMTensor

@Suite struct ConversionTests {
    @Test func halfKnownBitPatterns() {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x3C00, 1), (0xC000, -2), (0x3800, 0.5), (0x7BFF, 65504),
            (0x3555, 0.333251953125), (0x0001, 0x1p-24), (0x03FF, 0x1.ff8p-15), (0x0400, 0x1p-14),
            (0x7C00, .infinity), (0xFC00, -.infinity), (0x8001, -0x1p-24),
        ]
        for (bits, value) in cases {
            #expect(TensorConversion.float(fromHalf: bits) == value, "half 0x\(String(bits, radix: 16))")
        }
        #expect(TensorConversion.float(fromHalf: 0x8000).bitPattern == 0x8000_0000)
        #expect(TensorConversion.float(fromHalf: 0x7E00).isNaN)
        #expect(TensorConversion.float(fromHalf: 0xFE01).isNaN)
    }

    @Test func bfloat16KnownBitPatterns() {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x3F80, 1), (0x4049, 3.140625), (0xC2F7, -123.5), (0x7F7F, 0x1.fep127),
            (0x7F80, .infinity), (0xFF80, -.infinity), (0x0001, Float(bitPattern: 0x0001_0000)),
        ]
        for (bits, value) in cases {
            #expect(TensorConversion.float(fromBFloat16: bits) == value, "bf16 0x\(String(bits, radix: 16))")
        }
        #expect(TensorConversion.float(fromBFloat16: 0x7FC0).isNaN)
        #expect(TensorConversion.float(fromBFloat16: 0x8000).bitPattern == 0x8000_0000)
    }

    @Test func narrowingRoundsToNearestEven() {
        #expect(TensorConversion.half(from: 1) == 0x3C00)
        #expect(TensorConversion.half(from: 65519) == 0x7BFF)
        #expect(TensorConversion.half(from: 65520) == 0x7C00)
        #expect(TensorConversion.half(from: 1 + 0x1p-11) == 0x3C00)        // tie → even
        #expect(TensorConversion.half(from: 1 + 3 * 0x1p-11) == 0x3C02)    // tie → even (up)
        #expect(TensorConversion.half(from: 0x1p-25) == 0x0000)             // tie → even (zero)
        #expect(TensorConversion.half(from: 0x1.8p-25) == 0x0001)
        #expect(TensorConversion.half(from: -0x1p-24) == 0x8001)
        #expect(TensorConversion.half(from: .nan) & 0x7C00 == 0x7C00)
        #expect(TensorConversion.half(from: .nan) & 0x03FF != 0)
        #expect(TensorConversion.bfloat16(from: 1) == 0x3F80)
        #expect(TensorConversion.bfloat16(from: Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie → even
        #expect(TensorConversion.bfloat16(from: Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie → even
        #expect(TensorConversion.bfloat16(from: Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(TensorConversion.bfloat16(from: .greatestFiniteMagnitude) == 0x7F80)
        #expect(TensorConversion.bfloat16(from: .nan) & 0x7FC0 == 0x7FC0)
    }

    @Test func everyHalfAndBFloat16RoundTrips() {
        for bits in UInt16.min ... UInt16.max {
            let h = TensorConversion.float(fromHalf: bits)
            let b = TensorConversion.float(fromBFloat16: bits)
            if h.isNaN { #expect(TensorConversion.half(from: h) & 0x7C00 == 0x7C00) } else {
                #expect(TensorConversion.half(from: h) == bits)
            }
            if b.isNaN { #expect(TensorConversion.float(fromBFloat16: TensorConversion.bfloat16(from: b)).isNaN) } else {
                #expect(TensorConversion.bfloat16(from: b) == bits)
            }
        }
    }

    #if arch(x86_64) || arch(arm64)
    @Test func agreesWithSwiftFloat16() {
        for bits in UInt16.min ... UInt16.max {
            let ours = TensorConversion.float(fromHalf: bits)
            let theirs = Float(Float16(bitPattern: bits))
            #expect(ours.bitPattern == theirs.bitPattern || (ours.isNaN && theirs.isNaN))
        }
        var rng = SplitMix64(state: 7)
        for _ in 0..<200_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            guard !f.isNaN else { continue }
            #expect(TensorConversion.half(from: f) == Float16(f).bitPattern, "f32 0x\(String(f.bitPattern, radix: 16))")
        }
    }
    #endif

    @Test func tensorDataWidening() throws {
        let values: [Float] = [0, 1, -2.5, 0.333333, 65504, 1e-6]
        for dtype in [DType.f32, .f16, .bf16, .f64] {
            let t = try TensorData(name: "v", shape: [2, 3], floats: values, dtype: dtype)
            #expect(t.byteCount == 6 * dtype.size)
            let back = try t.floats()
            for (a, b) in zip(values, back) {
                switch dtype {
                case .f32, .f64: #expect(a == b)
                case .f16: #expect(b == TensorConversion.float(fromHalf: TensorConversion.half(from: a)))
                default: #expect(b == TensorConversion.float(fromBFloat16: TensorConversion.bfloat16(from: a)))
                }
            }
            #expect(try t.float64s().map(Float.init) == back)
            let error = expectCheckpointError { _ = try t.int64s() }
            #expect(error == .unsupportedDType(file: "<memory>", key: "v", dtype: dtype.rawValue))
        }
        let ids = try TensorData(name: "ids", shape: [3], int64s: [-1, 0, 1 << 40])
        #expect(try ids.int64s() == [-1, 0, 1 << 40])
        #expect(expectCheckpointError { _ = try ids.floats() } == .unsupportedDType(file: "<memory>", key: "ids", dtype: "I64"))
        let i32 = try TensorData(name: "i", dtype: .i32, shape: [2], bytes: [Int32(-7), 9].withUnsafeBytes { Array($0) })
        #expect(try i32.int64s() == [-7, 9])
        let flags = try TensorData(name: "b", dtype: .bool, shape: [3], bytes: [1, 0, 1])
        #expect(try flags.int64s() == [1, 0, 1])
        #expect(expectCheckpointError { _ = try TensorData(name: "bad", dtype: .f32, shape: [2], bytes: [0, 0, 0]) }
                    != nil)
    }
}

@Suite struct TensorDataTests {
    @Test func viewsOfSharedStorage() throws {
        let storage = MemoryStorage(floatBytes([1, 2, 3, 4, 5, 6]))
        let a = try TensorData(name: "a", dtype: .f32, shape: [2, 2], storage: storage)
        let b = try TensorData(name: "b", dtype: .f32, shape: [2], storage: storage, byteOffset: 16)
        #expect(try a.floats() == [1, 2, 3, 4])
        #expect(try b.floats() == [5, 6])
        #expect(!a.sharesBytes(with: b))
        #expect(try a.sharesBytes(with: TensorData(name: "c", dtype: .f32, shape: [1], storage: storage, byteOffset: 12)))
        #expect(expectCheckpointError { _ = try TensorData(name: "d", dtype: .f32, shape: [3], storage: storage, byteOffset: 16) }
                    == .outOfBounds(file: "<memory>", key: "d", detail: "bytes [16, +12) exceed its storage (24 bytes)"))
        #expect(a.description == "a F32 [2, 2]")
        #expect(a.elementCount == 4 && a.byteCount == 16)
    }
}
