import CALMEngine
import Foundation

/// The OpenAI-compatible API over one engine: `POST /v1/completions` (whole or streamed as
/// server-sent events), `GET /v1/models`, `GET /health` and `GET /metrics`. Errors use OpenAI's
/// shape with the HTTP status that fits; with an API key set, `/v1/…` needs `Authorization: Bearer KEY`.
///
/// HTTP → `engine.generate` → `GenerationStream` → SSE: every choice is one engine request; a
/// client that disconnects cancels them (their KV blocks come back at once).
public final class OpenAIHandler: HTTPHandler {
    public let engine: CALMEngine
    /// The name `/v1/models` lists and responses carry.
    public let modelName: String
    public let configuration: ServerConfiguration
    public let metrics = ServerMetrics()
    private let created = Int(Date().timeIntervalSince1970)

    /// Each path and the method it answers.
    static let routes: [String: String] = ["/v1/completions": "POST", "/v1/models": "GET", "/health": "GET", "/metrics": "GET"]

    public init(engine: CALMEngine, modelName: String, configuration: ServerConfiguration) {
        self.engine = engine
        self.modelName = modelName
        self.configuration = configuration
    }

    public func respond(to request: HTTPRequest, writer: HTTPResponseWriter) throws -> Bool {
        let keepAlive = request.keepAlive
        guard let method = Self.routes[request.path] else {
            metrics.requestRejected(outcome: "not_found")
            try writer.send(status: 404, json: APIError(status: 404, message: "no route \(request.method) \(request.path)", code: "not_found").json,
                            keepAlive: keepAlive)
            return keepAlive
        }
        guard request.method == method else {
            metrics.requestRejected(outcome: "method_not_allowed")
            try writer.send(status: 405, json: APIError(status: 405, message: "\(request.path) takes \(method), not \(request.method)",
                                                        code: "method_not_allowed").json,
                            headers: [("Allow", method)], keepAlive: keepAlive)
            return keepAlive
        }
        if request.path.hasPrefix("/v1/"), let key = configuration.apiKey, request.header("Authorization") != "Bearer \(key)" {
            metrics.requestRejected(outcome: "unauthorized")
            try writer.send(status: 401, json: APIError(status: 401, message: "missing or wrong API key (Authorization: Bearer KEY)",
                                                        type: "authentication_error", code: "invalid_api_key").json,
                            headers: [("WWW-Authenticate", "Bearer")], keepAlive: keepAlive)
            return keepAlive
        }
        switch request.path {
        case "/v1/completions":
            return try CompletionResponder(handler: self, writer: writer, keepAlive: keepAlive).respond(body: request.body)
        case "/v1/models":
            let model: JSONValue = .object([("id", .string(modelName)), ("object", .string("model")), ("created", .integer(created)),
                                            ("owned_by", .string("swift-calm"))])
            try writer.send(status: 200, json: .object([("object", .string("list")), ("data", .array([model]))]), keepAlive: keepAlive)
        case "/health":
            try writer.send(status: 200, json: .object([("status", .string("ok")), ("model", .string(modelName)),
                                                        ("requests_in_flight", .integer(metrics.inFlight))]), keepAlive: keepAlive)
        default:
            let text = metrics.render(kvBlocksTotal: engine.kvBlocksTotal, kvBlocksFree: engine.kvBlocksFree)
            try writer.send(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(text.utf8), keepAlive: keepAlive)
        }
        return keepAlive
    }
}
