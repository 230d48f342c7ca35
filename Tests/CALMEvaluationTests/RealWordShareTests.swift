@testable import CALMEvaluation
import CALMTestSupport
import Foundation
import Testing

/// The real-word share behind `calm eval-repetition --dictionary`.
struct RealWordShareTests {
    let dictionary = RealWordShare.Dictionary(words: ["the", "cat", "sat", "on", "mat", "Adam", "well", "known", "don't"], source: "test")

    @Test func wordsAreRunsOfLettersAndApostrophes() {
        #expect(RealWordShare.words(in: "The cat's well-known mat, 42 times!") == ["The", "cat's", "well", "known", "mat", "times"])
        #expect(RealWordShare.words(in: "'quoted' don’t\n\tÉcole") == ["quoted", "don't", "École"])
        #expect(RealWordShare.words(in: " ,.;  123 ").isEmpty)
    }

    @Test func sharesCountEveryWordOfEveryText() {
        let share = RealWordShare(texts: ["The cat sat on the mat.", "Xqzzy glorp."], dictionary: dictionary)
        #expect(share.words == 8 && share.realWords == 6 && share.percent == 75)
        // any case, a known stem with 's, curly apostrophes, hyphenated parts
        let more = RealWordShare(texts: ["ADAM's well-known CAT don’t", "cats"], dictionary: dictionary)
        #expect(more.words == 6 && more.realWords == 5)
        #expect(RealWordShare(texts: [], dictionary: dictionary).percent == 0)
    }

    @Test func dictionaryFilesAreReadAndBadOnesNamed() throws {
        let dir = try TemporaryDirectory()
        let file = dir.url.appendingPathComponent("words")
        try Data("Apple\n\nbanana\r\n".utf8).write(to: file)
        let d = try RealWordShare.Dictionary(contentsOf: file)
        #expect(d.contains("apple") && d.contains("BANANA") && !d.contains("cherry") && d.source == file.path)
        let empty = dir.url.appendingPathComponent("empty")
        try Data("\n \n".utf8).write(to: empty)
        #expect(throws: CorpusError.empty(file: empty.path)) { try RealWordShare.Dictionary(contentsOf: empty) }
        #expect(throws: CorpusError.self) { try RealWordShare.Dictionary(contentsOf: dir.url.appendingPathComponent("missing")) }
    }
}
