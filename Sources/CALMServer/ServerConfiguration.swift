import Foundation

/// Where the server listens and the limits every client is held to.
public struct ServerConfiguration: Sendable {
    /// Address to bind (IPv4 dotted quad; "0.0.0.0" for every interface).
    public var host: String
    /// Port to bind; 0 picks a free one (`HTTPServer.port` says which).
    public var port: Int
    /// When set, `/v1/…` requests must carry `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Most connections open at once; a client beyond them gets 503 and is closed.
    public var maxConnections: Int
    /// Largest request line plus headers, in bytes (431 beyond it).
    public var maxHeaderBytes: Int
    /// Largest request body, in bytes (413 beyond it).
    public var maxBodyBytes: Int
    /// Seconds a request may take to arrive whole, from its first byte (slow clients are closed).
    public var requestTimeout: Double
    /// Seconds a kept-alive connection may wait for its next request, and a response write may
    /// wait for a client that reads nothing.
    public var idleTimeout: Double
    /// Most completion requests in flight at once; one more gets 429.
    public var maxRequestsInFlight: Int
    /// Most completions (`n`) in one request.
    public var maxChoices: Int
    /// Seconds in-flight requests get to finish after a shutdown begins.
    public var shutdownGrace: Double

    public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, maxConnections: Int = 256,
                maxHeaderBytes: Int = 16 << 10, maxBodyBytes: Int = 1 << 20, requestTimeout: Double = 10, idleTimeout: Double = 60,
                maxRequestsInFlight: Int = 1024, maxChoices: Int = 16, shutdownGrace: Double = 10) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.maxConnections = maxConnections
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.maxRequestsInFlight = maxRequestsInFlight
        self.maxChoices = maxChoices
        self.shutdownGrace = shutdownGrace
    }
}
