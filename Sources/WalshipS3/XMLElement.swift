/// A parsed XML element: the small subset S3 responses use (elements, text, attributes ignored,
/// the five named entities, numeric character references, CDATA, comments and the prolog).
///
/// S3 answers are short, flat documents (`ListBucketResult`, `Error`, `DeleteResult`, ...), so
/// a tree is built for the whole body; bodies are capped by the transport.
struct S3XMLElement: Sendable, Equatable {
    var name: String
    var text: String
    var children: [S3XMLElement]

    /// The first child named `name`.
    func child(_ name: String) -> S3XMLElement? {
        children.first { $0.name == name }
    }

    /// Every child named `name`.
    func children(_ name: String) -> [S3XMLElement] {
        children.filter { $0.name == name }
    }

    /// The text of the first child named `name`.
    func text(of name: String) -> String? {
        child(name)?.text
    }

    /// Parses a document and returns its root element, or nil when the bytes are not XML.
    static func parse(_ bytes: [UInt8]) -> S3XMLElement? {
        var parser = Parser(bytes: bytes)
        return parser.parseDocument()
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func parseDocument() -> S3XMLElement? {
            while index < bytes.count {
                skipWhitespace()
                if starts(with: "<?") {
                    guard skip(past: "?>") else { return nil }
                } else if starts(with: "<!--") {
                    guard skip(past: "-->") else { return nil }
                } else if starts(with: "<!") {
                    guard skip(past: ">") else { return nil }
                } else if index < bytes.count, bytes[index] == UInt8(ascii: "<") {
                    return parseElement()
                } else {
                    return nil
                }
            }
            return nil
        }

        mutating func parseElement() -> S3XMLElement? {
            guard consume("<") else { return nil }
            let name = readName()
            guard !name.isEmpty else { return nil }
            // Attributes are not used by S3 responses walship reads; skip to the tag's end.
            var selfClosing = false
            while index < bytes.count, bytes[index] != UInt8(ascii: ">") {
                if bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") {
                    let quote = bytes[index]
                    index += 1
                    while index < bytes.count, bytes[index] != quote { index += 1 }
                }
                if index < bytes.count, bytes[index] == UInt8(ascii: "/") {
                    selfClosing = true
                } else {
                    selfClosing = false
                }
                index += 1
            }
            guard consume(">") else { return nil }
            var element = S3XMLElement(name: name, text: "", children: [])
            if selfClosing { return element }
            var text: [UInt8] = []
            while index < bytes.count {
                if starts(with: "</") {
                    index += 2
                    let closing = readName()
                    skipWhitespace()
                    guard closing == name, consume(">") else { return nil }
                    element.text = String(decoding: text, as: UTF8.self)
                    return element
                } else if starts(with: "<![CDATA[") {
                    index += 9
                    let start = index
                    guard skip(past: "]]>") else { return nil }
                    text.append(contentsOf: bytes[start..<(index - 3)])
                } else if starts(with: "<!--") {
                    guard skip(past: "-->") else { return nil }
                } else if bytes[index] == UInt8(ascii: "<") {
                    guard let child = parseElement() else { return nil }
                    element.children.append(child)
                } else if bytes[index] == UInt8(ascii: "&") {
                    guard let decoded = readEntity() else { return nil }
                    text.append(contentsOf: decoded)
                } else {
                    text.append(bytes[index])
                    index += 1
                }
            }
            return nil
        }

        mutating func readEntity() -> [UInt8]? {
            guard let end = bytes[index...].firstIndex(of: UInt8(ascii: ";")), end - index <= 12 else { return nil }
            let entity = String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
            index = end + 1
            switch entity {
            case "amp": return Array("&".utf8)
            case "lt": return Array("<".utf8)
            case "gt": return Array(">".utf8)
            case "quot": return Array("\"".utf8)
            case "apos": return Array("'".utf8)
            default:
                let scalarValue: UInt32?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    scalarValue = UInt32(entity.dropFirst(2), radix: 16)
                } else if entity.hasPrefix("#") {
                    scalarValue = UInt32(entity.dropFirst(1))
                } else {
                    scalarValue = nil
                }
                guard let scalarValue, let scalar = Unicode.Scalar(scalarValue) else { return nil }
                return Array(String(Character(scalar)).utf8)
            }
        }

        mutating func readName() -> String {
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: ">") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: " ")
                    || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                {
                    break
                }
                index += 1
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        mutating func skipWhitespace() {
            while index < bytes.count,
                bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D
                    || bytes[index] == 0xEF || bytes[index] == 0xBB || bytes[index] == 0xBF
            {
                index += 1
            }
        }

        func starts(with text: String) -> Bool {
            let pattern = Array(text.utf8)
            guard index + pattern.count <= bytes.count else { return false }
            return bytes[index..<(index + pattern.count)].elementsEqual(pattern)
        }

        mutating func consume(_ text: String) -> Bool {
            guard starts(with: text) else { return false }
            index += text.utf8.count
            return true
        }

        /// Moves past the next occurrence of `text`; false when it does not occur.
        mutating func skip(past text: String) -> Bool {
            while index < bytes.count {
                if consume(text) { return true }
                index += 1
            }
            return false
        }
    }
}
