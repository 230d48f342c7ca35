import Foundation

/// A storage reference from a PyTorch pickle's persistent id
/// `('storage', torch.FloatStorage, '<key>', '<location>', numel)`.
struct TorchStorageRef {
    /// Storage type name, e.g. `FloatStorage` or `UntypedStorage`.
    var typeName: String
    /// Element type implied by the storage type (nil for types this reader cannot read).
    var dtype: DType?
    /// Name of the storage's zip entry below `<archive>/data/`.
    var key: String
    /// Declared number of elements of the storage.
    var numel: Int
}

/// A tensor as described by `torch._utils._rebuild_tensor_v2` and friends.
struct TorchTensorRef {
    var storage: TorchStorageRef
    var storageOffset: Int
    var size: [Int]
    var stride: [Int]
    /// The explicit dtype of `_rebuild_tensor_v3` (otherwise the storage's).
    var dtype: DType?
}

/// A value on the unpickler's stack. Containers are reference types, so that the interpreter can
/// empty them all at the end without recursive deinitialisation (see `SafeUnpickler.release`).
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleBox)
    case list(PickleBox)
    case dict(PickleDict)
    /// An allow-listed global (`module`, `name`); inert until REDUCE interprets it.
    case global(String, String)
    case storage(TorchStorageRef)
    case tensor(TorchTensorRef)
    case dtype(DType?, String)

    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let m, let n): return "\(m).\(n)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        case .dtype(_, let n): return "torch.\(n)"
        }
    }
}

final class PickleBox {
    var items: [PickleValue]
    init(_ items: [PickleValue]) { self.items = items }
}

final class PickleDict {
    var pairs: [(PickleValue, PickleValue)] = []
}

/// A pickle interpreter that never executes anything: it understands the opcodes of protocols
/// 2-5 that a PyTorch state dict uses and builds only inert values. `GLOBAL` is accepted only for
/// an allow-list (`collections.OrderedDict`, the `torch._utils._rebuild_*` tensor builders,
/// `torch.*Storage` types and `torch` dtypes); anything else is `CheckpointError.unsafePickle`.
///
/// The result is the state dict as `[(name, tensor)]` in pickle order.
struct SafeUnpickler {
    let file: String
    private let data: [UInt8]
    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    /// Every container created, emptied on exit so that nothing is torn down recursively.
    private var boxes: [PickleBox] = []
    private var dicts: [PickleDict] = []

