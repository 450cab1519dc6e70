import FileIO
import Testing

@Suite struct ProcessMemoryTests {
    /// Touching 64 MB raises the peak by about that much; after freeing it and resetting, the peak is back near the
    /// current size.
    @Test func peakFollowsAllocationsAndResets() throws {
        let before = try #require(ProcessMemory.currentResidentBytes())
        #expect(before > 1 << 20)
        #expect(try #require(ProcessMemory.peakResidentBytes()) >= before)
        guard ProcessMemory.resetPeak() else { return }  // a kernel without clear_refs: nothing more to check
        let bytes = 64 << 20
        let block = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes)
        block.initialize(repeating: 1, count: bytes)
        let peak = try #require(ProcessMemory.peakResidentBytes())
        #expect(peak >= before + bytes - (8 << 20), "peak \(peak) after touching 64 MB over \(before)")
        block.deallocate()
        #expect(ProcessMemory.resetPeak())
        let after = try #require(ProcessMemory.peakResidentBytes())
        #expect(after < peak - (32 << 20), "peak \(after) after freeing and resetting (was \(peak))")
    }
}
