import Basics

/// One entry of the list schedulers' heaps: ordered by `key`, then `tie`; `value` and `stamp` ride along.
/// The tie is typically a topological rank (and a device), so equal keys resolve deterministically.
struct KeyedEntry: Comparable {
    var key: Double
    var tie: Int64
    var value: Int32
    var stamp: Int32

    @inline(__always) static func < (a: KeyedEntry, b: KeyedEntry) -> Bool {
        a.key < b.key || (a.key == b.key && a.tie < b.tie)
    }

    /// Equal in the heap's order (same key and tie), whatever they carry.
    @inline(__always) static func == (a: KeyedEntry, b: KeyedEntry) -> Bool {
        a.key == b.key && a.tie == b.tie
    }
}

/// A min-heap of `KeyedEntry`.
typealias KeyedHeap = MinHeap<KeyedEntry>

extension MinHeap where Element == KeyedEntry {
    @inline(__always) mutating func push(key: Double, tie: Int64, value: Int32, stamp: Int32 = 0) {
        push(KeyedEntry(key: key, tie: tie, value: value, stamp: stamp))
    }
}
