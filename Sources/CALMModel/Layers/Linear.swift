import CALMKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Memory for packed weight matrices. On Linux, matrices of 2 MiB and more are mapped on their own,
/// 2 MiB-aligned, and advised as transparent-huge-page backed (`MADV_HUGEPAGE`; honoured when the
/// system's THP mode is `madvise` or `always`): every decode step streams all weights, and with 4 KiB
/// pages each page costs a TLB miss and stops the hardware prefetchers. Measured on the 2-vCPU Zen
/// host: 10-15% less time per decode step of a 1.1 GB f32 model. Elsewhere, and for smaller ones, the heap.
enum WeightMemory {
    static let hugePage = 2 << 20

    /// (pointer, mapped length; 0 = from the heap)
    static func allocate(byteCount: Int) -> (UnsafeMutableRawPointer, Int) {
        #if os(Linux)
        if byteCount >= hugePage {
            let length = (byteCount + 4095) & ~4095
            let span = length + hugePage
            if let base = mmap(nil, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
               base != UnsafeMutableRawPointer(bitPattern: -1) {
                let start = (Int(bitPattern: base) + hugePage - 1) & ~(hugePage - 1)
                let aligned = UnsafeMutableRawPointer(bitPattern: start)!
                // give back the unaligned head and the tail beyond the rounded length
                let head = start - Int(bitPattern: base)
                if head > 0 { munmap(base, head) }
                let tail = span - head - length
                if tail > 0 { munmap(aligned + length, tail) }
                _ = madvise(aligned, length, MADV_HUGEPAGE) // advice only: 4 KiB pages if refused
                return (aligned, length)
            }
        }
        #endif
        return (UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64), 0)
    }

    static func deallocate(_ pointer: UnsafeMutableRawPointer, mapped: Int) {
        #if os(Linux)
        if mapped > 0 { munmap(pointer, mapped); return }
        #endif
        pointer.deallocate()
    }
}

/// A linear layer y = x·Wᵀ + b whose weight is packed once, at load time, into the kernels'
/// 32-column panel layout (f32, f16 or bf16 storage; compute is f32).
///
/// `@unchecked Sendable`: after `init` nothing is written — the packed panels and the matrix
/// descriptor live in memory this object (or its fused owner) allocated and only reads
/// (`apply`/`argmax` pass them to the kernels as const pointers), so any number of threads may use
/// one layer at once.
public final class Linear: @unchecked Sendable {
    /// Output features.
    public let outFeatures: Int
    /// Input features.
    public let inFeatures: Int
    /// Storage type of the packed weight.
    public let dtype: calm_dtype
    /// Bias, if the layer has one.
    public let bias: [Float]?
    private let storage: UnsafeMutableRawPointer
    /// Length of `storage`'s mapping (0: heap memory, or a view).
    private let mapped: Int
    /// Set on a part of a `fused` layer: the layer whose storage this one's panels live in.
    private let owner: Linear?
    /// The kernels' descriptor of the packed weight: written in `init` (and by `fused` while
    /// packing its parts), then only read (no `&` on a stored property, which concurrent readers
    /// would turn into an exclusivity violation).
    private let matrix: UnsafeMutablePointer<calm_matrix>
    /// The int8 screen of the weight for `argmax` (`calm_screen_create`), built at the first screened
    /// argmax (or by `prepareArgmaxScreen`) and kept until the layer goes; `tried` stays set when the
    /// weight cannot be screened (non-finite or huge values), so that is found out once.
    private let screen = Locked<(tried: Bool, address: UInt)>((false, 0)) // address: calm_screen *, 0 = none

