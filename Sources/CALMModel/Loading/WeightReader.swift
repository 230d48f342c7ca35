import CALMKernels
import CALMTensor
import Foundation

/// Reads named weights from a checkpoint with the reference's naming rules applied: a key prefix
/// (`ae_model.` inside CALM files), alias groups (`generative_head.` ≡ `mlp_generator.`, the tied
/// autoencoder matrix under either name), and shape checks that name the file and key at fault.
struct WeightReader {
    let source: any TensorSource
    let prefix: String
    /// Storage type for packed matrices; nil keeps each weight's own type.
    let storageDType: DType?

    var fileName: String { source.url.lastPathComponent }

    func has(_ name: String) -> Bool { source.info(prefix + name) != nil }

    /// The same checkpoint read under a further key prefix (a backbone inside a larger model).
    func prefixed(_ more: String) -> WeightReader { WeightReader(source: source, prefix: prefix + more, storageDType: storageDType) }

    /// The first of `names` (prefixed) present in the file, as a tensor with the expected shape.
    func tensor(_ names: [String], shape: [Int]) throws -> TensorData {
        for name in names {
            let key = prefix + name
            guard let info = source.info(key) else { continue }
            guard info.shape == shape else {
                throw ModelError.weightShapeMismatch(file: fileName, key: key, expected: shape, actual: info.shape)
            }
            guard info.dtype.isFloatingWeight else {
                throw ModelError.unsupportedWeightDType(file: fileName, key: key, dtype: info.dtype.rawValue)
            }
            return try source.tensor(key)
        }
        throw ModelError.missingWeight(file: fileName, keys: names.map { prefix + $0 })
    }

    func floats(_ name: String, shape: [Int]) throws -> [Float] {
        try tensor([name], shape: shape).floats()
    }

    func linear(_ name: String, out: Int, in inFeatures: Int, bias: Bool) throws -> Linear {
        try linear([name], out: out, in: inFeatures, bias: bias)
    }

    /// A packed linear layer from `<name>.weight` (and `<name>.bias`), trying alias names in order.
    func linear(_ names: [String], out: Int, in inFeatures: Int, bias: Bool) throws -> Linear {
        let weight = try tensor(names.map { $0 + ".weight" }, shape: [out, inFeatures])
        let stem = names.first { has($0 + ".weight") } ?? names[0]
        let b: [Float]? = bias ? try tensor([stem + ".bias"], shape: [out]).floats() : nil
        return try Self.pack(weight, out: out, in: inFeatures, bias: b, storage: storageDType)
    }

    /// Bias-free layers `<name>.weight` (one per name, `outs[i]` outputs each) packed side by side
    /// into one fused layer (`Linear.fused`), with each part as a layer over its share; without a
    /// fused layer (nil) when the parts cannot share one (different dtypes, a part that is not a
    /// whole number of panels).
    func fusedLinears(_ names: [String], outs: [Int], in inFeatures: Int) throws -> (fused: Linear?, parts: [Linear]) {
        let weights = try zip(names, outs).map { try tensor([$0.0 + ".weight"], shape: [$0.1, inFeatures]) }
        let sources = try weights.map { w -> calm_dtype in
            guard let d = w.dtype.kernelDType else {
                throw ModelError.unsupportedWeightDType(file: fileName, key: w.name, dtype: w.dtype.rawValue)
            }
            return d
        }
        let targets = sources.map { storageDType?.kernelDType ?? $0 }
        if Set(targets.map(\.rawValue)).count == 1 {
            // keep every tensor's bytes alive while packing
            func pack(_ i: Int, _ acc: [(weight: UnsafeRawPointer, sourceDType: calm_dtype, outFeatures: Int, bias: [Float]?)])
                -> (fused: Linear, parts: [Linear])? {
                if i == weights.count { return Linear.fused(acc, inFeatures: inFeatures, storageDType: targets[0]) }
                return weights[i].withUnsafeBytes { raw in
                    pack(i + 1, acc + [(raw.baseAddress!, sources[i], outs[i], nil)])
                }
            }
            if let (fused, parts) = pack(0, []) { return (fused, parts) }
        }
        return (nil, try zip(names, outs).map { try linear($0.0, out: $0.1, in: inFeatures, bias: false) })
    }

    /// A GPT-2 `Conv1D` (`<name>.weight` stored (in, out), the transpose of a Linear's, and
    /// `<name>.bias` of `out`), transposed into a packed `Linear`.
    func conv1D(_ name: String, in inFeatures: Int, out: Int) throws -> Linear {
        try transposedConv1D(name, in: inFeatures, out: out) { weight, source, target, bias in
            Linear(weight: weight, sourceDType: source, outFeatures: out, inFeatures: inFeatures, bias: bias, storageDType: target)
        }
    }

    /// GPT-2's fused `c_attn` (a `Conv1D` of `width` → 3·`width`) as q, k and v: views of one packing
    /// when `width` is a whole number of panels (one multiply for all three), else three layers.
    func conv1DQKV(_ name: String, width: Int) throws -> QKVProjection {
        try transposedConv1D(name, in: width, out: 3 * width) { weight, source, target, bias in
            let size = Int(calm_dtype_size(source))
            let parts = (0..<3).map { p in
                (weight: UnsafeRawPointer(weight + p * width * width * size), sourceDType: source, outFeatures: width,
                 bias: Optional(Array(bias[(p * width)..<((p + 1) * width)])))
            }
            if let (fused, views) = Linear.fused(parts, inFeatures: width, storageDType: target) {
                return QKVProjection(q: views[0], k: views[1], v: views[2], fused: fused)
            }
            let separate = parts.map {
                Linear(weight: $0.weight, sourceDType: source, outFeatures: width, inFeatures: width, bias: $0.bias, storageDType: target)
            }
            return QKVProjection(q: separate[0], k: separate[1], v: separate[2], fused: nil)
        }
    }

