import Yams

/// walship.yml as written, decoded with Yams' `YAMLDecoder` into typed sections (the top level,
/// each bucket, each database) before any value is read: `ConfigFile` then expands `${NAME}`,
/// reads each value as a duration, size, number or flag, and reports every problem at once. A
/// section keeps every key written (the unknown ones are problems) and never fails to decode:
/// a value of the wrong shape is kept as written (`Lenient.invalid`) to be reported with the rest.
struct ConfigDocument: Decodable {
    var top: TopSection

    init(from decoder: any Decoder) throws {
        top = try TopSection(from: decoder)
    }

    /// Decodes `text`: nil when it is not a mapping at all; throws when it is not YAML.
    static func decode(_ text: String) throws -> ConfigDocument? {
        guard let node = try Yams.compose(yaml: text) else { return nil }
        return try YAMLDecoder().decode(Lenient<ConfigDocument>.self, from: node).value
    }
}

/// A value as written: a scalar's text (strings, numbers and booleans alike: `${NAME}` is
/// expanded before a value is read as a duration, size, number or flag), a list, a mapping, or
/// nothing (`key:` with no value).
enum ConfigValue: Decodable, Equatable {
    case scalar(String)
    case list([ConfigValue])
    case mapping([String: ConfigValue])
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let text = try? container.decode(String.self) {
            self = .scalar(text)
        } else if let list = try? container.decode([ConfigValue].self) {
            self = .list(list)
        } else {
            self = .mapping(try container.decode([String: ConfigValue].self))
        }
    }
}

/// A `T` when the value has its shape, else the value as written.
enum Lenient<T: Decodable>: Decodable {
    case value(T)
    case invalid(ConfigValue)

    init(from decoder: any Decoder) throws {
        if let value = try? T(from: decoder) {
            self = .value(value)
        } else {
            self = .invalid(try ConfigValue(from: decoder))
        }
    }

    var value: T? {
        if case .value(let value) = self { return value }
        return nil
    }
}

/// A key of a section, as written.
struct ConfigKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ key: String) { stringValue = key }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A mapping of walship.yml: every key written, and each value by key.
struct ConfigSection: Decodable {
    /// The keys in the order written.
    var keys: [String]
    var values: [String: ConfigValue]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigKey.self)
        keys = container.allKeys.map(\.stringValue)
        values = [:]
        for key in container.allKeys {
            values[key.stringValue] = try container.decode(ConfigValue.self, forKey: key)
        }
    }

    subscript(_ key: String) -> ConfigValue? { values[key] }
}

/// The top level: the global settings, `buckets:` (a mapping of names to buckets) and
/// `databases:` (a list).
struct TopSection: Decodable {
    var settings: ConfigSection
    /// nil when `buckets:` is not written.
    var buckets: Lenient<[String: Lenient<BucketSection>]>?
    var databases: Lenient<[Lenient<DatabaseSection>]>?

    init(from decoder: any Decoder) throws {
        settings = try ConfigSection(from: decoder)
        let container = try decoder.container(keyedBy: ConfigKey.self)
        buckets = try container.decodeIfPresent(Lenient.self, forKey: ConfigKey("buckets"))
        databases = try container.decodeIfPresent(Lenient.self, forKey: ConfigKey("databases"))
    }
}

/// One entry of `buckets:`.
typealias BucketSection = ConfigSection

/// One entry of `databases:`.
typealias DatabaseSection = ConfigSection