    static let storageDTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool, "UntypedStorage": .u8,
    ]

    static let torchDTypes: [String: DType] = [
        "float32": .f32, "float": .f32, "float16": .f16, "half": .f16, "bfloat16": .bf16,
        "float64": .f64, "double": .f64, "int64": .i64, "long": .i64, "int32": .i32, "int": .i32,
        "int16": .i16, "short": .i16, "int8": .i8, "uint8": .u8, "bool": .bool,
    ]

    static let otherTorchDTypes: Set<String> = [
        "complex64", "complex128", "cfloat", "cdouble", "complex32", "chalf", "uint16", "uint32", "uint64",
        "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "qint8", "quint8", "qint32",
        "quint4x2", "quint2x4",
    ]

    static let tensorBuilders: Set<String> = [
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
        "_rebuild_parameter_with_state",
    ]

    /// Interprets `data` and returns the state dict it describes.
    ///
    /// - Throws: `CheckpointError.unsafePickle`, `.malformedPickle` or `.truncated`.
    static func stateDict(_ data: [UInt8], file: String) throws -> [(String, TorchTensorRef)] {
        var machine = SafeUnpickler(file: file, data: data)
        defer { machine.release() }
        let result = try machine.run()
        guard case .dict(let dict) = result else {
            throw CheckpointError.malformedPickle(file: file, detail: "data.pkl holds a \(result.kindName), not a state dict")
        }
        var order: [String] = []
        var tensors: [String: TorchTensorRef] = [:]
        for (key, value) in dict.pairs {
            guard case .string(let name) = key else {
                throw CheckpointError.malformedPickle(file: file, detail: "state dict key is a \(key.kindName), not a string")
            }
            guard case .tensor(let t) = value else {
                throw CheckpointError.unsupportedFormat(
                    file: file, detail: "state dict entry '\(name)' is a \(value.kindName), not a tensor")
            }
            if tensors.updateValue(t, forKey: name) == nil { order.append(name) }
        }
        return order.map { ($0, tensors[$0]!) }
    }

    private init(file: String, data: [UInt8]) {
        self.file = file
        self.data = data
    }

    /// Empties every container so that releasing them never recurses through nested values.
    private mutating func release() {
        stack.removeAll()
        memo.removeAll()
        for b in boxes { b.items.removeAll() }
        for d in dicts { d.pairs.removeAll() }
        boxes.removeAll()
        dicts.removeAll()
    }

    // MARK: - errors

    private func malformed(_ detail: String) -> CheckpointError {
        .malformedPickle(file: file, detail: detail)
    }

    // MARK: - reading

    private mutating func byte() throws -> UInt8 {
        guard position < data.count else { throw CheckpointError.truncated(file: file, detail: "data.pkl ends at byte \(position) inside an opcode") }
        defer { position += 1 }
        return data[position]
    }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= data.count - position else {
            throw CheckpointError.truncated(file: file, detail: "data.pkl needs \(n) bytes at byte \(position) but has \(data.count - position)")
        }
        defer { position += n }
        return data[position ..< position + n]
    }

    private mutating func uint(_ n: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    private mutating func length(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard v <= UInt64(data.count) else {
            throw CheckpointError.truncated(file: file, detail: "data.pkl announces \(v) bytes at byte \(position - n), beyond its end")
        }
        return Int(v)
    }

    private mutating func line() throws -> String {
        guard let end = data[position...].firstIndex(of: 0x0A) else {
            throw CheckpointError.truncated(file: file, detail: "data.pkl: unterminated GLOBAL at byte \(position)")
        }
        defer { position = end + 1 }
        guard let s = String(validating: data[position ..< end], as: UTF8.self) else {
            throw malformed("non-UTF-8 GLOBAL name at byte \(position)")
        }
        return s
    }

    private func utf8(_ bytes: ArraySlice<UInt8>, at offset: Int) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw malformed("invalid UTF-8 string at byte \(offset)") }
        return s
    }

    // MARK: - stack

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast(), stack.count >= (marks.last ?? 0) else {
            throw malformed("stack underflow at byte \(position - 1)")
        }
        return v
    }

    private func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw malformed("stack underflow at byte \(position - 1)") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw malformed("no MARK before byte \(position - 1)") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func tuple(_ items: [PickleValue]) -> PickleValue {
        let box = PickleBox(items)
        boxes.append(box)
        return .tuple(box)
    }

    private mutating func newDict() -> PickleDict {
        let d = PickleDict()
        dicts.append(d)
        return d
    }

    // MARK: - interpretation

    private mutating func run() throws -> PickleValue {
        while true {
            let opOffset = position
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let version = try byte()
                guard version <= 5 else { throw malformed("unsupported pickle protocol \(version)") }
            case 0x95: // FRAME
                _ = try uint(8)
            case 0x2E: // STOP
                guard marks.isEmpty, stack.count == 1 else { throw malformed("STOP at byte \(opOffset) with \(stack.count) values on the stack") }
                return stack[0]
            case 0x28: // MARK
                marks.append(stack.count)
            case 0x30: // POP
                _ = try pop()
            case 0x31: // POP_MARK
                _ = try popMark()
            case 0x32: // DUP
                stack.append(try top())
            case 0x4E: stack.append(.none) // NONE
            case 0x88: stack.append(.bool(true)) // NEWTRUE
            case 0x89: stack.append(.bool(false)) // NEWFALSE
            case 0x4A: // BININT
                stack.append(.int(Int(Int32(bitPattern: UInt32(try uint(4))))))
            case 0x4B: // BININT1
                stack.append(.int(Int(try byte())))
            case 0x4D: // BININT2
                stack.append(.int(Int(try uint(2))))
            case 0x8A, 0x8B: // LONG1, LONG4
                let n = op == 0x8A ? Int(try byte()) : try length(4)
                let bytes = try take(n)
                guard n <= 8 else { throw malformed("integer of \(n) bytes at byte \(opOffset) is too large") }
                var v: UInt64 = 0
                for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                if n > 0 && n < 8 && bytes.last! & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }
                stack.append(.int(Int(Int64(bitPattern: v))))
            case 0x47: // BINFLOAT (big-endian)
                var v: UInt64 = 0
                for b in try take(8) { v = v << 8 | UInt64(b) }
                stack.append(.float(Double(bitPattern: v)))
            case 0x58, 0x8C, 0x8D: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let n = try length(op == 0x58 ? 4 : op == 0x8C ? 1 : 8)
                let start = position
                stack.append(.string(try utf8(try take(n), at: start)))
            case 0x54, 0x55: // BINSTRING, SHORT_BINSTRING (Python 2 str: bytes read as Latin-1)
                let n = try length(op == 0x54 ? 4 : 1)
                stack.append(.string(String(try take(n).map { Character(Unicode.Scalar($0)) })))
            case 0x42, 0x43, 0x8E: // BINBYTES, SHORT_BINBYTES, BINBYTES8
                let n = try length(op == 0x42 ? 4 : op == 0x43 ? 1 : 8)
                stack.append(.bytes(Array(try take(n))))
            case 0x29: // EMPTY_TUPLE
                stack.append(tuple([]))
            case 0x74: // TUPLE
                let items = try popMark()
                stack.append(tuple(items))
            case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
                let n = Int(op - 0x84)
                var items: [PickleValue] = []
                for _ in 0..<n { items.append(try pop()) }
                stack.append(tuple(items.reversed()))
            case 0x5D: // EMPTY_LIST
                let box = PickleBox([])
                boxes.append(box)
                stack.append(.list(box))
            case 0x6C: // LIST
                let box = PickleBox(try popMark())
                boxes.append(box)
                stack.append(.list(box))
            case 0x61: // APPEND
                let item = try pop()
                guard case .list(let box) = try top() else { throw malformed("APPEND to a non-list at byte \(opOffset)") }
                box.items.append(item)
            case 0x65: // APPENDS
                let items = try popMark()
                guard case .list(let box) = try top() else { throw malformed("APPENDS to a non-list at byte \(opOffset)") }
                box.items.append(contentsOf: items)
            case 0x7D: // EMPTY_DICT
                stack.append(.dict(newDict()))
            case 0x64: // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw malformed("DICT with an odd number of items at byte \(opOffset)") }
                let d = newDict()
                for i in stride(from: 0, to: items.count, by: 2) { d.pairs.append((items[i], items[i + 1])) }
                stack.append(.dict(d))
            case 0x73: // SETITEM
                let value = try pop()
                let key = try pop()
                guard case .dict(let d) = try top() else { throw malformed("SETITEM on a non-dict at byte \(opOffset)") }
                d.pairs.append((key, value))
            case 0x75: // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of items at byte \(opOffset)") }
                guard case .dict(let d) = try top() else { throw malformed("SETITEMS on a non-dict at byte \(opOffset)") }
                for i in stride(from: 0, to: items.count, by: 2) { d.pairs.append((items[i], items[i + 1])) }
            case 0x71, 0x72: // BINPUT, LONG_BINPUT
                let index = Int(op == 0x71 ? UInt64(try byte()) : try uint(4))
                memo[index] = try top()
            case 0x94: // MEMOIZE
                memo[memo.count] = try top()
            case 0x68, 0x6A: // BINGET, LONG_BINGET
                let index = Int(op == 0x68 ? UInt64(try byte()) : try uint(4))
                guard let v = memo[index] else { throw malformed("memo entry \(index) read before written at byte \(opOffset)") }
                stack.append(v)
            case 0x63: // GLOBAL
                let module = try line()
                let name = try line()
                stack.append(try global(module, name))
            case 0x93: // STACK_GLOBAL
                let nameValue = try pop()
                let moduleValue = try pop()
                guard case .string(let module) = moduleValue, case .string(let name) = nameValue else {
                    throw malformed("STACK_GLOBAL needs two strings at byte \(opOffset)")
                }
                stack.append(try global(module, name))
            case 0x51: // BINPERSID
                stack.append(try persistentLoad(try pop(), at: opOffset))
            case 0x52: // REDUCE
                let args = try pop()
                let callable = try pop()
                stack.append(try reduce(callable, args, at: opOffset))
            case 0x81: // NEWOBJ
                let args = try pop()
                let cls = try pop()
                guard case .global("collections", "OrderedDict") = cls, case .tuple(let t) = args, t.items.isEmpty else {
                    throw CheckpointError.unsafePickle(file: file, detail: "NEWOBJ of \(cls.kindName) at byte \(opOffset) is not allowed")
                }
                stack.append(.dict(newDict()))
            case 0x62: // BUILD
                let state = try pop()
                switch try top() {
                case .dict, .tensor: break // attribute state (e.g. `_metadata`) is irrelevant to the tensors
                default: throw malformed("BUILD on a \(try top().kindName) with \(state.kindName) state at byte \(opOffset)")
                }
            case 0x69, 0x6F, 0x92, 0x82, 0x83, 0x84: // INST, OBJ, NEWOBJ_EX, EXT1/2/4
                throw CheckpointError.unsafePickle(file: file, detail: String(format: "opcode 0x%02X at byte %d is not allowed", op, opOffset))
            default:
                throw malformed(String(format: "unsupported opcode 0x%02X at byte %d", op, opOffset))
            }
        }
    }

    /// Resolves a GLOBAL against the allow-list; never imports or calls anything.
    private func global(_ module: String, _ name: String) throws -> PickleValue {
        switch (module, name) {
        case ("collections", "OrderedDict"):
            return .global(module, name)
        case ("torch._utils", let n) where SafeUnpickler.tensorBuilders.contains(n):
            return .global(module, name)
        case ("torch", let n) where n.hasSuffix("Storage") && n.dropLast(7).allSatisfy({ $0.isLetter || $0.isNumber }):
            return .global(module, name)
        case ("torch.storage", "UntypedStorage"), ("torch.storage", "TypedStorage"):
            return .global("torch", name)
        case ("torch", let n) where SafeUnpickler.torchDTypes[n] != nil || SafeUnpickler.otherTorchDTypes.contains(n):
            return .dtype(SafeUnpickler.torchDTypes[n], n)
        default:
            throw CheckpointError.unsafePickle(
                file: file, detail: "global '\(module).\(name)' is not allowed (only tensor-rebuilding globals are)")
        }
    }

    private func tupleItems(_ v: PickleValue) -> [PickleValue]? {
        if case .tuple(let box) = v { return box.items }
        return nil
    }

    private func ints(_ v: PickleValue, _ what: String, at offset: Int) throws -> [Int] {
        guard let items = tupleItems(v) else { throw malformed("tensor \(what) is a \(v.kindName), not a tuple (byte \(offset))") }
        return try items.map {
            guard case .int(let i) = $0 else { throw malformed("tensor \(what) holds a \($0.kindName) (byte \(offset))") }
            return i
        }
    }

    /// `('storage', torch.XStorage, key, location, numel)` → a storage reference.
    private func persistentLoad(_ pid: PickleValue, at offset: Int) throws -> PickleValue {
        guard let items = tupleItems(pid), items.count == 5, case .string("storage") = items[0],
              case .global("torch", let typeName) = items[1], case .string(let key) = items[2],
              case .int(let numel) = items[4], numel >= 0 else {
            throw malformed("persistent id at byte \(offset) is not ('storage', type, key, location, numel)")
        }
        return .storage(TorchStorageRef(typeName: typeName, dtype: SafeUnpickler.storageDTypes[typeName], key: key, numel: numel))
    }

    /// Interprets REDUCE for the allow-listed callables only.
    private mutating func reduce(_ callable: PickleValue, _ argsValue: PickleValue, at offset: Int) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            throw CheckpointError.unsafePickle(file: file, detail: "REDUCE of a \(callable.kindName) at byte \(offset)")
        }
        guard let args = tupleItems(argsValue) else { throw malformed("REDUCE arguments are not a tuple at byte \(offset)") }
        switch (module, name) {
        case ("collections", "OrderedDict"):
            let d = newDict()
            if let first = args.first {
                guard args.count == 1, case .list(let pairs) = first else { throw malformed("OrderedDict arguments at byte \(offset)") }
                for pair in pairs.items {
                    guard let kv = tupleItems(pair), kv.count == 2 else { throw malformed("OrderedDict item at byte \(offset)") }
                    d.pairs.append((kv[0], kv[1]))
                }
            }
            return .dict(d)
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard let data = args.first, case .tensor = data else { throw malformed("\(name) without a tensor at byte \(offset)") }
            return data
        case ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3"):
            let minimum = name == "_rebuild_tensor" ? 4 : name == "_rebuild_tensor_v2" ? 6 : 7
            guard args.count >= minimum, args.count <= minimum + 1 else {
                throw malformed("\(name) with \(args.count) arguments at byte \(offset)")
            }
            guard case .storage(let storage) = args[0] else {
                throw malformed("\(name) argument 0 is a \(args[0].kindName), not a storage (byte \(offset))")
            }
            guard case .int(let storageOffset) = args[1] else { throw malformed("\(name) storage offset at byte \(offset)") }
            var t = TorchTensorRef(storage: storage, storageOffset: storageOffset,
                                   size: try ints(args[2], "size", at: offset),
                                   stride: try ints(args[3], "stride", at: offset), dtype: nil)
            if name == "_rebuild_tensor_v3" {
                guard case .dtype(let dtype, let dtypeName) = args[6] else { throw malformed("\(name) dtype at byte \(offset)") }
                t.dtype = dtype
                if dtype == nil { t.storage.typeName = dtypeName }
            }
            return .tensor(t)
        default:
            throw CheckpointError.unsafePickle(file: file, detail: "calling '\(module).\(name)' at byte \(offset) is not allowed")
        }
    }
}
