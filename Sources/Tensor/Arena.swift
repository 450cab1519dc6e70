// Owned, aligned, zero-initialised memory. Every buffer of the training step is one of these, allocated once
// after shapes are known; layers and losses address them through `Slice`s and raw pointers.

/// A fixed-size block of `Element`s, 64-byte aligned, zero-filled at creation, freed on deinit.
public final class Buffer<Element>: @unchecked Sendable {
    /// The elements, valid for the buffer's lifetime.
    public let storage: UnsafeMutableBufferPointer<Element>

    /// Allocates `count` elements set to `value`.
    public init(count: Int, repeating value: Element) {
        precondition(count >= 0, "Buffer count must be >= 0, got \(count)")
        let bytes = max(1, count) * MemoryLayout<Element>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let typed = raw.bindMemory(to: Element.self, capacity: max(1, count))
        typed.initialize(repeating: value, count: count)
        storage = UnsafeMutableBufferPointer(start: typed, count: count)
    }

    /// Allocates a copy of `values`.
    public convenience init(_ values: [Element]) where Element: Numeric {
        self.init(count: values.count, repeating: 0)
        for (i, v) in values.enumerated() { storage[i] = v }
    }

    deinit {
        storage.baseAddress!.deinitialize(count: storage.count)
        UnsafeMutableRawPointer(storage.baseAddress!).deallocate()
    }

    /// Number of elements.
    @inlinable public var count: Int { storage.count }
    /// Bytes of the elements (count × the element's stride; memory reports).
    public var byteCount: Int { count * MemoryLayout<Element>.stride }
    /// First element.
    @inlinable public var base: UnsafeMutablePointer<Element> { storage.baseAddress! }

    /// Element `i` (bounds-checked in debug builds).
    @inlinable public subscript(i: Int) -> Element {
        get { storage[i] }
        set { storage[i] = newValue }
    }

    /// The first element of `slice`.
    @inlinable public func pointer(_ slice: Slice) -> UnsafeMutablePointer<Element> {
        precondition(slice.offset + slice.count <= count,
                     "slice \(slice.name) [\(slice.offset), \(slice.offset + slice.count)) beyond buffer of \(count)")
        return base + slice.offset
    }

    /// The elements of `slice` as a buffer pointer.
    @inlinable public func view(_ slice: Slice) -> UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: pointer(slice), count: slice.count)
    }

    /// A copy of the contents (for tests and checkpoints, never the hot step).
    public func toArray() -> [Element] { Array(storage) }
}

extension Buffer where Element: Numeric {
    /// Allocates `count` zeros.
    public convenience init(count: Int) { self.init(count: count, repeating: 0) }
    /// Sets every element to zero.
    @inlinable public func zero() { storage.update(repeating: 0) }
}

/// The Float arena that parameters, gradients, moments and activations live in.
public typealias Arena = Buffer<Float>

/// A named range of an arena. Parameters and gradients share one layout, so a parameter's slice also
/// indexes its gradient.
public struct Slice: Sendable, Equatable {
    public let offset: Int
    public let count: Int
    public let name: String
    public init(offset: Int, count: Int, name: String = "") {
        self.offset = offset; self.count = count; self.name = name
    }
}

/// Plans an arena: hands out 64-byte-aligned slices, then reports the total size to allocate.
public struct ArenaLayout: Sendable {
    /// Slices in the order they were reserved.
    public private(set) var slices: [Slice] = []
    /// Elements needed to hold every slice.
    public private(set) var total: Int = 0

    public init() {}

    /// Reserves `count` elements, starting on a 16-element (64-byte) boundary.
    public mutating func reserve(_ count: Int, name: String) -> Slice {
        precondition(count >= 0, "reserve \(name): negative count \(count)")
        let offset = (total + 15) / 16 * 16
        let slice = Slice(offset: offset, count: count, name: name)
        slices.append(slice)
        total = offset + count
        return slice
    }
}
