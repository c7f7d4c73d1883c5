import Foundation
import Runtime
import Testing

/// The resident memory a rank reports is the operating system's: touching 64 MiB raises it by as much.
@Suite(.serialized) struct ResidentMemoryTests {
    @Test func touchedMemoryShowsInTheResidentSetAndItsPeak() throws {
        let before = try #require(ResidentMemory.currentBytes)
        let peakBefore = try #require(ResidentMemory.peakBytes)
        #expect(before > 1 << 20 && peakBefore >= before)
        let count = 64 << 20
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        defer { block.deallocate() }
        for offset in stride(from: 0, to: count, by: 4096) { block[offset] = UInt8(truncatingIfNeeded: offset >> 12) }
        let after = try #require(ResidentMemory.currentBytes)
        let peakAfter = try #require(ResidentMemory.peakBytes)
        #expect(after - before >= 60 << 20, "resident \(before) -> \(after)")
        #expect(peakAfter >= after && peakAfter >= peakBefore)
        #expect(block[4096] == 1)
    }
}
