/// The middle of `values`: the middle element for an odd count, the mean of the two middle ones for
/// an even count; 0 for no values. What measured times are summarised by.
public func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/// The element at position `count / 2` of the sorted values: the median for an odd count, the upper
/// of the two middle elements for an even one. Always one of the values (never an average), so a
/// figure reported with it is one that was measured. `values` must not be empty.
public func upperMedian<Value: Comparable>(_ values: [Value]) -> Value {
    precondition(!values.isEmpty, "the median of no values")
    return values.sorted()[values.count / 2]
}
