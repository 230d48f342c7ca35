import Foundation

/// Writes responses on one connection: whole ones with `Content-Length`, or streamed ones with
/// chunked transfer coding (server-sent events). Every write blocks the connection's own thread
/// only, and throws when the client has gone.
public final class HTTPResponseWriter {
    let socket: ClientSocket
    /// Set when the response said `Connection: close`.
    private(set) var closing = false
    /// The request was HTTP/1.0, which has no chunked coding: a stream is sent raw and the
    /// connection closed after it.
    var plainStreams = false

    init(socket: ClientSocket) { self.socket = socket }

    /// The reason phrase of the statuses the server sends.
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }

    private func head(status: Int, headers: [(String, String)], keepAlive: Bool) -> String {
        var s = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        for (name, value) in headers { s += "\(name): \(value)\r\n" }
        s += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        if !keepAlive { closing = true }
        return s + "\r\n"
    }

    /// A whole response.
    public func send(status: Int, contentType: String, body: [UInt8], headers extra: [(String, String)] = [], keepAlive: Bool) throws {
        let h = head(status: status, headers: [("Content-Type", contentType), ("Content-Length", String(body.count))] + extra,
                     keepAlive: keepAlive)
        try socket.send(Array(h.utf8) + body)
    }

    /// A JSON response.
    public func send(status: Int, json: JSONValue, headers: [(String, String)] = [], keepAlive: Bool) throws {
        try send(status: status, contentType: "application/json", body: Array(json.serialized.utf8), headers: headers, keepAlive: keepAlive)
    }

    /// Starts a streamed response (chunked transfer coding).
    public func beginStream(status: Int, contentType: String, headers extra: [(String, String)] = [], keepAlive: Bool) throws {
        let coding: [(String, String)] = plainStreams ? [] : [("Transfer-Encoding", "chunked")]
        try socket.send(head(status: status, headers: [("Content-Type", contentType), ("Cache-Control", "no-cache")] + coding + extra,
                             keepAlive: keepAlive && !plainStreams))
    }

    /// One piece of a streamed response.
    public func sendChunk(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return }
        if plainStreams { return try socket.send(bytes) }
        try socket.send(Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + [13, 10])
    }

    /// Ends a streamed response.
    public func endStream() throws {
        if !plainStreams { try socket.send("0\r\n\r\n") }
    }

    /// Whether the client has closed the connection (checked without waiting).
    public var clientGone: Bool { socket.peerClosed }
}
