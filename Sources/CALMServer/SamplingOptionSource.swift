import Foundation

/// Where sampling options are read from: the CLI's `--name value` arguments or the fields of an
/// HTTP request's JSON body. Names are the CLI's (`max-tokens`, `top-p`); a source spells them its
/// own way (the server: `max_tokens`, `top_p`) and words its own errors. An absent option is nil.
public protocol SamplingOptionSource {
    /// A text value.
    mutating func string(_ name: String) throws -> String?
    /// An integer.
    mutating func int(_ name: String) throws -> Int?
    /// A number.
    mutating func double(_ name: String) throws -> Double?
    /// A number that may also be written as a fraction where the source allows it ("1/3" on the
    /// command line: the batch approximation's temperatures are exactly 1/n).
    mutating func fraction(_ name: String) throws -> Double?
    /// A non-negative 64-bit integer (a seed).
    mutating func unsigned(_ name: String) throws -> UInt64?
    /// A switch: true when given (and, for sources with values, true).
    mutating func flag(_ name: String) throws -> Bool
    /// The error for a value of the right type that is not allowed ("'x' is not batch, exact or single").
    func invalidValue(_ name: String, _ reason: String) -> any Error
}
