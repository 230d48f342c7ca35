import CALMEngine
import CALMServer
import CALMModel
import Dispatch
import Foundation

/// `calm serve`: the OpenAI-compatible HTTP server (`CALMServer`) over one engine.
enum ServeCommand {
    /// The SIGINT/SIGTERM handlers, alive as long as the process.
    private static let signalSources = Locked<[any DispatchSourceSignal]>([])

    static let help = """
    usage: calm serve [--model DIR] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [options]

      Serves POST /v1/completions (whole or streamed as server-sent events), GET /v1/models,
      GET /health and GET /metrics (Prometheus). Prints "listening on http://HOST:PORT" once bound.
      Sampling settings come with each request (Docs/Serving.md). SIGINT/SIGTERM: stop accepting,
      let requests in flight finish (up to --grace seconds), exit 0.
      --host ADDR          IPv4 address to bind (default 127.0.0.1; 0.0.0.0 for every interface)
      --port N             port (default 8080; 0 picks a free one)
      --api-key KEY        require Authorization: Bearer KEY on /v1/… (default: $CALM_API_KEY, else none)
      --max-connections N  most open connections; more get 503 (default 256)
      --max-requests N     most completion requests in flight; more get 429 (default 1024)
      --kv-mib M           KV-cache budget in MiB (default 1024)
      --max-body-bytes B   largest request body (default 1048576; larger: 413)
      --request-timeout S  seconds a request may take to arrive (default 10)
      --idle-timeout S     seconds a kept-alive connection may idle (default 60)
      --grace S            seconds in-flight requests get at shutdown (default 10)
      --model-name NAME    the model id /v1/models lists (default: the model folder's name)
    \(EngineOptions.modelHelp)
      --decoding D         CALM: lazy (default) or full head-sample decoding
    """

    static let serveValues: Set<String> = ["host", "port", "api-key", "max-connections", "max-requests", "kv-mib", "max-body-bytes", "request-timeout",
                                           "idle-timeout", "grace", "model-name", "model", "family", "tokenizer", "weights-dtype", "ae-path",
                                           "decoding"]

    static func run(_ raw: [String]) async throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: [], values: serveValues)
        var c = ServerConfiguration()
        c.host = a.string("host") ?? c.host
        if let port = try a.int("port") {
            guard (0...65535).contains(port) else { throw UsageError("option --port: must be in 0…65535, got \(port)") }
            c.port = port
        }
        c.apiKey = a.string("api-key") ?? ProcessInfo.processInfo.environment["CALM_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if let n = try a.int("max-connections") {
            guard n >= 1 else { throw UsageError("option --max-connections: must be at least 1, got \(n)") }
            c.maxConnections = n
        }
        if let n = try a.int("max-requests") {
            guard n >= 1 else { throw UsageError("option --max-requests: must be at least 1, got \(n)") }
            c.maxRequestsInFlight = n
        }
        let kvMiB = try a.int("kv-mib") ?? 1024
        guard kvMiB >= 1, kvMiB <= 1 << 20 else { throw UsageError("option --kv-mib: must be in 1…1048576, got \(kvMiB)") }
        if let b = try a.int("max-body-bytes") {
            guard b >= 1 else { throw UsageError("option --max-body-bytes: must be at least 1, got \(b)") }
            c.maxBodyBytes = b
        }
        func seconds(_ name: String) throws -> Double? {
            guard let v = try a.double(name) else { return nil }
            guard v.isFinite, v > 0, v <= 86_400 else { throw UsageError("option --\(name): must be in (0, 86400] seconds, got \(v)") }
            return v
        }
        c.requestTimeout = try seconds("request-timeout") ?? c.requestTimeout
        c.idleTimeout = try seconds("idle-timeout") ?? c.idleTimeout
        c.shutdownGrace = try seconds("grace") ?? c.shutdownGrace
        let options = try EngineOptions(&a, stops: [])
        let modelName = a.string("model-name") ?? (options.builtInFamily != nil || a.string("model") == nil
            ? "calm-builtin" : options.modelDirectory.lastPathComponent)
        try a.finish()
        let engine = try options.engine(kvCacheBytes: kvMiB << 20, tokenizerRequired: false)
        let handler = OpenAIHandler(engine: engine, modelName: modelName, configuration: c)
        let server = HTTPServer(configuration: c, handler: handler)
        try server.start()
        let grace = c.shutdownGrace
        // The sources must outlive the wait: an optimised build may release a value after its last
        // use, and a released signal source no longer handles its signal (SIGTERM was then ignored,
        // or killed the process with no graceful shutdown, in release builds only). A static holds
        // them for the life of the process; they are made inside its lock so none escapes it.
        signalSources.withLock { sources in
            sources = [SIGINT, SIGTERM].map { signalNumber -> any DispatchSourceSignal in
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler {
                    printError("serve: shutting down (up to \(grace) s for requests in flight)")
                    let finished = server.shutdown(grace: grace)
                    if !finished { printError("serve: grace period over; cancelling the requests still running") }
                    exit(0)
                }
                source.resume()
                return source
            }
        }
        writeStdout("calm serve: listening on http://\(server.host):\(server.port) (model \(modelName))\n")
        while true { try? await Task.sleep(for: .seconds(3600)) }
    }
}
