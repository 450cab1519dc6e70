// libFuzzer harness: the JSON config loader (TrainConfig decoding, validation, re-encoding).
// Built by scripts/fuzz.sh together with Sources/Train/TrainConfig.swift; a crash or trap is a finding (decoding
// errors are the expected outcome for bad input).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Foundation.Data(bytes: data, count: size)
    guard let config = try? JSONDecoder().decode(TrainConfig.self, from: bytes) else { return 0 }
    _ = config.baseLearningRate
    guard config.problems().isEmpty else { return 0 }
    // A valid config is written to DIR/config.json: it must encode, and decode back to the same value.
    guard let json = try? config.json() else { fatalError("a config that passes problems() does not encode") }
    let again = try! JSONDecoder().decode(TrainConfig.self, from: Foundation.Data(json.utf8))
    precondition(again == config || !config.isComparable, "config changed in a JSON round trip")
    return 0
}

extension TrainConfig {
    /// False when a Double field is NaN (NaN != NaN, so equality cannot confirm the round trip).
    var isComparable: Bool {
        [lambda, tau, beta, weightDecay, momentum, warmupEpochs, lr ?? 0].allSatisfy { !$0.isNaN }
    }
}
