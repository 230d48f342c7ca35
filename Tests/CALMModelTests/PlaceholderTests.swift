import Testing
@Test func placeholderCALMModelTests() { #expect(1 + 1 == 2) }
