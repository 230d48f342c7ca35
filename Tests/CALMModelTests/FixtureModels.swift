import CALMKernels
import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation

/// Helpers shared by the model tests: fixture folders and modified copies of them.
enum FixtureModels {
    static func folder(_ name: String) throws -> URL {
        try SharedFixtures.calmFixtures().appendingPathComponent(name)
    }

    static func golden(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(url: try SharedFixtures.calmFixtures().appendingPathComponent("golden_\(name).safetensors"))
    }

    /// Copies a fixture model folder into `dir`, converting every float tensor to `dtype`,
    /// dropping the tensors named in `drop`, replacing shapes, or editing the config.
    static func copy(_ name: String, to dir: URL, dtype: DType = .f32, drop: Set<String> = [],
                     transform: ((inout [String: Any]) -> Void)? = nil,
                     reshape: [String: [Int]] = [:]) throws -> URL {
        let src = try folder(name)
        let out = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let source = try SafetensorsFile(url: src.appendingPathComponent("model.safetensors"))
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        for key in source.tensorNames where !drop.contains(key) {
            let t = try source.tensor(key)
            if let shape = reshape[key] {
                try writer.add(name: key, shape: shape, floats: [Float](repeating: 0.5, count: shape.reduce(1, *)))
            } else if t.dtype.isFloatingWeight && dtype != t.dtype {
                try writer.add(name: key, shape: t.shape, floats: try t.floats(), dtype: dtype)
            } else {
                writer.add(t)
            }
        }
        try writer.write(to: out.appendingPathComponent("model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("config.json"))) as! [String: Any]
        if let ae = config["ae_path"] as? String { config["ae_path"] = src.appendingPathComponent(ae).standardizedFileURL.path }
        transform?(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: out.appendingPathComponent("config.json"))
        return out
    }

    static func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
        var diff = 0.0, ref = 0.0
        for (x, y) in zip(a, b) { diff = max(diff, abs(Double(x) - Double(y))); ref = max(ref, abs(Double(y))) }
        return diff / max(ref, 1e-30)
    }
}
