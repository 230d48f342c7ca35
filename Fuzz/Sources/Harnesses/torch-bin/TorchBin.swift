// A whole `pytorch_model.bin` (ZipArchive: end records, ZIP64, central directory, local headers;
// then the pickle and the storages; TorchCheckpointFile): opening succeeds and every tensor reads,
// or a CheckpointError is thrown. Through CheckpointLoader's sniffing, as model loading does.
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
    let url = Harness.write(UnsafeRawBufferPointer(start: data, count: size), to: "pytorch_model.bin")
    do {
        let source = try CheckpointLoader.open(file: url)
        Harness.readAll(source, "pytorch_model.bin")
    } catch let error as CheckpointError {
            Harness.refused(error)
    } catch {
        Harness.untyped(error, "pytorch_model.bin")
    }
    return 0
}

/// The archive of the unit tests (three storages, aliases, an offset view, a scalar, an empty
/// tensor) in each zip layout, and smaller ones.
func seeds() throws -> [(String, [UInt8])] {
    let pickle = PickleBuilder.stateDict([
        .init(name: "w", key: "0", numel: 6, size: [2, 3]),
        .init(name: "w_alias", key: "0", numel: 6, size: [2, 3]),
        .init(name: "w_tail", key: "0", numel: 6, offset: 4, size: [2]),
        .init(name: "h", storageType: "HalfStorage", key: "1", numel: 3, size: [3, 1], stride: [1, 7]),
        .init(name: "ids", storageType: "LongStorage", key: "2", numel: 2, size: [2]),
        .init(name: "scalar", key: "3", numel: 1, size: []),
        .init(name: "empty", key: "4", numel: 0, size: [0, 5], stride: [1, 1]),
    ])
    let floats: [Float] = [1, 2, 3, 4, 5, 6]
    let half: [UInt16] = [0x3C00, 0xC000, 0x3800]
    let storages: [(String, [UInt8])] = [
        ("0", floats.withUnsafeBytes { Array($0) }), ("1", half.withUnsafeBytes { Array($0) }),
        ("2", [Int64(-3), 1 << 40].withUnsafeBytes { Array($0) }), ("3", [0, 0, 16, 65]), ("4", []),
    ]
    let small = PickleBuilder.stateDict([.init(name: "b", storageType: "BFloat16Storage", key: "0", numel: 2, size: [2])])
    return [
        ("zip64", torchArchive(pickle: pickle, storages: storages)),
        ("zip32", torchArchive(pickle: pickle, storages: storages, zip64: false)),
        ("zip64-extra", torchArchive(pickle: pickle, storages: storages, prefix: "pytorch_model", zip64Extra: true)),
        ("small", torchArchive(pickle: small, storages: [("0", [0x80, 0x3F, 0, 0x40])], zip64: false)),
    ]
}
