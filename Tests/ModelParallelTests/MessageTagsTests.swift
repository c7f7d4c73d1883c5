@testable import Runtime
import Testing

/// The tag tables: on each communicator no two uses share a tag, and every tag is one MPI must accept.
@Suite struct MessageTagsTests {
    /// Every entry within 0...32767 and no two entries overlapping.
    func expectDisjoint(_ table: [(use: String, tags: ClosedRange<Int>)], on communicator: String) {
        #expect(!table.isEmpty)
        for entry in table {
            #expect(entry.tags.lowerBound >= 0 && entry.tags.upperBound <= 32_767, "\(communicator), \(entry.use): \(entry.tags)")
        }
        for (index, first) in table.enumerated() {
            for second in table[(index + 1)...] {
                #expect(!first.tags.overlaps(second.tags), "\(communicator): \(first.use) \(first.tags) meets \(second.use) \(second.tags)")
            }
        }
    }

    @Test func worldTagsAreDistinct() {
        expectDisjoint(MessageTags.World.table, on: "world")
        // The table holds every tag the world's messages use.
        let table = MessageTags.World.table
        #expect(table.contains { $0.tags.contains(MessageTags.World.loss) })
        #expect(table.contains { $0.tags.contains(MessageTags.World.parameters) })
        #expect(table.contains { $0.tags.contains(MessageTags.World.prediction) })
        for range in [MessageTags.World.tensors, MessageTags.World.evaluationTensors] {
            #expect(table.contains { $0.tags.lowerBound == range.lowerBound && $0.tags.upperBound == range.upperBound - 1 })
        }
    }

    /// The tags of one step's tensors are distinct and inside the tensor range, for any number of tensors
    /// per step the executor accepts and any step; consecutive steps use other tags while two steps fit.
    @Test(arguments: [1, 2, 7, 999, 4_001, 7_999, 8_000, 12_000, 12_001, 24_000])
    func tensorTagsOfAStepAreDistinctAndInRange(crossings: Int) {
        for range in [MessageTags.World.tensors, MessageTags.World.evaluationTensors] where crossings <= range.count {
            for step: UInt64 in [0, 1, 2, 5, 1_000_003, .max] {
                let tags = (0..<crossings).map { MessageTags.World.tensor(slot: $0, crossings: crossings, step: step, in: range) }
                #expect(Set(tags).count == crossings, "\(crossings) tensors in step \(step)")
                #expect(tags.allSatisfy { range.contains($0) }, "\(crossings) tensors in step \(step)")
                #expect(!tags.contains(MessageTags.World.loss) && !tags.contains(MessageTags.World.parameters))
                if 2 * crossings <= range.count, step < .max {
                    let next = (0..<crossings).map { MessageTags.World.tensor(slot: $0, crossings: crossings, step: step + 1, in: range) }
                    #expect(Set(tags).isDisjoint(with: next), "\(crossings) tensors, steps \(step) and \(step + 1)")
                }
            }
        }
    }

    @Test(arguments: [1, 2, 4, 7, 13, 100])
    func groupCreationTagsAreDistinct(classes: Int) {
        let table = MessageTags.World.GroupCreation.table(classes: classes)
        expectDisjoint(table, on: "world (group creation)")
        var tags = Set<Int>()
        for c in 0..<classes {
            tags.insert(MessageTags.World.GroupCreation.classGroup(c))
            tags.insert(MessageTags.World.GroupCreation.leaderGroup(c, classes: classes))
        }
        #expect(tags.count == 2 * classes)
        #expect(tags.allSatisfy { tag in table.contains { $0.tags.contains(tag) } })
    }

    @Test func classGroupTagsAreDistinctAndBounded() {
        expectDisjoint(MessageTags.ClassGroup.table, on: "class group")
        let range = MessageTags.ClassGroup.contributions
        #expect(range == 7_100..<8_100)
        for k in 0..<3_000 {
            let tag = MessageTags.ClassGroup.contribution(iteration: k)
            #expect(range.contains(tag), "iteration \(k): \(tag)")
            #expect(tag != MessageTags.ClassGroup.contribution(iteration: k + 1), "iterations \(k) and \(k + 1)")
        }
    }
}
