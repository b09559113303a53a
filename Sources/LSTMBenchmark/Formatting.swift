import Foundation

/// Formats a number with a fixed count of decimals.
public func fixed(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}

/// Formats a small difference in scientific notation.
public func scientific(_ value: Float) -> String {
    value.isFinite ? String(format: "%.2e", Double(value)) : "\(value)"
}

/// Pads `text` to `width` columns (left-aligned, or right-aligned when `right`).
public func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return right ? fill + text : text + fill
}
