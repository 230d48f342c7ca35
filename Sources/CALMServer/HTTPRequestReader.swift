import Foundation

/// Reads one request from a client socket, strictly and within the configured limits.
enum HTTPRequestReader {
    /// What reading produced.
    enum Outcome {
        case request(HTTPRequest)
        /// No request began (idle timeout, client closed, shutdown): close without answering.
        case closeQuietly
        /// A broken or over-limit request: answer this status and close.
        case reject(status: Int, message: String)
    }

    static func read(from socket: ClientSocket, configuration c: ServerConfiguration, stopping: () -> Bool) -> Outcome {
        // idle: until the first byte of the next request; shutdown ends the wait
        let idleDeadline = ClientSocket.now() + c.idleTimeout
        while socket.buffer.isEmpty {
            switch socket.receive(deadline: idleDeadline, stop: stopping) {
            case .data: break
            default: return .closeQuietly
            }
        }
        let deadline = ClientSocket.now() + c.requestTimeout
        var headerEnd: Int?
        while true {
            headerEnd = find(crlfcrlf, in: socket.buffer)
            if headerEnd != nil { break }
            if socket.buffer.count > c.maxHeaderBytes { return .reject(status: 431, message: "request headers exceed \(c.maxHeaderBytes) bytes") }
            switch socket.receive(deadline: deadline, stop: { false }) {
            case .data: continue
            case .timedOut: return .reject(status: 408, message: "the request did not arrive within \(c.requestTimeout) s")
            case .endOfStream: return .reject(status: 400, message: "incomplete request: the connection ended inside the headers")
            case .stopped, .failed: return .closeQuietly
            }
        }
        guard let end = headerEnd else { return .closeQuietly }
        if end > c.maxHeaderBytes { return .reject(status: 431, message: "request headers exceed \(c.maxHeaderBytes) bytes") }
        guard let head = String(validating: socket.buffer[0..<end], as: UTF8.self) else {
            return .reject(status: 400, message: "request headers are not UTF-8")
        }
        let parsed: HTTPRequest
        switch parseHead(head) {
        case let .success(r): parsed = r
        case let .failure(e): return .reject(status: e.status, message: e.message)
        }
        var request = parsed
        if request.header("Transfer-Encoding") != nil {
            return .reject(status: 501, message: "chunked request bodies are not supported: send Content-Length")
        }
        let lengths = request.headers.filter { $0.name.caseInsensitiveCompare("Content-Length") == .orderedSame }.map(\.value)
        var length = 0
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), !first.isEmpty, first.utf8.count <= 18,
                  first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(first) else {
                return .reject(status: 400, message: "bad Content-Length")
            }
            length = n
        }
        if length > c.maxBodyBytes { return .reject(status: 413, message: "request body of \(length) bytes exceeds the limit of \(c.maxBodyBytes)") }
        let bodyStart = end + 4
        // curl and others wait for this before sending a large body
        if request.header("Expect")?.lowercased() == "100-continue", socket.buffer.count < bodyStart + length {
            do { try socket.send("HTTP/1.1 100 Continue\r\n\r\n") } catch { return .closeQuietly }
        }
        while socket.buffer.count < bodyStart + length {
            switch socket.receive(deadline: deadline, stop: { false }) {
            case .data: continue
            case .timedOut: return .reject(status: 408, message: "the request body did not arrive within \(c.requestTimeout) s")
            case .endOfStream: return .reject(status: 400, message: "incomplete request: the body is shorter than Content-Length")
            case .stopped, .failed: return .closeQuietly
            }
        }
        request.body = Array(socket.buffer[bodyStart..<bodyStart + length])
        socket.buffer.removeFirst(bodyStart + length)
        return .request(request)
    }

    private static let crlfcrlf: [UInt8] = [13, 10, 13, 10]

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i + 1] == needle[1] && haystack[i + 2] == needle[2] && haystack[i + 3] == needle[3] { return i }
        }
        return nil
    }

    struct HeadError: Error { var status: Int; var message: String }

    private static let tokenCharacters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars)

    /// The request line and header fields (RFC 9112; no obsolete line folding, no bare LF).
    static func parseHead(_ head: String) -> Result<HTTPRequest, HeadError> {
        let lines = head.components(separatedBy: "\r\n")
        guard let requestLine = lines.first, !lines.contains(where: { $0.contains("\n") || $0.contains("\r") }) else {
            return .failure(HeadError(status: 400, message: "malformed request: lines must end with CRLF"))
        }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].unicodeScalars.allSatisfy({ tokenCharacters.contains($0) }),
              parts[1].hasPrefix("/") else {
            return .failure(HeadError(status: 400, message: "malformed request line"))
        }
        guard parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0" else {
            return .failure(HeadError(status: parts[2].hasPrefix("HTTP/") ? 505 : 400, message: "unsupported protocol '\(parts[2])'"))
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return .failure(HeadError(status: 400, message: "malformed header line")) }
            let name = String(line[..<colon])
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ tokenCharacters.contains($0) }) else {
                return .failure(HeadError(status: 400, message: "malformed header name"))
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            headers.append((name, value))
        }
        if parts[2] == "HTTP/1.1" && !headers.contains(where: { $0.name.caseInsensitiveCompare("Host") == .orderedSame }) {
            return .failure(HeadError(status: 400, message: "HTTP/1.1 request without a Host header"))
        }
        let path = String(parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        return .success(HTTPRequest(method: parts[0], path: path, version: parts[2], headers: headers, body: []))
    }
}
