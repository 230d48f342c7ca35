import CALMKernels
import Testing

@Suite struct ConvertTests {
    @Test func f16WideningIsExhaustivelyExact() {
        let all = (0..<65536).map { UInt16($0) }
        var out = [Float](repeating: 0, count: all.count)
        all.withUnsafeBufferPointer { calm_convert_to_f32($0.baseAddress, CALM_F16, &out, all.count) }
        for (i, h) in all.enumerated() {
            let ref = Float(Float16(bitPattern: h))
            if ref.isNaN {
                #expect(out[i].isNaN, "f16 \(h)")
                #expect(out[i].sign == ref.sign)
            } else {
                #expect(out[i].bitPattern == ref.bitPattern, "f16 \(h)")
            }
        }
    }

    @Test func bf16WideningIsExhaustivelyExact() {
        let all = (0..<65536).map { UInt16($0) }
        var out = [Float](repeating: 0, count: all.count)
        all.withUnsafeBufferPointer { calm_convert_to_f32($0.baseAddress, CALM_BF16, &out, all.count) }
        for (i, h) in all.enumerated() {
            #expect(out[i].bitPattern == UInt32(h) << 16)
        }
    }

    static func narrowingInputs() -> [Float] {
        var v: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude,
                          .leastNonzeroMagnitude, .leastNormalMagnitude, 65504, 65519.99, 65520, 65536, 1e-8,
                          2.9802322e-8, 5.9604645e-8, 8.940697e-8, 6.1035156e-5, 6.097555e-5, 3.0517578e-5]
        v.append(Float(bitPattern: 0x7F80_0001)) // signalling NaN
        // every f16 value and the midpoints next to it (round-half-even cases)
        for h in 0..<0x7C00 {
            let a = Float(Float16(bitPattern: UInt16(h)))
            let b = Float(Float16(bitPattern: UInt16(h + 1)))
            let mid = (Double(a) + Double(b)) / 2
            v += [a, Float(mid), Float(mid).nextUp, Float(mid).nextDown]
        }
        // bf16 midpoints and random bit patterns
        var rng = TestRNG(7)
        for _ in 0..<100_000 {
            let u = UInt32(truncatingIfNeeded: rng.next())
            v.append(Float(bitPattern: u))
            v.append(Float(bitPattern: (u & 0xFFFF_0000) | 0x8000))
        }
        return v + v.map { -$0 }
    }

    static func refBF16(_ f: Float) -> UInt16 {
        if f.isNaN { return UInt16(f.bitPattern >> 16) | 0x40 }
        let u = f.bitPattern
        let lower = u & 0xFFFF
        var hi = u >> 16
        if lower > 0x8000 || (lower == 0x8000 && hi & 1 == 1) { hi += 1 }
        return UInt16(hi)
    }

    @Test func narrowingRoundsToNearestEven() {
        let v = Self.narrowingInputs()
        var h = [UInt16](repeating: 0, count: v.count)
        var b = [UInt16](repeating: 0, count: v.count)
        v.withUnsafeBufferPointer { calm_convert_from_f32($0.baseAddress, &h, CALM_F16, v.count) }
        v.withUnsafeBufferPointer { calm_convert_from_f32($0.baseAddress, &b, CALM_BF16, v.count) }
        var bad = 0
        for i in v.indices {
            let ref16 = Float16(v[i])
            if v[i].isNaN {
                if !Float16(bitPattern: h[i]).isNaN || !Float(bitPattern: UInt32(b[i]) << 16).isNaN { bad += 1 }
                continue
            }
            if h[i] != ref16.bitPattern { bad += 1 }
            if b[i] != Self.refBF16(v[i]) { bad += 1 }
        }
        #expect(bad == 0)
    }

    @Test func f32RoundTripAndSizes() {
        #expect(calm_dtype_size(CALM_F32) == 4)
        #expect(calm_dtype_size(CALM_F16) == 2)
        #expect(calm_dtype_size(CALM_BF16) == 2)
        let v: [Float] = [1, 2, 3.5, -.infinity]
        var out = [Float](repeating: 0, count: 4)
        v.withUnsafeBufferPointer { calm_convert_to_f32($0.baseAddress, CALM_F32, &out, 4) }
        #expect(out == v)
    }
}
