// libFuzzer harness: the CIFAR-10 and CIFAR-100 binary record parsers.
// Built by scripts/fuzz.sh together with Sources/Data; any crash, trap or non-DataError error is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for variant in [CIFARVariant.cifar10, .cifar100] {
        do {
            let records = try parseCIFAR(bytes, name: "fuzz.bin", variant: variant)
            precondition(records.pixels.count == records.count * CIFARVariant.imageBytes)
            precondition(records.labels.allSatisfy { $0 >= 0 && Int($0) < variant.classes })
        } catch is DataError {
        } catch {
            fatalError("unexpected error type: \(error)")
        }
    }
    return 0
}
