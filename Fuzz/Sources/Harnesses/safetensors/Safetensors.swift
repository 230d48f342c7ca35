// A `.safetensors` file: 8-byte header length, JSON header, data section (SafetensorsFile,
// MiniJSON, TensorData conversions). Opening either succeeds, and then every tensor reads, or
// throws a CheckpointError.
import CALMTensor
import Foundation
import FuzzSupport

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let url = Harness.write(UnsafeRawBufferPointer(start: data, count: size), to: "model.safetensors")
    do {
        let file = try SafetensorsFile(url: url)
        Harness.readAll(file, "safetensors")
        for name in file.tensorNames {
            guard let range = file.dataOffsets(name), file.dataOffset + range.upperBound <= size else {
                Harness.fail("safetensors: '\(name)' data offsets outside the file")
            }
        }
    } catch let error as CheckpointError {
            Harness.refused(error)
    } catch {
        Harness.untyped(error, "safetensors")
    }
    return 0
}

/// Small files written by SafetensorsWriter (every dtype, scalars, empty tensors, metadata) and a
/// few hand-made headers (aliases, null metadata, extra keys).
func seeds() throws -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []
    func written(_ name: String, _ build: (inout SafetensorsWriter) throws -> Void) throws {
        var w = SafetensorsWriter(metadata: ["format": "pt"])
        try build(&w)
        let url = Harness.scratch.appendingPathComponent("seed.safetensors")
        try w.write(to: url)
        out.append((name, Array(try Data(contentsOf: url))))
    }
    try written("floats") { w in
        try w.add(name: "model.embed.weight", shape: [2, 3], floats: [1, -2, 0.5, 3, 1e-8, 65504])
        try w.add(name: "norm.f16", shape: [4], floats: [1, 2, -0, 7], dtype: .f16)
        try w.add(name: "norm.bf16", shape: [2, 2], floats: [1, 2, 3, 4], dtype: .bf16)
        try w.add(name: "scalar.f64", shape: [], floats: [3.25], dtype: .f64)
    }
    try written("ints") { w in
        w.add(name: "ids", dtype: .i64, shape: [2], bytes: [Int64(-3), 1 << 40].withUnsafeBytes { Array($0) })
        w.add(name: "i32", dtype: .i32, shape: [1, 1], bytes: [1, 0, 0, 0x80])
        w.add(name: "i16", dtype: .i16, shape: [2], bytes: [1, 2, 3, 4])
        w.add(name: "i8", dtype: .i8, shape: [3], bytes: [0xFF, 0, 1])
        w.add(name: "u8", dtype: .u8, shape: [3], bytes: [0xFF, 0, 1])
        w.add(name: "mask", dtype: .bool, shape: [2], bytes: [1, 0])
    }
    try written("empty-tensors") { w in
        w.add(name: "none", dtype: .f32, shape: [0, 5], bytes: [])
        w.add(name: "also.none", dtype: .bf16, shape: [3, 0], bytes: [])
    }
    try written("no-tensors") { _ in }
    func header(_ json: String, data: [UInt8]) -> [UInt8] {
        let h = Array(json.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
    }
    out.append(("aliases", header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":null}"#,
                                  data: [0, 0, 128, 63, 0, 0, 0, 64])))
    out.append(("extra-keys", header(#"{"__metadata__":{"format":"pt","x":"\u00e9\n"},"t":{"dtype":"U8","shape":[1,1,1],"data_offsets":[0,1],"note":[1,{"k":true}]}}   "#,
                                     data: [7])))
    return out
}
