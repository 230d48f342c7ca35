import Foundation

/// Scalar conversions between f32 and the 16-bit float formats, in plain Swift bit arithmetic.
///
/// Widening is exact (NaN payloads are kept, subnormals handled); narrowing rounds to nearest,
/// ties to even, overflows to infinity and keeps NaN a (quiet) NaN.
///
/// ```swift
/// TensorConversion.float(fromHalf: 0x3C00)      // 1.0
/// TensorConversion.float(fromBFloat16: 0x4049)  // 3.140625
/// TensorConversion.bfloat16(from: 1.0)          // 0x3F80
/// ```
public enum TensorConversion {
    /// IEEE binary16 bits → f32 (exact).
    @inline(__always)
    public static func float(fromHalf h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x03FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24, exactly representable in f32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// bfloat16 bits → f32 (exact: the top half of the f32 bit pattern).
    @inline(__always)
    public static func float(fromBFloat16 b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// f32 → IEEE binary16 bits, round to nearest even.
    public static func half(from value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exponent = Int((x >> 23) & 0xFF)
        let mantissa = x & 0x7F_FFFF
        if exponent == 0xFF {
            if mantissa == 0 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        let e = exponent - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            let full = mantissa | 0x80_0000
            let shift = UInt32(14 - e)
            var h = full >> shift
            let remainder = full & ((1 << shift) - 1)
            let halfway: UInt32 = 1 << (shift - 1)
            if remainder > halfway || (remainder == halfway && h & 1 == 1) { h += 1 }
            return sign | UInt16(truncatingIfNeeded: h)
        }
        var h = (UInt32(e) << 10) | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && h & 1 == 1) { h += 1 }
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// f32 → bfloat16 bits, round to nearest even.
    public static func bfloat16(from value: Float) -> UInt16 {
        let x = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: x >> 16) | 0x0040 }
        let rounding: UInt32 = 0x7FFF + ((x >> 16) & 1)
        return UInt16(truncatingIfNeeded: (x &+ rounding) >> 16)
    }

    /// Widens `count` little-endian elements of `dtype` (F32, F16, BF16 or F64) at `source`
    /// (any alignment) into `destination`.
    static func widenToFloat(_ source: UnsafeRawPointer, dtype: DType, count: Int,
                             into destination: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count {
                destination[i] = float(fromHalf: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<count {
                destination[i] = float(fromBFloat16: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .f64:
            for i in 0..<count {
                destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
            }
        default:
            preconditionFailure("widenToFloat called with \(dtype)")
        }
    }

    /// Narrows `values` to the little-endian bytes of `dtype` (F32, F16, BF16 or F64).
    static func narrow(_ values: UnsafeBufferPointer<Float>, to dtype: DType,
                       into destination: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32:
            if let base = values.baseAddress { destination.copyMemory(from: base, byteCount: values.count * 4) }
        case .f16:
            for (i, v) in values.enumerated() {
                destination.storeBytes(of: half(from: v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        case .bf16:
            for (i, v) in values.enumerated() {
                destination.storeBytes(of: bfloat16(from: v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        case .f64:
            for (i, v) in values.enumerated() {
                destination.storeBytes(of: Double(v), toByteOffset: 8 * i, as: Double.self)
            }
        default:
            preconditionFailure("narrow called with \(dtype)")
        }
    }
}
