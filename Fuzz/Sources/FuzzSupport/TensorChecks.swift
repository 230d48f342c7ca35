import CALMTensor

extension Harness {
    /// Reads every tensor of an opened checkpoint the way a loader does, checking the promise of
    /// `TensorSource`: everything was validated when it opened, so `info` and `tensor` succeed for
    /// every listed name, sizes agree, and values convert (or the dtype is refused, typed).
    public static func readAll(_ source: any TensorSource, _ context: String) {
        var seen = Set<String>()
        for name in source.tensorNames {
            guard seen.insert(name).inserted else { fail("\(context): tensor '\(name)' listed twice") }
            guard let (dtype, shape) = source.info(name) else { fail("\(context): listed tensor '\(name)' has no info") }
            let t: TensorData
            do { t = try source.tensor(name) } catch { fail("\(context): listed tensor '\(name)' does not open: \(error)") }
            guard t.dtype == dtype, t.shape == shape else { fail("\(context): '\(name)' info and tensor disagree") }
            guard t.byteCount == t.elementCount * dtype.size else {
                fail("\(context): '\(name)' holds \(t.byteCount) bytes for \(t.elementCount) elements of \(dtype)")
            }
            let checksum = t.withUnsafeBytes { raw in raw.reduce(0) { $0 &+ Int($1) } }
            _ = checksum
            do {
                switch dtype {
                case .f32, .f16, .bf16, .f64:
                    let values = try t.floats()
                    guard values.count == t.elementCount else { fail("\(context): '\(name)' floats() count") }
                    if dtype == .f64 { _ = try t.float64s() }
                default:
                    let values = try t.int64s()
                    guard values.count == t.elementCount else { fail("\(context): '\(name)' int64s() count") }
                }
            } catch {
                fail("\(context): '\(name)' of \(dtype) does not convert: \(error)")
            }
        }
        if source.contains("\u{0}no such tensor\u{0}") { fail("\(context): contains() invents a tensor") }
    }
}
