import Testing
@Test func placeholderTraining() { #expect(1 + 1 == 2) }
