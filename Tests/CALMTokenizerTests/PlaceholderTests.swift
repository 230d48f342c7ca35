import Testing
@Test func placeholderCALMTokenizerTests() { #expect(1 + 1 == 2) }
