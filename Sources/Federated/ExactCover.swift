/// Exact cover by Knuth's dancing links (Algorithm X).
///
/// Primary columns must be covered exactly once, secondary columns at most once. The design searches
/// phrase "every point in one group, every difference used once" this way; the caller shuffles rows
/// with a seeded generator, so a search is reproducible, and a node budget keeps it from running away.
struct ExactCover {
    private var left: [Int32]
    private var right: [Int32]
    private var up: [Int32]
    private var down: [Int32]
    private var column: [Int32]
    private var rowOf: [Int32]
    private var size: [Int32]

    init(primary: Int, secondary: Int, rows: [[Int]]) {
        let columns = primary + secondary
        let nodeCount = 1 + columns + rows.reduce(0) { $0 + $1.count }
        left = [Int32](repeating: 0, count: nodeCount)
        right = left
        up = left
        down = left
        column = left
        rowOf = [Int32](repeating: -1, count: nodeCount)
        size = [Int32](repeating: 0, count: columns + 1)
        // Node 0 is the root; headers 1...columns. Only primary headers hang off the root.
        for c in 0...columns {
            up[c] = Int32(c)
            down[c] = Int32(c)
            column[c] = Int32(c)
            left[c] = Int32(c)
            right[c] = Int32(c)
        }
        var previous: Int32 = 0
        for c in 1...max(primary, 1) where primary > 0 {
            right[Int(previous)] = Int32(c)
            left[c] = previous
            previous = Int32(c)
        }
        right[Int(previous)] = 0
        left[0] = previous
        var next = columns + 1
        for (r, row) in rows.enumerated() {
            var first = -1
            for c in row {
                let header = c + 1
                let node = next
                next += 1
                column[node] = Int32(header)
                rowOf[node] = Int32(r)
                up[node] = up[header]
                down[node] = Int32(header)
                down[Int(up[header])] = Int32(node)
                up[header] = Int32(node)
                size[header] += 1
                if first < 0 {
                    first = node
                    left[node] = Int32(node)
                    right[node] = Int32(node)
                } else {
                    left[node] = left[first]
                    right[node] = Int32(first)
                    right[Int(left[first])] = Int32(node)
                    left[first] = Int32(node)
                }
            }
        }
    }

    /// A set of rows covering every primary column once and no secondary column twice, or nil if none
    /// exists or the budget of row choices ran out first.
    mutating func solve(budget: Int) -> [Int]? {
        var solution: [Int] = []
        var remaining = budget
        return search(&solution, &remaining) ? solution : nil
    }

    private mutating func search(_ solution: inout [Int], _ remaining: inout Int) -> Bool {
        if right[0] == 0 { return true }
        var best = Int(right[0])
        var c = best
        while c != 0 {
            if size[c] < size[best] { best = c }
            if size[best] == 0 { return false }
            c = Int(right[c])
        }
        cover(best)
        var r = Int(down[best])
        while r != best {
            remaining -= 1
            if remaining < 0 { uncover(best); return false }
            solution.append(Int(rowOf[r]))
            var j = Int(right[r])
            while j != r { cover(Int(column[j])); j = Int(right[j]) }
            if search(&solution, &remaining) { return true }
            j = Int(left[r])
            while j != r { uncover(Int(column[j])); j = Int(left[j]) }
            solution.removeLast()
            if remaining < 0 { break }
            r = Int(down[r])
        }
        uncover(best)
        return false
    }

    private mutating func cover(_ c: Int) {
        right[Int(left[c])] = right[c]
        left[Int(right[c])] = left[c]
        var i = Int(down[c])
        while i != c {
            var j = Int(right[i])
            while j != i {
                up[Int(down[j])] = up[j]
                down[Int(up[j])] = down[j]
                size[Int(column[j])] -= 1
                j = Int(right[j])
            }
            i = Int(down[i])
        }
    }

    private mutating func uncover(_ c: Int) {
        var i = Int(up[c])
        while i != c {
            var j = Int(left[i])
            while j != i {
                size[Int(column[j])] += 1
                up[Int(down[j])] = Int32(j)
                down[Int(up[j])] = Int32(j)
                j = Int(left[j])
            }
            i = Int(up[i])
        }
        right[Int(left[c])] = Int32(c)
        left[Int(right[c])] = Int32(c)
    }
}
