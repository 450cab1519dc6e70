@testable import FileIO
import Testing

@Suite(.serialized) struct ProcessMemoryTests {
    #if os(Linux)
    @Test func residentSizeFollowsTouchedPages() {
        let mib = 1 << 20
        guard let start = ProcessMemory.currentResidentBytes(), let peak0 = ProcessMemory.peakResidentBytes() else {
            Issue.record("/proc/self/status unreadable"); return
        }
        #expect(start > 0 && peak0 >= start)
        // 128 MiB, every page written: resident grows by about that much (other tests may only add to it).
        let count = 128 * mib
        let block = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 4096)
        for i in stride(from: 0, to: count, by: 4096) { block.storeBytes(of: 1, toByteOffset: i, as: UInt8.self) }
        let touched = ProcessMemory.currentResidentBytes()!
        let peak1 = ProcessMemory.peakResidentBytes()!
        #expect(touched - start >= 96 * mib, "resident \(start) → \(touched)")
        #expect(peak1 >= touched)
        block.deallocate()
        // After the free the peak stays (the kernel's counters lag by up to 64 pages per thread: 1 MiB slack); a
        // reset (when permitted) brings it back down to about the current size.
        #expect(ProcessMemory.peakResidentBytes()! >= peak1 - mib)
        if ProcessMemory.resetPeak() {
            let peak2 = ProcessMemory.peakResidentBytes()!
            #expect(peak2 < peak1 - 64 * mib, "peak \(peak1) → \(peak2) after reset")
        }
    }

    @Test func fieldParsing() {
        #expect(ProcessMemory.statusField("NoSuchField:") == nil)
        #expect((ProcessMemory.statusField("VmSize:") ?? 0) > 0)
    }
    #endif
}
