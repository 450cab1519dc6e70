// Moving arena slices (parameters, gradients' optimiser moments) in and out of checkpoints. Used between steps,
// never inside one: these copy.
import Tensor

extension TensorData {
    /// An F32 tensor holding a copy of `slice` of `arena`. Precondition: product(shape) = slice.count.
    public init(arena: Arena, slice: Slice, shape: [Int]) {
        self.init(copying: UnsafeBufferPointer(arena.view(slice)), shape: shape)
    }
}

extension SafeTensors {
    /// Adds a copy of `slice` of `arena` as the F32 tensor `name` of `shape`.
    public mutating func add(_ name: String, arena: Arena, slice: Slice, shape: [Int]) {
        add(name, TensorData(arena: arena, slice: slice, shape: shape))
    }

    /// Copies the tensor `name`, which must be F32 of `shape`, into `slice` of `arena`; throws `.missingTensor` or
    /// `.layoutMismatch` otherwise. Precondition: product(shape) = slice.count.
    public func load(_ name: String, shape: [Int], into arena: Arena, slice: Slice) throws {
        precondition(elementCount(shape) == slice.count,
                     "load \(name): shape \(shapeText(shape)) does not match slice \(slice.name) of \(slice.count)")
        try tensor(name, dtype: .f32, shape: shape).copy(into: arena.view(slice))
    }
}
