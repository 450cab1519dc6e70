/// The rectifier y = max(x, 0), elementwise over `count` values; safe in place (output == input).
///
/// Its backward needs only the forward *output* (y > 0 ⇔ x > 0), so the network applies it in place on the
/// preceding layer's output and keeps one buffer per activation. PyTorch's convention ReLU'(0) = 0 is used.
public struct ReLU: Sendable {
    public init() {}

    /// y = max(x, 0). `output` may equal `input`. NaN propagates (as in PyTorch).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = input[i]
            output[i] = x < 0 ? 0 : x
        }
    }

    /// dX = dY · [y > 0], from the forward `output` y. **Overwrites** `dInput`, which may equal `dOutput`.
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         dInput: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            dInput[i] = output[i] > 0 ? dOutput[i] : 0
        }
    }
}
