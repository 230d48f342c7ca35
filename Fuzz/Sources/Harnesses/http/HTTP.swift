// The HTTP server as a client meets it: the input's bytes are sent as they are over a loopback
// connection to `calm serve`'s server (HTTPServer + OpenAIHandler over a tiny CALM model), the
// client then closes its sending side and reads until the server closes.
//
// Promises checked for every input: the server answers within 30 s (no hang; the body of a
// request cut short ends at the client's close); every answer begins with an HTTP/1.1 status
// line with a three-digit code; a non-streamed answer's Content-Length matches its body; after
// the connection closes the server holds no connection and the engine has every KV block back (a
// broken, refused, cancelled or finished request leaks nothing); ASan sees no memory error.
import CALMEngine
import CALMModel
import CALMServer
import CALMTokenizer
import Foundation
import FuzzSupport
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var engine: CALMEngine!
nonisolated(unsafe) var server: HTTPServer!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    do {
        let folder = Harness.folder("models").appendingPathComponent("calm")
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        c.maxPositionEmbeddings = 128
        try RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: folder, seed: 3, embedAutoencoder: true)
        let tokenizer = try HuggingFaceBPETokenizer(definition: TokenizerSeeds.definition(vocabularySize: 300))
        engine = try CALMEngine(family: try ModelFamilyRegistry.load(directory: folder), tokenizer: tokenizer,
                                configuration: EngineConfiguration(kvCacheBytes: 4 << 20, blockChunks: 4))
        // small limits keep one input cheap; the timeouts only matter for a client that stalls,
        // and this one never does (it closes its side after sending)
        let configuration = ServerConfiguration(port: 0, maxConnections: 4, maxHeaderBytes: 4096, maxBodyBytes: 8192,
                                                requestTimeout: 5, idleTimeout: 5, maxChoices: 4)
        server = HTTPServer(configuration: configuration,
                            handler: OpenAIHandler(engine: engine, modelName: "tiny", configuration: configuration))
        try server.start()
    } catch {
        Harness.fail("http: cannot start the server: \(error)")
    }
    return 0
}

/// Sends `bytes`, closes the sending side and returns everything the server wrote until it closed.
func exchange(_ bytes: [UInt8]) -> [UInt8] {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { Harness.fail("http: socket(): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(server.port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { Harness.fail("http: connect(): \(String(cString: strerror(errno)))") }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }   // the server may answer and close before it has read everything
        sent += n
    }
    shutdown(fd, Int32(SHUT_WR))
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { received += buffer[0..<n]; continue }
        if n == 0 || errno == ECONNRESET { break }
        if errno == EINTR { continue }
        Harness.fail("http: no end of the answer within 30 s (recv: \(String(cString: strerror(errno)))); got \(received.count) bytes")
    }
    return received
}

/// Checks the answers' framing: status lines, and Content-Length against the bytes that follow.
func checkAnswers(_ bytes: [UInt8]) {
    var rest = bytes[...]
    let separator: [UInt8] = [13, 10, 13, 10]
    while !rest.isEmpty {
        guard let headEnd = rest.firstRange(of: separator) else {
            Harness.fail("http: an answer without the end of its headers: \(String(decoding: rest.prefix(200), as: UTF8.self))")
        }
        let head = String(decoding: rest[rest.startIndex..<headEnd.lowerBound], as: UTF8.self)
        let statusLine = head.components(separatedBy: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", parts[1].count == 3, let status = Int(parts[1]), (100...599).contains(status) else {
            Harness.fail("http: a malformed status line: \(statusLine.debugDescription)")
        }
        rest = rest[headEnd.upperBound...]
        if status == 100 { continue }   // "100 Continue", then the real answer
        let lengths = head.components(separatedBy: "\r\n").dropFirst().compactMap { line -> Int? in
            let pair = line.split(separator: ":", maxSplits: 1)
            guard pair.count == 2, pair[0].lowercased() == "content-length" else { return nil }
            return Int(pair[1].trimmingCharacters(in: .whitespaces))
        }
        guard let length = lengths.first else { return }   // a streamed answer runs to the close
        guard lengths.count == 1, length <= rest.count else {
            Harness.fail("http: Content-Length \(lengths) but \(rest.count) bytes follow: \(statusLine)")
        }
        rest = rest.dropFirst(length)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let answer = exchange(bytes)
    Harness.note("sent \(bytes.count) bytes, got: \(String(decoding: answer.prefix(400), as: UTF8.self).debugDescription)")
    checkAnswers(answer)
    // the server notices the close and lets go of the connection and of the request's KV blocks
    let deadline = Date().addingTimeInterval(30)
    while server.activeConnections > 0 || engine.kvBlocksFree != engine.kvBlocksTotal {
        if Date() > deadline {
            Harness.fail("http: 30 s after the close, \(server.activeConnections) connections open, "
                         + "\(engine.kvBlocksTotal - engine.kvBlocksFree) KV blocks still held")
        }
        usleep(200)
    }
    return 0
}

/// Well-formed requests for every route, a streamed and a refused completion, a pipelined pair,
/// an `Expect: 100-continue` and a body shorter than its Content-Length.
func seeds() throws -> [(String, [UInt8])] {
    func request(_ method: String, _ path: String, body: String? = nil, headers: [String] = []) -> String {
        var lines = ["\(method) \(path) HTTP/1.1", "Host: localhost"] + headers
        if let body { lines += ["Content-Type: application/json", "Content-Length: \(body.utf8.count)"] }
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + (body ?? "")
    }
    let completion = #"{"model":"tiny","prompt":"Once upon a time","max_tokens":8,"temperature":0.5,"seed":1}"#
    let streamed = #"{"prompt":[5,6,7],"max_tokens":6,"stream":true,"stream_options":{"include_usage":true},"n":2,"stop":["\n"]}"#
    let controls = #"{"prompt":"a b","max_tokens":4,"sampler":"exact","max_draws":50,"temperature":0.25,"ignore_eos":true}"#
    let refused = #"{"prompt":"x","max_tokens":-1,"temperature":"hot"}"#
    return [
        ("health", request("GET", "/health")),
        ("models", request("GET", "/v1/models")),
        ("metrics", request("GET", "/metrics")),
        ("completion", request("POST", "/v1/completions", body: completion)),
        ("completion-stream", request("POST", "/v1/completions", body: streamed)),
        ("completion-controls", request("POST", "/v1/completions", body: controls)),
        ("completion-refused", request("POST", "/v1/completions", body: refused)),
        ("pipelined", request("GET", "/health") + request("POST", "/v1/completions", body: completion)),
        ("expect-continue", request("POST", "/v1/completions", body: completion, headers: ["Expect: 100-continue"])),
        ("short-body", String(request("POST", "/v1/completions", body: completion).dropLast(10))),
        ("http10", "GET /health HTTP/1.0\r\n\r\n"),
        ("unknown-route", request("DELETE", "/v1/everything?x=1")),
    ].map { ($0.0, Array($0.1.utf8)) }
}
