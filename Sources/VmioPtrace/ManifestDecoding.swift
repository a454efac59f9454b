import Foundation

extension DumpManifest {
    /// A decoding failure of a manifest as one line that names the field by its path in the
    /// JSON (`regions[0]: missing "start"`, `regions[0].inode: expected a number`), not
    /// Swift's `DecodingError` description with its coding keys.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text
        }
        func at(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "" : path(codingPath) + ": "
        }
        func kind(_ type: Any.Type) -> String {
            if type == String.self { return "a string" }
            if type == Bool.self { return "true or false" }
            if type is any BinaryInteger.Type || type is any BinaryFloatingPoint.Type { return "a number" }
            if type is any Collection.Type { return "an array" }
            return "an object"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return at(context.codingPath) + "missing \"\(key.stringValue)\""
        case .typeMismatch(let type, let context):
            return at(context.codingPath) + "expected \(kind(type))"
        case .valueNotFound(let type, let context):
            return at(context.codingPath) + "expected \(kind(type)), found null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let cause = (context.underlyingError as NSError?)?.localizedDescription
                return "not valid JSON" + (cause.map { " (\($0))" } ?? "")
            }
            return at(context.codingPath) + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }
}