    /// Reads `<name>.weight` (in, out) and `<name>.bias`, transposes the weight to (out, in) element by
    /// element in the file's own dtype (bf16 stays bf16) and hands it to `pack` with the source and
    /// storage dtypes and the bias.
    private func transposedConv1D<T>(_ name: String, in inFeatures: Int, out: Int,
                                     pack: (UnsafeRawPointer, calm_dtype, calm_dtype, [Float]) throws -> T) throws -> T {
        let weight = try tensor([name + ".weight"], shape: [inFeatures, out])
        let bias = try floats(name + ".bias", shape: [out])
        guard let source = weight.dtype.kernelDType else {
            throw ModelError.unsupportedWeightDType(file: fileName, key: weight.name, dtype: weight.dtype.rawValue)
        }
        let target = storageDType?.kernelDType ?? source
        let size = weight.dtype.size
        let transposed = UnsafeMutableRawPointer.allocate(byteCount: max(out * inFeatures * size, 1), alignment: 64)
        defer { transposed.deallocate() }
        weight.withUnsafeBytes { raw in
            guard let src = raw.baseAddress else { return }
            switch size {
            case 2: Self.transpose(src, into: transposed, rows: inFeatures, columns: out, as: UInt16.self)
            default: Self.transpose(src, into: transposed, rows: inFeatures, columns: out, as: UInt32.self)
            }
        }
        return try pack(UnsafeRawPointer(transposed), source, target, bias)
    }

    /// dst (columns × rows) = transpose of src (rows × columns), elements of `T`, in 32×32 tiles;
    /// src may be unaligned (tensors in a mapped file).
    static func transpose<T: FixedWidthInteger>(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer,
                                                rows: Int, columns: Int, as: T.Type) {
        let d = dst.bindMemory(to: T.self, capacity: rows * columns)
        let size = MemoryLayout<T>.size
        let tile = 32
        for r0 in stride(from: 0, to: rows, by: tile) {
            for c0 in stride(from: 0, to: columns, by: tile) {
                for r in r0..<min(r0 + tile, rows) {
                    for c in c0..<min(c0 + tile, columns) {
                        d[c * rows + r] = src.loadUnaligned(fromByteOffset: (r * columns + c) * size, as: T.self)
                    }
                }
            }
        }
    }

    func rmsNorm(_ name: String, size: Int, eps: Double) throws -> RMSNorm {
        RMSNorm(weight: try floats(name + ".weight", shape: [size]), eps: Float(eps))
    }

    func layerNorm(_ names: [String], size: Int, eps: Float = 1e-6) throws -> LayerNorm {
        let w = try tensor(names.map { $0 + ".weight" }, shape: [size])
        let stem = names.first { has($0 + ".weight") } ?? names[0]
        let b = try tensor([stem + ".bias"], shape: [size])
        return LayerNorm(weight: try w.floats(), bias: try b.floats(), eps: eps)
    }

    static func pack(_ weight: TensorData, out: Int, in inFeatures: Int, bias: [Float]?, storage: DType?) throws -> Linear {
        guard let source = weight.dtype.kernelDType else {
            throw ModelError.unsupportedWeightDType(file: "", key: weight.name, dtype: weight.dtype.rawValue)
        }
        let target = storage?.kernelDType ?? source
        return weight.withUnsafeBytes { raw in
            Linear(weight: raw.baseAddress!, sourceDType: source, outFeatures: out, inFeatures: inFeatures,
                   bias: bias, storageDType: target)
        }
    }
}

/// Row lookups into an embedding matrix kept in its file (memory-mapped, any float dtype), so a
/// 128k-row table costs no memory until rows are used.
public struct EmbeddingTable: Sendable {
    public let rows: Int
    public let dim: Int
    let tensor: TensorData
    let dtype: calm_dtype

    init(tensor: TensorData) throws {
        guard tensor.shape.count == 2, let dtype = tensor.dtype.kernelDType else {
            throw ModelError.unsupportedWeightDType(file: "", key: tensor.name, dtype: tensor.dtype.rawValue)
        }
        self.tensor = tensor
        self.rows = tensor.shape[0]
        self.dim = tensor.shape[1]
        self.dtype = dtype
    }

    /// Writes row `id` as f32 into `out` (dim floats).
    public func lookup(_ id: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(id >= 0 && id < rows, "token id \(id) outside the embedding table (\(rows) rows)")
        let elementSize = calm_dtype_size(dtype)
        tensor.withUnsafeBytes { raw in
            calm_convert_to_f32(raw.baseAddress! + id * dim * elementSize, dtype, out, dim)
        }
    }

    /// Embeds `ids` into a new array of ids.count × dim floats.
    public func lookup(_ ids: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: ids.count * dim)
        out.withUnsafeMutableBufferPointer { p in
            for (i, id) in ids.enumerated() { lookup(id, into: p.baseAddress! + i * dim) }
        }
        return out
    }
}
