/// Disjoint sets over `0..<count` (growing with `append()`), with path halving.
///
/// Two ways to join, because some callers name a set by its root: `union` keeps trees shallow (the
/// larger set's root wins), `merge(_:into:)` lets the caller say which root survives (the earliest
/// node, the first label seen), so that names come out the same whatever order sets were joined in.
public struct UnionFind<Index: FixedWidthInteger & Sendable>: Sendable {
    @usableFromInline var parent: [Index]
    @usableFromInline var size: [Index]

    @inlinable public init(count: Int) {
        parent = (0..<count).map { Index($0) }
        size = [Index](repeating: 1, count: count)
    }

    /// How many elements there are (sets or not).
    @inlinable public var count: Int { parent.count }

    /// Adds a new element in a set of its own and returns it.
    @inlinable public mutating func append() -> Index {
        let element = Index(parent.count)
        parent.append(element)
        size.append(1)
        return element
    }

    /// The root of `x`'s set.
    @inlinable public mutating func find(_ x: Index) -> Index {
        var x = x
        while parent[Int(x)] != x {
            parent[Int(x)] = parent[Int(parent[Int(x)])]
            x = parent[Int(x)]
        }
        return x
    }

    /// Joins the sets of `a` and `b` by size (the root of `a` on a tie); returns the new root.
    @inlinable @discardableResult
    public mutating func union(_ a: Index, _ b: Index) -> Index {
        var ra = find(a), rb = find(b)
        if ra == rb { return ra }
        if size[Int(ra)] < size[Int(rb)] { swap(&ra, &rb) }
        parent[Int(rb)] = ra
        size[Int(ra)] += size[Int(rb)]
        return ra
    }

    /// Joins the set of `b` into the set of `a`: the root of `a` stays the root. Returns it.
    @inlinable @discardableResult
    public mutating func merge(_ b: Index, into a: Index) -> Index {
        let ra = find(a), rb = find(b)
        if ra == rb { return ra }
        parent[Int(rb)] = ra
        size[Int(ra)] += size[Int(rb)]
        return ra
    }
}
