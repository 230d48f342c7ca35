import Testing
@Test func placeholderCALMTensorTests() { #expect(1 + 1 == 2) }
