// libFuzzer harness: the IDX reader behind `readIDX` (gzip detection, gunzip, header and size checks).
// Built by scripts/fuzz.sh together with Sources/Data; any crash, trap or non-DataError error is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        if isGzip(bytes) { bytes = try gunzip(bytes, name: "fuzz.gz") }
        _ = try? parseIDX(bytes, name: "fuzz", expectedDimensions: 3)
        let array = try parseIDX(bytes, name: "fuzz")
        precondition(array.bytes.count == array.dimensions.reduce(1, *), "IDX size disagrees with its header")
    } catch is DataError {
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    // The raw DEFLATE entry point too.
    do { _ = try inflate(Array(UnsafeBufferPointer(start: data, count: size)), name: "fuzz") } catch is DataError {
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    return 0
}
