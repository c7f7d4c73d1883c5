/// A binary min-heap: `pop` returns the smallest element by `<`.
///
/// Elements that compare equal come out in an order fixed by the sequence of pushes and pops (not
/// by insertion order), the same on every run, which is what the list schedulers' ties rely on.
public struct MinHeap<Element: Comparable> {
    @usableFromInline var storage: [Element] = []

    @inlinable public init(capacity: Int = 0) { storage.reserveCapacity(capacity) }

    /// The elements in heap order (the first is the smallest; the rest in no sorted order).
    @inlinable public var elements: [Element] { storage }
    @inlinable public var isEmpty: Bool { storage.isEmpty }
    @inlinable public var count: Int { storage.count }
    /// The smallest element, left in the heap.
    @inlinable public var top: Element? { storage.first }

    @inlinable public mutating func removeAll() { storage.removeAll(keepingCapacity: true) }

    @inlinable public mutating func push(_ item: Element) {
        storage.append(item)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !(item < storage[parent]) { break }
            storage[child] = storage[parent]
            child = parent
        }
        storage[child] = item
    }

    /// Removes and returns the smallest element.
    @inlinable @discardableResult
    public mutating func pop() -> Element? {
        guard let first = storage.first else { return nil }
        let last = storage.removeLast()
        if storage.isEmpty { return first }
        var parent = 0
        let count = storage.count
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && storage[child + 1] < storage[child] { child += 1 }
            if !(storage[child] < last) { break }
            storage[parent] = storage[child]
            parent = child
        }
        storage[parent] = last
        return first
    }
}

extension MinHeap: Sendable where Element: Sendable {}