    /// Packs `weight` (row-major `outFeatures × inFeatures` elements of `sourceDType`).
    public init(weight: UnsafeRawPointer, sourceDType: calm_dtype, outFeatures: Int, inFeatures: Int,
                bias: [Float]?, storageDType: calm_dtype) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.dtype = storageDType
        self.bias = bias
        let bytes = max(calm_matrix_packed_bytes(Int32(outFeatures), Int32(inFeatures), storageDType), 64)
        (storage, mapped) = WeightMemory.allocate(byteCount: bytes)
        owner = nil
        matrix = .allocate(capacity: 1)
        matrix.initialize(to: calm_matrix(n: Int32(outFeatures), k: Int32(inFeatures), dtype: storageDType, data: storage))
        calm_matrix_pack(matrix, weight, sourceDType, inFeatures)
    }

    /// A layer over storage owned by `owner` (a part of a fused layer).
    private init(view data: UnsafeMutableRawPointer, owner: Linear, outFeatures: Int, bias: [Float]?) {
        self.outFeatures = outFeatures
        self.inFeatures = owner.inFeatures
        self.dtype = owner.dtype
        self.bias = bias
        self.storage = data
        self.mapped = 0
        self.owner = owner
        matrix = .allocate(capacity: 1)
        matrix.initialize(to: calm_matrix(n: Int32(outFeatures), k: Int32(owner.inFeatures), dtype: owner.dtype, data: data))
    }

    /// One layer whose outputs are the outputs of `parts` side by side (q, k and v; gate and up),
    /// packed into one allocation, and the parts themselves as layers over their share of it: one
    /// kernel call computes all of them (one pass over the batch's rows, one hand-off to the pool),
    /// each output column by the same FMA chain as the part alone. Every part but the last must have
    /// a whole number of 32-column panels (nil otherwise, and for an empty list).
    public static func fused(_ parts: [(weight: UnsafeRawPointer, sourceDType: calm_dtype, outFeatures: Int, bias: [Float]?)],
                             inFeatures: Int, storageDType: calm_dtype) -> (fused: Linear, parts: [Linear])? {
        guard !parts.isEmpty, parts.dropLast().allSatisfy({ $0.outFeatures % Int(CALM_PANEL) == 0 }) else { return nil }
        let total = parts.reduce(0) { $0 + $1.outFeatures }
        let anyBias = parts.contains { $0.bias != nil }
        let bias: [Float]? = anyBias ? parts.flatMap { $0.bias ?? [Float](repeating: 0, count: $0.outFeatures) } : nil
        // an empty packing, then every part packed into its panels
        let fused = Linear(empty: total, inFeatures: inFeatures, bias: bias, storageDType: storageDType)
        var views: [Linear] = []
        var first = 0
        for part in parts {
            let offset = calm_matrix_packed_bytes(Int32(first), Int32(inFeatures), storageDType)
            let view = Linear(view: fused.storage + offset, owner: fused, outFeatures: part.outFeatures, bias: part.bias)
            calm_matrix_pack(view.matrix, part.weight, part.sourceDType, inFeatures)
            views.append(view)
            first += part.outFeatures
        }
        return (fused, views)
    }

    /// Zero-filled storage for a fused layer.
    private init(empty outFeatures: Int, inFeatures: Int, bias: [Float]?, storageDType: calm_dtype) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.dtype = storageDType
        self.bias = bias
        let bytes = max(calm_matrix_packed_bytes(Int32(outFeatures), Int32(inFeatures), storageDType), 64)
        (storage, mapped) = WeightMemory.allocate(byteCount: bytes)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        owner = nil
        matrix = .allocate(capacity: 1)
        matrix.initialize(to: calm_matrix(n: Int32(outFeatures), k: Int32(inFeatures), dtype: storageDType, data: storage))
    }

    /// Packs an f32 weight given as an array (tests, random models). The packing runs inside
    /// `withUnsafeBytes`: a pointer taken out of it may outlive the array (an optimised build released a
    /// temporary `weight` before the packing read it).
    public convenience init(weight: [Float], outFeatures: Int, inFeatures: Int, bias: [Float]?,
                            storageDType: calm_dtype = CALM_F32) {
        precondition(weight.count == outFeatures * inFeatures)
        self.init(empty: outFeatures, inFeatures: inFeatures, bias: bias, storageDType: storageDType)
        weight.withUnsafeBytes { calm_matrix_pack(matrix, $0.baseAddress, CALM_F32, inFeatures) }
    }

    deinit {
        screen.withLock { calm_screen_destroy(OpaquePointer(bitPattern: $0.address)) }
        matrix.deallocate()
        if owner == nil { WeightMemory.deallocate(storage, mapped: mapped) }
    }

    /// Bytes of packed weight storage (what one full pass reads).
    public var weightBytes: Int { outFeatures * inFeatures * calm_dtype_size(dtype) }

    /// Rows per kernel call: a block of inputs stays in cache while every weight panel streams
    /// past it (rows are independent, so blocking never changes a result).
    static let rowBlock = 1024

    /// y[m × out] (+)= x[m × in]·Wᵀ + b. Rows of x are `inputStride` floats apart (default: in).
    public func apply(_ x: UnsafePointer<Float>, rows: Int, inputStride: Int? = nil, into y: UnsafeMutablePointer<Float>,
                      accumulate: Bool = false, pool: ComputePool) {
        guard rows > 0 else { return }
        let ldx = inputStride ?? inFeatures
        precondition(ldx >= inFeatures)
        let w = UnsafePointer(matrix)
        do {
            var start = 0
            while start < rows {
                let n = min(Self.rowBlock, rows - start)
                let xb = x + start * ldx, yb = y + start * outFeatures
                if let bias {
                    bias.withUnsafeBufferPointer { b in
                        calm_linear(pool.raw, xb, Int32(n), ldx, w, b.baseAddress, yb, outFeatures, accumulate ? 1 : 0)
                    }
                } else {
                    calm_linear(pool.raw, xb, Int32(n), ldx, w, nil, yb, outFeatures, accumulate ? 1 : 0)
                }
                start += n
            }
        }
    }

    /// Array convenience: returns x·Wᵀ + b for `rows` rows.
    public func callAsFunction(_ x: [Float], rows: Int, pool: ComputePool) -> [Float] {
        precondition(x.count == rows * inFeatures)
        guard rows > 0, outFeatures > 0 else { return [] }
        // every element is written by the multiply: no zero-fill first (16 vocabulary rows are 8 MB)
        return x.withUnsafeBufferPointer { xp in
            [Float](unsafeUninitializedCapacity: rows * outFeatures) { yp, count in
                apply(xp.baseAddress!, rows: rows, into: yp.baseAddress!, pool: pool)
                count = rows * outFeatures
            }
        }
    }

    /// Writes row `row` of W (inFeatures floats, widened to f32) into `out`.
    public func unpackRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        calm_matrix_unpack_row(matrix, Int32(row), out)
    }

    /// How `argmax` computes its result; every path gives the same indices.
    public enum ArgmaxPath: String, Sendable, CaseIterable {
        /// The screened path where it pays (`screenMinOutFeatures` outputs or more), else the direct one.
        case automatic
        /// `calm_linear_argmax`: every output as its f32 FMA chain (the reference).
        case direct
        /// `calm_linear_argmax_screened` whatever the size: int8 scores of every output with a rigorous
        /// error bound, then the f32 FMA chain of the outputs the bound cannot rule out. Falls back to
        /// `direct` when the weight cannot be screened.
        case screened
    }

    /// Outputs from which `.automatic` screens. Below this the direct kernel is already short and the
    /// per-call quantisation and bound work would not pay for itself (measured: Docs/Performance.md,
    /// "Screened argmax").
    public static let screenMinOutFeatures = 4096

    /// What `.automatic` means in this process: `CALM_ARGMAX=direct` or `screened` in the environment
    /// pins every `argmax` to that path (comparisons of whole runs); anything else, or unset, is automatic.
    public static let defaultArgmaxPath: ArgmaxPath = {
        guard let raw = ProcessInfo.processInfo.environment["CALM_ARGMAX"], let path = ArgmaxPath(rawValue: raw) else {
            return .automatic
        }
        return path
    }()

    /// Builds the argmax screen now (it is otherwise built at the first screened `argmax`): an int8 copy
    /// of the weight (outFeatures × inFeatures bytes, rounded up to whole panels and groups of 4) plus 16
    /// bytes per output. Returns false when the weight cannot be screened (non-finite or above 2^40 in norm).
    @discardableResult
    public func prepareArgmaxScreen(pool: ComputePool) -> Bool {
        screenPointer(pool: pool) != nil
    }

    /// Bytes the argmax screen holds (0 before it is built, or when the weight cannot be screened).
    public var argmaxScreenBytes: Int {
        let address = screen.withLock { $0.address }
        return calm_screen_bytes(OpaquePointer(bitPattern: address))
    }

    /// Totals of every screened argmax in this process so far (rows, survivors, ...); `reset` zeroes them.
    public static func argmaxScreenTotals(reset: Bool = false) -> calm_screen_stats {
        var stats = calm_screen_stats()
        calm_screen_stats_total(&stats, reset ? 1 : 0)
        return stats
    }

    private func screenPointer(pool: ComputePool) -> OpaquePointer? {
        let address = screen.withLock { state in
            if !state.tried {
                state.tried = true
                state.address = UInt(bitPattern: calm_screen_create(pool.raw, matrix))
            }
            return state.address
        }
        return OpaquePointer(bitPattern: address)
    }

    /// Row-wise argmax of x·Wᵀ (no bias) without materialising the product: the first maximum of each
    /// row, exactly as over the output of `apply` (every path gives the same indices).
    public func argmax(_ x: [Float], rows: Int, pool: ComputePool, path: ArgmaxPath = .automatic) -> [Int32] {
        argmax(x, rows: rows, pool: pool, path: path, maxima: nil)
    }

    /// `argmax` plus each row's maximum, bit-identical to the largest element of `apply`'s row (NaN
    /// when the row holds one: NaN wins, as in `calm_argmax`). Greedy decoding reads it to tell a
    /// failed row (NaN, or no finite value) from a good one without the logits.
    public func argmaxAndMaximum(_ x: [Float], rows: Int, pool: ComputePool,
                                 path: ArgmaxPath = .automatic) -> (indices: [Int32], maxima: [Float]) {
        var maxima = [Float](repeating: 0, count: rows)
        let indices = maxima.withUnsafeMutableBufferPointer { argmax(x, rows: rows, pool: pool, path: path, maxima: $0.baseAddress) }
        return (indices, maxima)
    }

    private func argmax(_ x: [Float], rows: Int, pool: ComputePool, path: ArgmaxPath,
                        maxima: UnsafeMutablePointer<Float>?) -> [Int32] {
        precondition(x.count == rows * inFeatures)
        var out = [Int32](repeating: 0, count: rows)
        guard rows > 0 else { return out }
        let chosen = path == .automatic ? Self.defaultArgmaxPath : path
        let screened = chosen == .screened || (chosen == .automatic && outFeatures >= Self.screenMinOutFeatures)
        let screen = screened ? screenPointer(pool: pool) : nil
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                var start = 0
                while start < rows {
                    let n = min(Self.rowBlock, rows - start)
                    if let screen {
                        calm_linear_argmax_screened(pool.raw, xp.baseAddress! + start * inFeatures, Int32(n), inFeatures,
                                                    matrix, screen, op.baseAddress! + start, maxima.map { $0 + start }, nil)
                    } else {
                        calm_linear_argmax(pool.raw, xp.baseAddress! + start * inFeatures, Int32(n), inFeatures, matrix,
                                           op.baseAddress! + start, maxima.map { $0 + start })
                    }
                    start += n
                }
            }
        }
        return out
    }
}
