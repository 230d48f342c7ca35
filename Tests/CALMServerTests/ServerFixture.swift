import CALMDefaultModel
import CALMEngine
import CALMModel
import CALMServer
import CALMTokenizer
import Foundation

/// A running server for a test: a tiny random CALM model (vocabulary 512) with a small
/// byte-level tokenizer, listening on 127.0.0.1 and a free port.
final class ServerFixture: Sendable {
    let server: HTTPServer
    let handler: OpenAIHandler
    var engine: CALMEngine { handler.engine }
    var port: Int { server.port }

    static let model: CALMModel? = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-server-tests-\(ProcessInfo.processInfo.processIdentifier)")
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        c.maxPositionEmbeddings = 256
        do {
            try RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: dir, seed: 21, embedAutoencoder: true)
            return try CALMModel.load(directory: dir)
        } catch { return nil }
    }()

    /// Ids 0…94 are the printable ASCII characters; the rest are two-letter tokens, so every id
    /// the random model draws decodes to text (the special ids at the top included).
    static let tokenizer: (any TextTokenizer)? = {
        var vocabulary: [[UInt8]?] = []
        for id in 0..<512 {
            vocabulary.append(id < 95 ? [UInt8(0x20 + id)] : [UInt8(0x41 + id / 26 % 26), UInt8(0x61 + id % 26)])
        }
        return try? HuggingFaceBPETokenizer(definition: HuggingFaceBPEDefinition(vocabulary: vocabulary, merges: []))
    }()

    struct FixtureMissing: Error {}

    /// A server over the tiny model, or over the family `wrap` makes of it.
    convenience init(_ configure: (inout ServerConfiguration) -> Void = { _ in }, wrap: (any ModelFamily) -> any ModelFamily = { $0 }) throws {
        guard let model = Self.model, let tokenizer = Self.tokenizer else { throw FixtureMissing() }
        let engine = try CALMEngine(family: wrap(CALMFamily(model: model)), tokenizer: tokenizer,
                                    configuration: EngineConfiguration(kvCacheBytes: 16 << 20))
        try self.init(engine: engine, modelName: "tiny", configure)
    }

    /// The models the real-client tests run on: the tiny one and the built-in model `calm serve`
    /// serves by default.
    enum Model: String, CaseIterable, Sendable { case tiny, builtIn }

    /// A server over `model`.
    convenience init(model: Model) throws {
        switch model {
        case .tiny: try self.init()
        case .builtIn:
            try self.init(engine: DefaultModel.engine(configuration: EngineConfiguration(kvCacheBytes: 64 << 20)), modelName: "calm-builtin")
        }
    }

    init(engine: CALMEngine, modelName: String, _ configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        var c = ServerConfiguration(port: 0, requestTimeout: 2, idleTimeout: 5)
        configure(&c)
        handler = OpenAIHandler(engine: engine, modelName: modelName, configuration: c)
        server = HTTPServer(configuration: c, handler: handler)
        try server.start()
    }

    deinit { server.beginShutdown() }

    /// Waits (sleeping, so the engine keeps the cooperative pool) until every KV block is free
    /// again; false after `seconds` (generous: the full test run shares two cores).
    func kvPoolRefills(within seconds: Double = 60) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if engine.kvBlocksFree == engine.kvBlocksTotal { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return engine.kvBlocksFree == engine.kvBlocksTotal
    }
}

/// Runs blocking work on a thread of its own, so sockets never block Swift's cooperative pool
/// (the engine needs it).
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
