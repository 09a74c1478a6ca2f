/// Text for XML and HTML: element content and quoted attribute values.
public enum Markup {
    /// Escapes the five characters XML and HTML reserve (`'` as `&#39;`, which both read).
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
