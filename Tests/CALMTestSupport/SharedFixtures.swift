import Foundation

/// Locates the read-only reference material (`../shared` beside the repository, or `$CALM_SHARED`).
///
/// A fresh clone without `../shared` must still pass `swift test`, so tests that need it are
/// disabled with a clear message; under CI (`CI=true`) a missing `../shared` is a failure, so such
/// tests stay enabled and fail in `require()`.
public enum SharedFixtures {
    /// Root of the shared folder, if found.
    public static let root: URL? = {
        let env = ProcessInfo.processInfo.environment
        if let path = env["CALM_SHARED"], !path.isEmpty {
            let url = URL(fileURLWithPath: path)
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }
        // #filePath is <repo>/Tests/CALMTestSupport/SharedFixtures.swift
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let candidate = repo.deletingLastPathComponent().appendingPathComponent("shared")
        return FileManager.default.fileExists(atPath: candidate.path) ? candidate : nil
    }()

    /// True when running under CI, where a missing shared folder must fail, never skip.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether tests that need `../shared` should run (they also run, and fail, under CI).
    public static var enabled: Bool { root != nil || isCI }

    /// Message shown for skipped tests.
    public static let skipMessage =
        "../shared (or $CALM_SHARED) not found: golden-fixture tests skipped"

    /// The shared root or a thrown error naming what is missing.
    public static func require() throws -> URL {
        guard let root else { throw MissingSharedFolder() }
        return root
    }

    /// `<shared>/fixtures/calm`.
    public static func calmFixtures() throws -> URL {
        try require().appendingPathComponent("fixtures/calm")
    }

    /// `<shared>/fixtures/gpt2` (tiny GPT-2 folders in both layouts and transformers' goldens).
    public static func gpt2Fixtures() throws -> URL {
        try require().appendingPathComponent("fixtures/gpt2")
    }

    /// Error thrown when `../shared` is required but absent.
    public struct MissingSharedFolder: Error, CustomStringConvertible {
        public var description: String {
            "../shared not found beside the repository and $CALM_SHARED not set (required under CI=true)"
        }
    }
}

/// A scratch directory removed when the value is deinitialised.
public final class TemporaryDirectory: @unchecked Sendable {
    public let url: URL
    public init(_ prefix: String = "calm-test") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}
