import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// f16 and bf16 copies of a fixture model (written here) load and agree with the f32 model
/// within their precision; so does packing f32 weights as bf16 at load time.
@Suite("Reduced-precision weights", .enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
struct PrecisionTests {
    func hidden(_ model: CALMModel, _ ids: [Int]) throws -> [Float] {
        let rows = [Array(ids[0..<20]), Array(ids[20..<40])]
        return try model.forward(chunks: rows, caches: rows.map { _ in model.makeCache() })
    }

    @Test(arguments: [(DType.f16, 2e-3), (DType.bf16, 2e-2)])
    func reducedPrecisionCopiesAgree(dtype: DType, tolerance: Double) throws {
        let dir = try TemporaryDirectory()
        let reference = try CALMModel.load(directory: try FixtureModels.folder("calm_k4_gqa"))
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url, dtype: dtype)
        let model = try CALMModel.load(directory: copy)
        let ids = try FixtureModels.golden("calm_k4_gqa").tensor("bb.input_ids").int64s().map(Int.init)
        let err = FixtureModels.maxRelativeError(try hidden(model, ids), try hidden(reference, ids))
        #expect(err < tolerance, "\(dtype) relative error \(err)")
        #expect(err > 0, "a \(dtype) copy that is bit-identical to f32 means the conversion did nothing")
    }

    @Test func packingAsBF16AtLoadAgrees() throws {
        let folder = try FixtureModels.folder("calm_k4_mha")
        let reference = try CALMModel.load(directory: folder)
        let bf16 = try CALMModel.load(directory: folder, options: LoadOptions(weightDType: .bf16))
        let ids = try FixtureModels.golden("calm_k4_mha").tensor("bb.input_ids").int64s().map(Int.init)
        let err = FixtureModels.maxRelativeError(try hidden(bf16, ids), try hidden(reference, ids))
        #expect(err < 2e-2 && err > 0)
    }
}
