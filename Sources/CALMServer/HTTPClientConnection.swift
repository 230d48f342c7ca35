import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client over a raw socket: sends bytes exactly as given and reads responses
/// (Content-Length or chunked), with a receive timeout so no caller can hang. The server's tests
/// and `calm bench-serve --http` both speak to servers through it; it is not a general HTTP client
/// (no TLS, no redirects, IPv4 only).
package final class HTTPClientConnection {
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// Bytes of `buffer` already consumed (dropped in bulk, so long streams stay linear).
    private var consumed = 0

    package struct Failure: Error, CustomStringConvertible { package var description: String }

    package struct Response {
        package var status: Int
        package var headers: [String: String]
        package var body: [UInt8]
        package var text: String { String(decoding: body, as: UTF8.self) }
        package var json: JSONValue? { try? JSONValue.parse(body) }
        /// The `data:` payloads of a server-sent-event body.
        package var events: [String] {
            text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : "<malformed: \($0)>" }
        }
    }

    /// Connects to `host` (an IPv4 address; "localhost" means 127.0.0.1) at `port`; a read that
    /// waits longer than `timeout` seconds fails. `receiveBufferBytes` shrinks the socket's receive
    /// buffer (a test's slow reader, so the server feels it at once).
    package init(host: String = "127.0.0.1", port: Int, timeout: Double = 120, receiveBufferBytes: Int? = nil) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        guard (1...65535).contains(port) else { throw Failure(description: "port \(port) is not in 1…65535") }
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            throw Failure(description: "host '\(host)' is not an IPv4 address")
        }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let receiveBufferBytes {
            var size = Int32(clamping: receiveBufferBytes)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), 1 /* TCP_NODELAY: small requests go out at once */, &one, socklen_t(MemoryLayout<Int32>.size))
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else { let e = errno; close(fd); throw Failure(description: "connect to \(host):\(port): errno \(e)") }
    }

    deinit { close(fd) }

    package func send(_ text: String) throws { try send(Array(text.utf8)) }

    package func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Ends the sending side (the server sees end of stream).
    package func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// A request with a JSON body.
    package func post(_ path: String, json: String, headers: [String] = []) throws {
        let body = Array(json.utf8)
        try send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
                 + headers.map { $0 + "\r\n" }.joined() + "\r\n")
        try send(body)
    }

    package func get(_ path: String, headers: [String] = []) throws {
        try send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    }

    /// Reads more bytes; false at end of stream.
    private func fill() throws -> Bool {
        if consumed > 0 { buffer.removeFirst(consumed); consumed = 0 }
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { buffer += chunk[0..<n]; return true }
        if n == 0 { return false }
        throw Failure(description: "receive failed or timed out: errno \(errno)")
    }

    private func line() throws -> String {
        var from = consumed
        while true {
            if let i = (from ..< max(from, buffer.count - 1)).first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                let s = String(decoding: buffer[consumed ..< i], as: UTF8.self)
                consumed = i + 2
                return s
            }
            from = max(consumed, buffer.count - 1)
            let before = consumed
            guard try fill() else { throw Failure(description: "connection closed mid-line") }
            from -= before  // fill() dropped the consumed prefix
        }
    }

    private func bytes(_ count: Int) throws -> [UInt8] {
        while buffer.count - consumed < count { guard try fill() else { throw Failure(description: "connection closed mid-body") } }
        let out = Array(buffer[consumed ..< consumed + count])
        consumed += count
        return out
    }

    /// Reads one whole response. `onChunk` sees each piece of a chunked body as it arrives.
    package func response(onChunk: (String) throws -> Void) throws -> Response {
        try response(onChunkBytes: { try onChunk(String(decoding: $0, as: UTF8.self)) })
    }

    /// Reads one whole response. `onChunkBytes` sees each piece of a chunked body as it arrives,
    /// as bytes (a load generator reads thousands of events a second without making strings).
    package func response(onChunkBytes: ([UInt8]) throws -> Void = { _ in }) throws -> Response {
        let statusLine = try line()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else { throw Failure(description: "bad status line \(statusLine)") }
        var headers: [String: String] = [:]
        while true {
            let l = try line()
            if l.isEmpty { break }
            guard let colon = l.firstIndex(of: ":") else { throw Failure(description: "bad header \(l)") }
            headers[l[..<colon].lowercased()] = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"] == "chunked" {
            while true {
                guard let size = Int(try line(), radix: 16) else { throw Failure(description: "bad chunk size") }
                if size == 0 { _ = try line(); break }
                let piece = try bytes(size)
                try onChunkBytes(piece)
                body += piece
                guard try line().isEmpty else { throw Failure(description: "chunk without CRLF") }
            }
        } else if let length = headers["content-length"].flatMap(Int.init) {
            body = try bytes(length)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Everything after what was read so far, up to the server's close.
    package func readToEnd() throws -> String {
        while try fill() {}
        defer { buffer.removeAll(); consumed = 0 }
        return String(decoding: buffer[consumed...], as: UTF8.self)
    }

    /// Whether the server closed the connection (reads to end of stream).
    package func closedByServer() -> Bool {
        buffer.removeAll()
        consumed = 0
        while true {
            do { if try !fill() { return true } } catch { return false }
        }
    }
}
