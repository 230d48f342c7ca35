import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One accepted client connection: a blocking socket read and written only by its connection
/// thread, never from Swift's cooperative pool. Reads wait in `poll` slices so the thread sees
/// deadlines and shutdown; writes block at most the send timeout (a client that reads nothing is
/// dropped, one that reads slowly back-pressures its request).
final class ClientSocket: @unchecked Sendable {
    // Sendable by hand-off: the accept thread creates it and gives it to one connection thread,
    // the only one that uses it from then on.
    let fd: Int32
    /// Bytes received and not yet consumed by a request.
    var buffer: [UInt8] = []
    private var closed = false

    /// How a wait for more bytes ended.
    enum ReadOutcome { case data, endOfStream, timedOut, stopped, failed }

    struct WriteFailed: Error {}

    init(fd: Int32, sendTimeout: Double) {
        self.fd = fd
        var tv = timeval(tv_sec: Int(sendTimeout), tv_usec: Int((sendTimeout - sendTimeout.rounded(.down)) * 1e6))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), 1 /* TCP_NODELAY: SSE events go out at once */, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Linux's POLLRDHUP (the peer closed its end), which Glibc's Swift module does not export.
    private static let pollReadHangUp: Int16 = 0x2000

    deinit { close() }

    func close() {
        if !closed { closed = true; _ = Glibc.close(fd) }
    }

    /// Seconds on a monotonic clock.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Appends what arrives to `buffer`, waiting until `deadline` (monotonic seconds) or until
    /// `stop()` says to give up.
    func receive(deadline: Double, stop: () -> Bool) -> ReadOutcome {
        while true {
            if stop() { return .stopped }
            let left = deadline - Self.now()
            if left <= 0 { return .timedOut }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 0.2) * 1000) + 1)
            if r < 0 { if errno == EINTR { continue }; return .failed }
            if r == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 16 << 10)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer += chunk[0..<n]; return .data }
            if n == 0 { return .endOfStream }
            if errno == EINTR || errno == EAGAIN { continue }
            return .failed
        }
    }

    /// Writes all of `bytes` (throws `WriteFailed` when the client is gone or stopped reading).
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.send(fd, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            throw WriteFailed()
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Whether the client has closed its end (or reset the connection): checked without waiting
    /// while a response is being generated. Bytes it sent meanwhile stay queued for the next request.
    var peerClosed: Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN) | Self.pollReadHangUp, revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        if p.revents & (Int16(POLLHUP) | Int16(POLLERR) | Self.pollReadHangUp) != 0 { return true }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)
    }
}
