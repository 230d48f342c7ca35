/// The group a golden tensor key belongs to, as the fixtures README names groups: `enc`, `bb`,
/// `gen`, `gen_eos`, `gen_T0.5`, `ts_real`, `train`, `grad`, …
///
/// A group name is the key's first dot-separated component, except that a name ending in a digit
/// keeps the decimal part that follows it: the temperature in `gen_T0.5.prompt_ids` (group
/// `gen_T0.5`, not `gen_T0`). Leaves never start with a digit right after such a name, and
/// parameter paths such as `grad.embed_proj.0.bias` stay in `grad` (it does not end in a digit).
enum GoldenKeyGroup {
    static func of(_ key: String) -> String {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard var group = parts.first.map(String.init) else { return key }
        var i = 1
        // a decimal fraction: only digits, and something (the leaf) must still follow it
        while i + 1 < parts.count, group.last?.isNumber == true, !parts[i].isEmpty,
              parts[i].allSatisfy({ $0.isASCII && $0.isNumber }) {
            group += "." + parts[i]
            i += 1
        }
        return group
    }

    /// Keys bucketed by group.
    static func grouping(_ keys: [String]) -> [String: [String]] {
        Dictionary(grouping: keys, by: of)
    }
}
