// The state-dict pickle of a `pytorch_model.bin` (SafeUnpickler: every opcode, the allow-list, the
// tensor builders, memo, marks), wrapped by the harness in a valid archive with storages "0"…"3",
// so that mutations reach the interpreter instead of the zip reader. Opening succeeds and every
// tensor reads, or a CheckpointError is thrown (never execution, never a crash).
import CALMTensor
import Foundation
import FuzzSupport

let storages: [(String, [UInt8])] = (0..<4).map { ("\($0)", [UInt8]((0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37) })) }

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let pickle = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let url = Harness.write(torchArchive(pickle: pickle, storages: storages, zip64: false), to: "pytorch_model.bin")
    do {
        let file = try TorchCheckpointFile(url: url)
        Harness.readAll(file, "pickle")
    } catch let error as CheckpointError {
            Harness.refused(error)
    } catch {
        Harness.untyped(error, "pickle")
    }
    return 0
}

func seeds() throws -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []
    out.append(("v2-state-dict", PickleBuilder.stateDict([
        .init(name: "w", key: "0", numel: 16, size: [2, 3]),
        .init(name: "alias", key: "0", numel: 16, offset: 2, size: [3, 2]),
        .init(name: "h", storageType: "HalfStorage", key: "1", numel: 32, size: [4, 1], stride: [1, 9]),
        .init(name: "ids", storageType: "LongStorage", key: "2", numel: 8, size: [8]),
        .init(name: "mask", storageType: "BoolStorage", key: "3", numel: 64, size: [0, 3]),
    ])))
    // _rebuild_tensor_v3 with an explicit dtype, inside _rebuild_parameter, memoised and fetched
    // back, an OrderedDict built by REDUCE from a list of pairs, STACK_GLOBAL, protocol 4 FRAME.
    var p = PickleBuilder()
    p.bytes = [0x80, 0x04, 0x95] + [UInt8](repeating: 0, count: 8)
    p.global("collections", "OrderedDict")
    p.op("("); p.op("]"); p.op("(")
    p.op("("); p.string("param")
    p.global("torch._utils", "_rebuild_parameter")
    p.op("(")
    p.string("torch._utils"); p.string("_rebuild_tensor_v3"); p.raw([0x93])
    p.op("(")
    p.op("("); p.string("storage"); p.string("torch"); p.string("UntypedStorage"); p.raw([0x93]); p.string("1"); p.string("cpu"); p.int(64); p.op("t")
    p.op("Q"); p.int(0); p.intTuple([4, 4]); p.intTuple([4, 1]); p.raw([0x89]); p.op(")")
    p.global("torch", "bfloat16"); p.op("t"); p.op("R")
    p.raw([0x94]); p.raw([0x88]); p.op(")"); p.op("t"); p.op("R")
    p.op("t")
    p.op("("); p.string("again"); p.raw([0x68, 0x00]); p.op("t")
    p.op("e"); p.op("t"); p.op("R")
    p.op(".")
    out.append(("v3-parameter-memo-ordereddict", p.bytes))
    // _rebuild_tensor (4 arguments), BININT1/BININT2/LONG1, SHORT_BINUNICODE, tuples, BUILD.
    var q = PickleBuilder()
    q.op("}"); q.raw([0x71, 0x00]); q.op("(")
    q.raw([0x8C, 1]); q.raw(Array("t".utf8))
    q.global("torch._utils", "_rebuild_tensor")
    q.op("(")
    q.op("("); q.string("storage"); q.global("torch", "DoubleStorage"); q.string("2"); q.string("cpu"); q.raw([0x4B, 8]); q.op("t")
    q.op("Q"); q.raw([0x4D, 0, 0]); q.raw([0x4B, 2, 0x85]); q.raw([0x8A, 1, 1, 0x85])
    q.op("t"); q.op("R")
    q.op("}"); q.op("b")
    q.op("u"); q.op(".")
    out.append(("rebuild-tensor-build", q.bytes))
    // Refused: a global outside the allow-list.
    var r = PickleBuilder()
    r.global("os", "system"); r.string("echo hi"); r.raw([0x85]); r.op("R"); r.op(".")
    out.append(("refused-global", r.bytes))
    return out
}
