import CALMModel
import Testing

/// Floating-point config values that no model can run with (a JSON `1e999` decodes to infinity) are
/// refused at load with the key named, for every family's config.
@Suite("Config number limits")
struct ConfigNumberLimitsTests {
    static func failingKey(_ body: () throws -> Void) -> String? {
        do { try body() } catch let ModelError.invalidConfig(_, key, _) { return key } catch { return "other error: \(error)" }
        return nil
    }

    @Test(arguments: [Double.infinity, -.infinity, .nan, 0, -1])
    func ropeThetaMustBePositiveAndFinite(theta: Double) {
        var calm = CALMConfig()
        calm.ropeTheta = theta
        #expect(Self.failingKey { try calm.validate(file: "config.json") } == "rope_theta")
        var llama = LlamaCausalLMConfig()
        llama.ropeTheta = theta
        #expect(Self.failingKey { try llama.validate(file: "config.json") } == "rope_theta")
    }

    @Test(arguments: [Double.infinity, .nan, -1e-6])
    func rmsNormEpsilonMustBeFiniteAndNotNegative(eps: Double) {
        var calm = CALMConfig()
        calm.rmsNormEps = eps
        #expect(Self.failingKey { try calm.validate(file: "config.json") } == "rms_norm_eps")
        var llama = LlamaCausalLMConfig()
        llama.rmsNormEps = eps
        #expect(Self.failingKey { try llama.validate(file: "config.json") } == "rms_norm_eps")
        var ae = AutoencoderConfig()
        ae.rmsNormEps = eps
        #expect(Self.failingKey { try ae.validate(file: "autoencoder/config.json") } == "rms_norm_eps")
    }

    @Test func theDefaultsAreValid() throws {
        try CALMConfig().validate(file: "config.json")
        try LlamaCausalLMConfig().validate(file: "config.json")
        try AutoencoderConfig().validate(file: "config.json")
    }
}
