/// (B, C, H, W) → (B, C·H·W): a no-op on contiguous NCHW storage, so the network passes the same buffer on.
///
/// Kept as a type so the layer sequence reads like the PyTorch one and the feature count is named; its
/// forward/backward copy only when given distinct buffers.
public struct Flatten: Sendable {
    public let channels: Int, height: Int, width: Int
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels; self.height = height; self.width = width
    }
    /// C·H·W, in PyTorch's flatten order c·H·W + y·W + x.
    public var features: Int { channels * height * width }

    /// output = input viewed as (B, C·H·W).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        if UnsafePointer(output) != input { output.update(from: input, count: batch * features) }
    }

    /// dInput = dOutput viewed as (B, C, H, W); **overwrites** `dInput`.
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, batch: Int) {
        if UnsafePointer(dInput) != dOutput { dInput.update(from: dOutput, count: batch * features) }
    }
}
