import CALMModel
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why the server could not start.
public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
}

/// An HTTP/1.1 server on POSIX sockets: one accept thread, and one thread per connection up to
/// `maxConnections` (a client beyond them gets 503 and is closed). Keep-alive, strict parsing,
/// size limits and timeouts come from `ServerConfiguration`; requests go to an `HTTPHandler`.
///
/// ```swift
/// let handler = OpenAIHandler(engine: engine, modelName: "calm", configuration: ServerConfiguration(port: 0))
/// let server = HTTPServer(configuration: handler.configuration, handler: handler)
/// try server.start()
/// print("listening on \(server.host):\(server.port)")
/// ```
public final class HTTPServer: Sendable {
    public let configuration: ServerConfiguration
    let handler: any HTTPHandler
    private let state = Locked(State())
    private let stopping = Atomic<Bool>(false)

    private struct State {
        var listenFD: Int32 = -1
        var boundPort = 0
        var activeConnections = 0
        var acceptThreadDone = false
    }

    public init(configuration: ServerConfiguration, handler: any HTTPHandler) {
        self.configuration = configuration
        self.handler = handler
    }

    /// The address bound.
    public var host: String { configuration.host }
    /// The port bound (the real one when the configuration asked for 0); 0 before `start()`.
    public var port: Int { state.withLock { $0.boundPort } }
    /// Connections open now.
    public var activeConnections: Int { state.withLock { $0.activeConnections } }
    /// Whether a shutdown has begun.
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Binds, listens and starts accepting on a thread of its own.
    public func start() throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        guard configuration.port >= 0, configuration.port <= 65535 else { throw ServerStartError(description: "port \(configuration.port) is not in 0…65535") }
        address.sin_port = in_port_t(UInt16(configuration.port).bigEndian)
        guard inet_pton(AF_INET, configuration.host, &address.sin_addr) == 1 else {
            throw ServerStartError(description: "host '\(configuration.host)' is not an IPv4 address")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerStartError(description: "socket: \(String(cString: strerror(errno)))") }
        // non-blocking: a client that resets between poll and accept cannot stall the accept thread
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1024) == 0 else {
            let message = String(cString: strerror(errno))
            _ = close(fd)
            throw ServerStartError(description: "cannot listen on \(configuration.host):\(configuration.port): \(message)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        state.withLock {
            $0.listenFD = fd
            $0.boundPort = Int(UInt16(bigEndian: actual.sin_port))
        }
        let thread = Thread { [self] in acceptLoop(fd) }
        thread.name = "calm-serve-accept"
        thread.start()
    }

    private func acceptLoop(_ listenFD: Int32) {
        while !isStopping {
            var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, 200)
            if r <= 0 { continue }
            let client = accept(listenFD, nil, nil)
            if client < 0 { continue }
            let admitted = state.withLock { s -> Bool in
                guard s.activeConnections < configuration.maxConnections else { return false }
                s.activeConnections += 1
                return true
            }
            let socket = ClientSocket(fd: client, sendTimeout: admitted ? configuration.idleTimeout : 1)
            guard admitted else {
                let writer = HTTPResponseWriter(socket: socket)
                try? writer.send(status: 503, json: APIError(status: 503, message: "too many connections (limit \(configuration.maxConnections)); retry later",
                                                             type: "server_busy", code: "too_many_connections").json,
                                 headers: [("Retry-After", "1")], keepAlive: false)
                socket.close()
                continue
            }
            let thread = Thread { [self] in
                serve(socket)
                socket.close()
                state.withLock { $0.activeConnections -= 1 }
            }
            thread.name = "calm-serve-connection"
            thread.start()
        }
        state.withLock {
            _ = close($0.listenFD)
            $0.listenFD = -1
            $0.acceptThreadDone = true
        }
    }

    /// Serves requests on one connection until it closes, breaks a rule, or the server stops.
    private func serve(_ socket: ClientSocket) {
        let writer = HTTPResponseWriter(socket: socket)
        while true {
            switch HTTPRequestReader.read(from: socket, configuration: configuration, stopping: { isStopping }) {
            case .closeQuietly:
                return
            case let .reject(status, message):
                try? writer.send(status: status, json: APIError(status: status, message: message).json, keepAlive: false)
                return
            case let .request(request):
                writer.plainStreams = request.version == "HTTP/1.0"
                do {
                    let again = try handler.respond(to: request, writer: writer)
                    if !again || writer.closing || !request.keepAlive || isStopping { return }
                } catch {
                    return
                }
            }
        }
    }

    /// Stops accepting; connections finish their current request and close.
    public func beginShutdown() {
        stopping.store(true, ordering: .releasing)
    }

    /// Stops accepting and waits up to `grace` seconds for open connections to finish; returns
    /// whether they all did.
    @discardableResult
    public func shutdown(grace: Double) -> Bool {
        beginShutdown()
        let deadline = ClientSocket.now() + grace
        while ClientSocket.now() < deadline {
            let (active, acceptDone) = state.withLock { ($0.activeConnections, $0.acceptThreadDone || $0.listenFD < 0) }
            if active == 0 && acceptDone { return true }
            usleep(20_000)
        }
        return false
    }
}
