import CALMServer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client over a raw socket, for tests: sends bytes exactly as given and reads
/// responses (Content-Length or chunked), with a receive timeout so no test can hang.
final class TestHTTPClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    struct Failure: Error, CustomStringConvertible { var description: String }

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSONValue? { try? JSONValue.parse(body) }
        /// The `data:` payloads of a server-sent-event body.
        var events: [String] {
            text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : "<malformed: \($0)>" }
        }
    }

    init(port: Int, timeout: Double = 120) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else { close(fd); throw Failure(description: "connect to port \(port): errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Ends the sending side (the server sees end of stream).
    func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// A request with a JSON body.
    func post(_ path: String, json: String, headers: [String] = []) throws {
        let body = Array(json.utf8)
        try send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
                 + headers.map { $0 + "\r\n" }.joined() + "\r\n")
        try send(body)
    }

    func get(_ path: String, headers: [String] = []) throws {
        try send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    }

    /// Reads more bytes; false at end of stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { buffer += chunk[0..<n]; return true }
        if n == 0 { return false }
        throw Failure(description: "receive failed or timed out: errno \(errno)")
    }

    private func line() throws -> String {
        while true {
            if let i = buffer.indices.dropLast().first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                let s = String(decoding: buffer[0..<i], as: UTF8.self)
                buffer.removeFirst(i + 2)
                return s
            }
            guard try fill() else { throw Failure(description: "connection closed mid-line") }
        }
    }

    private func bytes(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { guard try fill() else { throw Failure(description: "connection closed mid-body") } }
        let out = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return out
    }

    /// Reads one whole response. `onChunk` sees each piece of a chunked body as it arrives.
    func response(onChunk: (String) throws -> Void = { _ in }) throws -> Response {
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
                try onChunk(String(decoding: piece, as: UTF8.self))
                body += piece
                guard try line().isEmpty else { throw Failure(description: "chunk without CRLF") }
            }
        } else if let length = headers["content-length"].flatMap(Int.init) {
            body = try bytes(length)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Everything after what was read so far, up to the server's close.
    func readToEnd() throws -> String {
        while try fill() {}
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Whether the server closed the connection (reads to end of stream).
    func closedByServer() -> Bool {
        buffer.removeAll()
        while true {
            do { if try !fill() { return true } } catch { return false }
        }
    }
}
