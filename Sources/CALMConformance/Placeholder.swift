public enum CALMConformancePlaceholder {}
