import CALMKernels

/// Element type of a stored tensor, named as safetensors names them.
public enum DType: String, Sendable, CaseIterable, Codable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    /// Whether weights of this type can feed the f32 kernels (widened on the fly).
    public var isFloatingWeight: Bool { self == .f32 || self == .f16 || self == .bf16 }

    /// The kernel storage type for f32/f16/bf16, nil otherwise.
    public var kernelDType: calm_dtype? {
        switch self {
        case .f32: return CALM_F32
        case .f16: return CALM_F16
        case .bf16: return CALM_BF16
        default: return nil
        }
    }

    /// The name Hugging Face configs give this type in `torch_dtype` (f32, f16, bf16; nil otherwise).
    public var torchName: String? {
        switch self {
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        default: return nil
        }
    }

    /// Parses user-facing names such as "f32", "float16", "bf16", "F32".
    public init?(userName: String) {
        switch userName.lowercased() {
        case "f32", "float32", "float": self = .f32
        case "f16", "float16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        default: return nil
        }
    }
}
