import Foundation

/// Answers requests on a connection's thread. It may block that thread (never the cooperative
/// pool) while the engine works, and bridges to async code with tasks.
public protocol HTTPHandler: Sendable {
    /// Answers `request` through `writer`; returns whether the connection may serve another
    /// request. Throwing means the client is gone: the connection is closed.
    func respond(to request: HTTPRequest, writer: HTTPResponseWriter) throws -> Bool
}
