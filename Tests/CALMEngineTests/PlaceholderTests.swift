import Testing
@Test func placeholderEngine() { #expect(1 + 1 == 2) }
