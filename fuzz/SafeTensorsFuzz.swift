// libFuzzer harness: the safetensors reader. Whatever it accepts must survive a write/read round trip unchanged.
// Built by scripts/fuzz.sh together with Sources/Checkpoint; any crash, trap or non-CheckpointError is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let parsed = try SafeTensors.parse(bytes, file: "fuzz.safetensors", requireChecksum: false)
        let again = try SafeTensors.parse(parsed.serialized(), file: "round-trip")
        precondition(Set(again.names) == Set(parsed.names), "round trip changed the tensor names")
        for name in parsed.names { precondition(again[name] == parsed[name], "round trip changed \(name)") }
        var metadata = parsed.metadata
        metadata[CheckpointKey.checksum] = again.metadata[CheckpointKey.checksum]
        precondition(again.metadata == metadata, "round trip changed the metadata")
    } catch is CheckpointError {
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    return 0
}
