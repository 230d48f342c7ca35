import Testing
@Test func placeholderCALMConformanceTests() { #expect(1 + 1 == 2) }
