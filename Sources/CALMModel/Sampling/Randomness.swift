import Foundation

/// The random numbers one sequence consumes: the head's uniform noise and the sampler's
/// selection draws. Each sequence owns its own stream, so its output does not depend on which
/// other sequences share a batch.
public protocol SequenceRandomness: AnyObject {
    /// `count` floats uniform in [0, 1) (the reference's `torch.rand`).
    func uniformFloats(count: Int) -> [Float]
    /// One double uniform in [0, 1) (the reference's `random.random()`).
    func uniformDouble() -> Double
}

/// A seeded xoshiro256** stream (seed expanded with SplitMix64). Same seed, same stream, on
/// every machine.
///
/// `@unchecked Sendable`: the state `s` is an unsynchronised `var`; each instance is one request's
/// (or one training/evaluation step's) random stream and is used by one thread at a time: in the
/// engine, only the compute thread draws from it, inside `ModelFamily.step` (the scheduler actor
/// just passes it along in `StepEntry`).
public final class SeededRandomness: SequenceRandomness, @unchecked Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// A stream seeded from the system's entropy.
    public convenience init() { self.init(seed: UInt64.random(in: .min ... .max)) }

    @inline(__always)
    public func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    public func uniformFloats(count: Int) -> [Float] {
        (0..<count).map { _ in Float(next() >> 40) * 0x1p-24 }
    }

    public func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// Replays recorded values (golden fixtures' injected noise and selection draws). Running out is
/// recorded in `exhausted` and yields 0.5, so a conformance check fails instead of crashing.
///
/// `@unchecked Sendable`: the replay cursors are unsynchronised `var`s; each instance replays one
/// conformance check's recorded draws and is used by that check's thread only.
public final class ScriptedRandomness: SequenceRandomness, @unchecked Sendable {
    private var floats: [Float]
    private var doubles: [Double]
    private var floatIndex = 0, doubleIndex = 0
    public private(set) var exhausted = false

    public init(floats: [Float], doubles: [Double] = []) {
        self.floats = floats
        self.doubles = doubles
    }

    public func uniformFloats(count: Int) -> [Float] {
        guard floatIndex + count <= floats.count else {
            exhausted = true
            return [Float](repeating: 0.5, count: count)
        }
        defer { floatIndex += count }
        return Array(floats[floatIndex..<(floatIndex + count)])
    }

    public func uniformDouble() -> Double {
        guard doubleIndex < doubles.count else { exhausted = true; return 0.5 }
        defer { doubleIndex += 1 }
        return doubles[doubleIndex]
    }

    /// Whether every recorded value was consumed.
    public var fullyConsumed: Bool { floatIndex == floats.count && doubleIndex == doubles.count }
    /// How many recorded floats and doubles were consumed so far.
    public var consumed: (floats: Int, doubles: Int) { (floatIndex, doubleIndex) }
}

extension SeededRandomness {
    /// `count` standard normals (Marsaglia's polar method on 24-bit uniforms in (−1, 1): one
    /// log and one square root per pair, no trigonometry).
    public func normalFloats(count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        var i = 0
        while i < count {
            let r = next()
            let u = Float(Int32(truncatingIfNeeded: r >> 40) - (1 << 23)) * 0x1p-23 + 0x1p-24
            let v = Float(Int32(truncatingIfNeeded: (r >> 16) & 0xFF_FFFF) - (1 << 23)) * 0x1p-23 + 0x1p-24
            let s = u * u + v * v
            if s >= 1 || s == 0 { continue }
            let f = (-2 * logf(s) / s).squareRoot()
            out[i] = u * f
            if i + 1 < count { out[i + 1] = v * f }
            i += 2
        }
        return out
    }
}
