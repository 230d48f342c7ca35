import CALMKernels

/// The instruction-set level the numeric kernels run on: chosen once per process (the fastest
/// level on this machine that passes a bit-exact self-check, or `$CALM_ISA`), shown by
/// `calm inspect`, `calm generate --stats`, `calm bench-serve --json` and every benchmark header.
///
/// ```swift
/// print("kernels: \(KernelISA.selection)")   // e.g. "avx2 (the only SIMD level on this CPU)"
/// ```
///
/// The level changes speed only: matrix products give bit-identical results on every level.
public enum KernelISA: String, Sendable, CaseIterable {
    case portable, avx2, avx512

    init(_ isa: calm_isa) {
        switch isa {
        case CALM_ISA_AVX512: self = .avx512
        case CALM_ISA_AVX2: self = .avx2
        default: self = .portable
        }
    }

    /// The level the kernels use now.
    public static var active: KernelISA { KernelISA(calm_isa_active()) }

    /// How the start-up level was chosen, e.g. "avx2 (measured: avx512 0.081 ms, avx2 0.052 ms)".
    public static var selection: String { String(cString: calm_isa_selection()) }

    /// The level chosen at start-up (`$CALM_ISA`, or the measured fastest).
    public static var startupChoice: KernelISA { KernelISA(calm_isa_default()) }

    /// Runs the kernels on `isa` from now on (clamped to what this machine has; returns the level
    /// in use). Process-wide, for benchmarks and tests: not while other threads run kernels.
    @discardableResult
    public static func force(_ isa: KernelISA) -> KernelISA {
        calm_isa_force(isa.level)
        return active
    }

    /// Every level this machine can run, lowest first (each passed its self-check).
    public static var available: [KernelISA] {
        allCases.filter { $0.level.rawValue <= calm_isa_detected().rawValue }
    }

    var level: calm_isa {
        switch self {
        case .portable: CALM_ISA_PORTABLE
        case .avx2: CALM_ISA_AVX2
        case .avx512: CALM_ISA_AVX512
        }
    }
}
