@testable import FileIO
import Testing

@Suite(.serialized) struct ProcessMemoryTests {
    #if os(Linux)
    @Test func residentSizeFollowsTouchedPages() {
        let mib = 1 << 20
        // Current and peak from one read: other tests run in this process and free memory at any time, so two
        // separate reads could see the peak below an earlier current size.
        guard let (start, peak0) = ProcessMemory.residentSnapshot(), let single = ProcessMemory.currentResidentBytes(),
              ProcessMemory.peakResidentBytes() != nil else {
            Issue.record("/proc/self/status unreadable"); return
        }
        #expect(start > 0 && single > 0 && peak0 >= start)
        // 128 MiB, every page written: resident grows by about that much (unless other tests free as much at once).
        let count = 128 * mib
        let block = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 4096)
        for i in stride(from: 0, to: count, by: 4096) { block.storeBytes(of: 1, toByteOffset: i, as: UInt8.self) }
        let (touched, peak1) = ProcessMemory.residentSnapshot()!
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
