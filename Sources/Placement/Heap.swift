/// A binary min-heap of `(key, tie, value)` ordered by `key`, then `tie`.
/// The tie is typically a topological rank (and a device), so equal keys resolve deterministically.
struct KeyedHeap {
    struct Entry {
        var key: Double
        var tie: Int64
        var value: Int32
        var stamp: Int32

        @inline(__always) static func < (a: Entry, b: Entry) -> Bool {
            a.key < b.key || (a.key == b.key && a.tie < b.tie)
        }
    }

    private(set) var entries: [Entry] = []

    init(capacity: Int = 0) { entries.reserveCapacity(capacity) }

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    var top: Entry? { entries.first }

    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    mutating func push(key: Double, tie: Int64, value: Int32, stamp: Int32 = 0) {
        entries.append(Entry(key: key, tie: tie, value: value, stamp: stamp))
        var child = entries.count - 1
        let item = entries[child]
        while child > 0 {
            let parent = (child - 1) / 2
            if !(item < entries[parent]) { break }
            entries[child] = entries[parent]
            child = parent
        }
        entries[child] = item
    }

    @discardableResult
    mutating func pop() -> Entry? {
        guard let first = entries.first else { return nil }
        let last = entries.removeLast()
        if entries.isEmpty { return first }
        var parent = 0
        let count = entries.count
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && entries[child + 1] < entries[child] { child += 1 }
            if !(entries[child] < last) { break }
            entries[parent] = entries[child]
            parent = child
        }
        entries[parent] = last
        return first
    }
}
