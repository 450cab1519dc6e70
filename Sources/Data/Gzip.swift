import FileIO
// Gzip (RFC 1952) around DEFLATE (RFC 1951): stored, fixed-Huffman and dynamic-Huffman blocks, with the CRC-32 and
// ISIZE trailer checks. Whole input in memory, no streaming: enough to read dataset files without a zlib module.
//
// Legend: a "symbol" is a decoded Huffman value; litlen = the literal/length alphabet (0…285), dist = the distance
// alphabet (0…29). Bits are read least-significant first; Huffman codes are stored most-significant bit first, so
// the fast lookup table is indexed by bit-reversed codes.

// MARK: - Public entry points

/// Decompresses the bytes of a gzip file (one or more concatenated members) into the original bytes.
/// Checks the header, each member's CRC-32 and ISIZE, and that nothing but whole members follows.
/// `name` labels errors; `maxOutput` caps the decompressed size (a hostile file cannot make it allocate more).
public func gunzip(_ input: [UInt8], name: String, maxOutput: Int = 1 << 32) throws -> [UInt8] {
    try input.withUnsafeBufferPointer { source in
        var inflater = Inflater(input: source, name: name, maxOutput: maxOutput)
        defer { inflater.release() }
        // ISIZE of the last member is a hint for the output size; DEFLATE cannot expand more than 1032:1, so a
        // larger claim is corrupt and is not used to reserve memory.
        if source.count >= 18 {
            let hint = Int(readLE32(source, source.count - 4))
            if hint <= 1032 * source.count + 1024 { inflater.reserve(min(hint, maxOutput)) }
        }
        var position = 0
        repeat {
            position = try inflater.gzipMember(at: position)
        } while position < source.count
        return inflater.takeOutput()
    }
}

/// Decompresses a raw DEFLATE stream (no gzip or zlib wrapper); returns the output and the bytes consumed.
public func inflate(_ input: [UInt8], name: String,
                    maxOutput: Int = 1 << 32) throws -> (output: [UInt8], consumed: Int) {
    try input.withUnsafeBufferPointer { source in
        var inflater = Inflater(input: source, name: name, maxOutput: maxOutput)
        defer { inflater.release() }
        let consumed = try inflater.deflateStream(from: 0)
        return (inflater.takeOutput(), consumed)
    }
}

/// Whether `bytes` start with the gzip magic number 1F 8B.
public func isGzip(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
}

@inline(__always)
func readLE32(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
    UInt32(p[i]) | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2]) << 16 | UInt32(p[i + 3]) << 24
}


// MARK: - Huffman tables

/// A canonical Huffman code built from code lengths: a 2^fastBits lookup for short codes, and the counts and
/// sorted symbols that the bit-by-bit decoder (as in zlib's puff.c) uses for longer ones.
struct HuffmanTable {
    static let fastBits = 10
    /// Indexed by the next fastBits input bits; entry = symbol << 4 | length, or 0 when the code is longer.
    var fast: [UInt16]
    /// counts[l] = number of codes of length l, l in 1…15.
    var counts: [Int]
    /// Symbols in canonical code order.
    var symbols: [UInt16]

    /// Builds the code for `lengths[s]` (0 = symbol unused). Over-subscribed length sets are rejected;
    /// incomplete ones are allowed (an unassigned code is reported when it is met).
    init(lengths: ArraySlice<UInt8>, name: String, what: String) throws {
        counts = [Int](repeating: 0, count: 16)
        for l in lengths { counts[Int(l)] += 1 }
        counts[0] = 0
        var left = 1
        for l in 1...15 {
            left <<= 1
            left -= counts[l]
            if left < 0 {
                throw DataError(.corruptGzip, file: name, "corrupt deflate stream: over-subscribed \(what) code")
            }
        }
        var offsets = [Int](repeating: 0, count: 16)
        for l in 1..<15 { offsets[l + 1] = offsets[l] + counts[l] }
        symbols = [UInt16](repeating: 0, count: lengths.count)
        var nextCode = [Int](repeating: 0, count: 16)
        var code = 0
        for l in 1...15 {
            code = (code + counts[l - 1]) << 1
            nextCode[l] = code
        }
        // counts[0] was zeroed above, so nextCode[1] = 0 as the canonical construction requires.
        let size = 1 << Self.fastBits
        fast = [UInt16](repeating: 0, count: size)
        for (s, l8) in zip(0..., lengths) {
            let l = Int(l8)
            if l == 0 { continue }
            symbols[offsets[l]] = UInt16(s)
            offsets[l] += 1
            let c = nextCode[l]
            nextCode[l] += 1
            if l <= Self.fastBits {
                var reversed = 0
                for bit in 0..<l where (c >> bit) & 1 != 0 { reversed |= 1 << (l - 1 - bit) }
                let entry = UInt16(s << 4 | l)
                var j = reversed
                while j < size {
                    fast[j] = entry
                    j += 1 << l
                }
            }
        }
    }
}

// MARK: - Inflater

/// Decoder state: input cursor and bit buffer, and a growable output buffer that is handed back as an array.
struct Inflater {
    let input: UnsafeBufferPointer<UInt8>
    let name: String
    let maxOutput: Int
    /// Next input byte to load into `bits`. Bytes past the end load as zeros; see `refill`.
    var position = 0
    var bits: UInt64 = 0
    var bitCount = 0
    var output: UnsafeMutablePointer<UInt8>
    var capacity: Int
    var length = 0

    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                    67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                     4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                      1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
                                       9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    init(input: UnsafeBufferPointer<UInt8>, name: String, maxOutput: Int) {
        self.input = input
        self.name = name
        self.maxOutput = maxOutput
        // Capacity never exceeds maxOutput, so the limit is checked whenever the buffer would have to grow.
        capacity = max(1, min(1 << 16, maxOutput))
        output = .allocate(capacity: capacity)
    }

    func release() { output.deallocate() }

    mutating func reserve(_ count: Int) {
        if count > capacity { grow(to: count) }
    }

    mutating func grow(to needed: Int) {
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        newCapacity = max(needed, min(newCapacity, maxOutput))
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        bigger.update(from: output, count: length)
        output.deallocate()
        output = bigger
        capacity = newCapacity
    }

    /// Makes room for `count` more output bytes, enforcing `maxOutput`.
    @inline(__always)
    mutating func ensure(_ count: Int) throws {
        if length + count > capacity {
            if length + count > maxOutput {
                throw DataError(.corruptGzip, file: name,
                                "decompressed data exceeds the limit of \(maxOutput) bytes")
            }
            grow(to: length + count)
        }
    }

    func takeOutput() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: length) { buffer, initialised in
            if length > 0 { buffer.baseAddress!.update(from: output, count: length) }
            initialised = length
        }
    }

    func corrupt(_ what: String) -> DataError {
        DataError(.corruptGzip, file: name, "corrupt deflate stream: \(what)")
    }

    // MARK: Bits

    /// Tops the bit buffer up to at least 57 bits. Past the end of the input it shifts in zeros; once more than
    /// 8 such bytes have been loaded, at least one of them has been consumed, so the stream is truncated.
    @inline(__always)
    mutating func refill() throws {
        if position + 8 <= input.count {
            // Load 8 bytes at once; the bytes beyond the ones counted are the very next input bytes, so OR-ing
            // them in again on the next refill leaves them unchanged.
            let word = UInt64(littleEndian: UnsafeRawPointer(input.baseAddress! + position)
                .loadUnaligned(as: UInt64.self))
            bits |= word << UInt64(bitCount)
            position += (63 - bitCount) >> 3
            bitCount |= 56
        } else {
            while bitCount <= 56 {
                if position < input.count {
                    bits |= UInt64(input[position]) << UInt64(bitCount)
                } else if position >= input.count + 8 {
                    throw DataError(.corruptGzip, file: name, "truncated deflate stream (input ended mid-block)")
                }
                position += 1
                bitCount += 8
            }
        }
    }

    /// The next `count` bits (count ≤ 32) as an integer, first bit least significant.
    @inline(__always)
    mutating func take(_ count: Int) throws -> Int {
        if bitCount < count { try refill() }
        let value = Int(bits & ((1 << UInt64(count)) &- 1))
        bits >>= UInt64(count)
        bitCount -= count
        return value
    }

    /// Discards bits up to the next byte boundary and rewinds `position` over whole bytes still buffered, so the
    /// cursor points at the first unread byte.
    mutating func alignToByte() {
        let drop = bitCount & 7
        bits >>= UInt64(drop)
        bitCount -= drop
        position -= bitCount >> 3
        bits = 0
        bitCount = 0
    }

    @inline(__always)
    mutating func decode(_ table: HuffmanTable) throws -> Int {
        if bitCount < 15 { try refill() }
        let entry = Int(table.fast[Int(bits & UInt64((1 << HuffmanTable.fastBits) - 1))])
        if entry != 0 {
            let l = entry & 15
            bits >>= UInt64(l)
            bitCount -= l
            return entry >> 4
        }
        return try decodeLong(table)
    }

    /// Canonical decoding one bit at a time, for codes longer than `fastBits` (bit buffer holds ≥ 15 bits).
    mutating func decodeLong(_ table: HuffmanTable) throws -> Int {
        var code = 0, first = 0, index = 0
        for l in 1...15 {
            code |= Int((bits >> UInt64(l - 1)) & 1)
            let count = table.counts[l]
            if code - count < first {
                bits >>= UInt64(l)
                bitCount -= l
                return Int(table.symbols[index + code - first])
            }
            index += count
            first = (first + count) << 1
            code <<= 1
        }
        throw corrupt("invalid Huffman code")
    }

    // MARK: Streams and blocks

    /// Decodes one gzip member starting at byte `start`; returns the byte after its trailer.
    mutating func gzipMember(at start: Int) throws -> Int {
        let n = input.count
        guard n - start >= 18 else {
            if start > 0 {
                throw DataError(.corruptGzip, file: name, "\(n - start) trailing bytes after the gzip stream")
            }
            throw DataError(.corruptGzip, file: name, "truncated gzip file: \(n) bytes, a gzip member needs >= 18")
        }
        guard input[start] == 0x1F, input[start + 1] == 0x8B else {
            if start > 0 {
                throw DataError(.corruptGzip, file: name, "\(n - start) trailing bytes after the gzip stream")
            }
            throw DataError(.corruptGzip, file: name, "not a gzip file (magic bytes \(hex(input[0])) \(hex(input[1])))")
        }
        guard input[start + 2] == 8 else {
            throw DataError(.corruptGzip, file: name, "unknown gzip compression method \(input[start + 2])")
        }
        let flags = input[start + 3]
        guard flags & 0xE0 == 0 else {
            throw DataError(.corruptGzip, file: name, "reserved gzip header flags set (\(hex(flags)))")
        }
        var p = start + 10
        func need(_ count: Int) throws {
            if p + count > n { throw DataError(.corruptGzip, file: name, "truncated gzip header") }
        }
        if flags & 0x04 != 0 {  // FEXTRA
            try need(2)
            let extra = Int(input[p]) | Int(input[p + 1]) << 8
            p += 2
            try need(extra)
            p += extra
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            while true {
                try need(1)
                p += 1
                if input[p - 1] == 0 { break }
            }
        }
        if flags & 0x02 != 0 {  // FHCRC: low 16 bits of the CRC-32 of the header so far
            try need(2)
            let stored = UInt32(input[p]) | UInt32(input[p + 1]) << 8
            let computed = crc32(UnsafeBufferPointer(rebasing: input[start..<p])) & 0xFFFF
            guard stored == computed else {
                throw DataError(.corruptGzip, file: name, "gzip header CRC mismatch")
            }
            p += 2
        }
        let memberStart = length
        let end = try deflateStream(from: p)
        guard end + 8 <= n else {
            throw DataError(.corruptGzip, file: name, "truncated gzip file: the CRC-32/ISIZE trailer is missing")
        }
        let storedCRC = readLE32(input, end), storedSize = readLE32(input, end + 4)
        let computedCRC = crc32(UnsafeBufferPointer(start: output + memberStart, count: length - memberStart))
        guard storedCRC == computedCRC else {
            throw DataError(.corruptGzip, file: name,
                            "CRC-32 mismatch: trailer says \(hex32(storedCRC)), data gives \(hex32(computedCRC))")
        }
        guard storedSize == UInt32(truncatingIfNeeded: length - memberStart) else {
            throw DataError(.corruptGzip, file: name,
                            "ISIZE mismatch: trailer says \(storedSize) bytes, stream gave \(length - memberStart)")
        }
        return end + 8
    }

    /// Decodes DEFLATE blocks from byte `start` until the final block; returns the byte after the stream.
    mutating func deflateStream(from start: Int) throws -> Int {
        position = start
        bits = 0
        bitCount = 0
        var final = false
        while !final {
            final = try take(1) == 1
            switch try take(2) {
            case 0: try storedBlock()
            case 1: try fixedBlock()
            case 2: try dynamicBlock()
            default: throw corrupt("invalid block type 3")
            }
        }
        alignToByte()
        if position > input.count {
            throw DataError(.corruptGzip, file: name, "truncated deflate stream (input ended mid-block)")
        }
        return position
    }

    mutating func storedBlock() throws {
        alignToByte()
        guard position + 4 <= input.count else {
            throw DataError(.corruptGzip, file: name, "truncated deflate stream (stored block header)")
        }
        let count = Int(input[position]) | Int(input[position + 1]) << 8
        let complement = Int(input[position + 2]) | Int(input[position + 3]) << 8
        guard count == complement ^ 0xFFFF else { throw corrupt("stored block length \(count) ≠ ~\(complement)") }
        position += 4
        guard position + count <= input.count else {
            throw DataError(.corruptGzip, file: name,
                            "truncated deflate stream (stored block of \(count) bytes, \(input.count - position) left)")
        }
        try ensure(count)
        (output + length).update(from: input.baseAddress! + position, count: count)
        length += count
        position += count
    }

    mutating func fixedBlock() throws {
        var lengths = [UInt8](repeating: 8, count: 288)
        for s in 144..<256 { lengths[s] = 9 }
        for s in 256..<280 { lengths[s] = 7 }
        let litlen = try HuffmanTable(lengths: lengths[...], name: name, what: "fixed literal/length")
        let dist = try HuffmanTable(lengths: [UInt8](repeating: 5, count: 32)[...], name: name, what: "fixed distance")
        try huffmanBlock(litlen: litlen, dist: dist)
    }

    mutating func dynamicBlock() throws {
        let litlenCount = try take(5) + 257, distCount = try take(5) + 1, codeLengthCount = try take(4) + 4
        guard litlenCount <= 286, distCount <= 30 else {
            throw corrupt("dynamic block declares \(litlenCount) literal/length and \(distCount) distance codes")
        }
        var codeLengthLengths = [UInt8](repeating: 0, count: 19)
        for i in 0..<codeLengthCount { codeLengthLengths[Self.codeLengthOrder[i]] = UInt8(try take(3)) }
        let codeLengths = try HuffmanTable(lengths: codeLengthLengths[...], name: name, what: "code-length")
        var lengths = [UInt8](repeating: 0, count: litlenCount + distCount)
        var i = 0
        while i < lengths.count {
            let symbol = try decode(codeLengths)
            if symbol < 16 {
                lengths[i] = UInt8(symbol)
                i += 1
                continue
            }
            var value: UInt8 = 0
            let repeats: Int
            switch symbol {
            case 16:
                guard i > 0 else { throw corrupt("repeat of a code length with no previous length") }
                value = lengths[i - 1]
                repeats = 3 + (try take(2))
            case 17: repeats = 3 + (try take(3))
            default: repeats = 11 + (try take(7))
            }
            guard i + repeats <= lengths.count else { throw corrupt("code lengths overrun the declared count") }
            for _ in 0..<repeats {
                lengths[i] = value
                i += 1
            }
        }
        guard lengths[256] != 0 else { throw corrupt("no end-of-block code") }
        let litlen = try HuffmanTable(lengths: lengths[0..<litlenCount], name: name, what: "literal/length")
        let dist = try HuffmanTable(lengths: lengths[litlenCount...], name: name, what: "distance")
        try huffmanBlock(litlen: litlen, dist: dist)
    }

    /// Decodes one Huffman block. The hot loop keeps the bit buffer and output cursor in locals and works on raw
    /// table pointers; anything unusual (input near its end, a code longer than fastBits, a full output buffer)
    /// writes the state back and takes the general path through `self`.
    mutating func huffmanBlock(litlen: HuffmanTable, dist: HuffmanTable) throws {
        let lengthBase = Self.lengthBase, lengthExtra = Self.lengthExtra
        let distanceBase = Self.distanceBase, distanceExtra = Self.distanceExtra
        let mask = UInt64((1 << HuffmanTable.fastBits) - 1)
        let source = input.baseAddress!
        // Room for one fast-path refill: 8 bytes loaded at `position`.
        let fastInputEnd = input.count - 8
        try litlen.fast.withUnsafeBufferPointer { litlenFast in
            try dist.fast.withUnsafeBufferPointer { distFast in
                var bits = self.bits, bitCount = self.bitCount, position = self.position
                var out = self.output, length = self.length, capacity = self.capacity
                @inline(__always) func store(_ me: inout Inflater) {
                    me.bits = bits; me.bitCount = bitCount; me.position = position; me.length = length
                }
                @inline(__always) func load(_ me: Inflater) {
                    bits = me.bits; bitCount = me.bitCount; position = me.position; length = me.length
                    out = me.output; capacity = me.capacity
                }
                while true {
                    // 57+ bits cover a whole match: litlen code (15) + length extra (5) + distance code (15) +
                    // distance extra (13) = 48.
                    if bitCount < 48 {
                        if position <= fastInputEnd {
                            let word = UInt64(littleEndian: UnsafeRawPointer(source + position)
                                .loadUnaligned(as: UInt64.self))
                            bits |= word << UInt64(bitCount)
                            position += (63 - bitCount) >> 3
                            bitCount |= 56
                        } else {
                            store(&self); try self.refill(); load(self)
                        }
                    }
                    var entry = Int(litlenFast[Int(bits & mask)])
                    var symbol: Int
                    if entry != 0 {
                        bits >>= UInt64(entry & 15)
                        bitCount -= entry & 15
                        symbol = entry >> 4
                    } else {
                        store(&self); symbol = try self.decodeLong(litlen); load(self)
                    }
                    if symbol < 256 {
                        if length >= capacity { store(&self); try self.ensure(1); load(self) }
                        out[length] = UInt8(truncatingIfNeeded: symbol)
                        length += 1
                        continue
                    }
                    if symbol == 256 { break }
                    let li = symbol - 257
                    guard li < 29 else { throw corrupt("invalid length symbol \(symbol)") }
                    let lengthBits = lengthExtra[li]
                    let count = lengthBase[li] + Int(bits & ((1 << UInt64(lengthBits)) &- 1))
                    bits >>= UInt64(lengthBits)
                    bitCount -= lengthBits
                    entry = Int(distFast[Int(bits & mask)])
                    if entry != 0 {
                        bits >>= UInt64(entry & 15)
                        bitCount -= entry & 15
                        symbol = entry >> 4
                    } else {
                        store(&self); symbol = try self.decodeLong(dist); load(self)
                    }
                    guard symbol < 30 else { throw corrupt("invalid distance symbol \(symbol)") }
                    let distanceBits = distanceExtra[symbol]
                    let distance = distanceBase[symbol] + Int(bits & ((1 << UInt64(distanceBits)) &- 1))
                    bits >>= UInt64(distanceBits)
                    bitCount -= distanceBits
                    guard distance <= length else {
                        throw corrupt("distance \(distance) reaches before the start of the output (\(length) bytes)")
                    }
                    if length + count > capacity { store(&self); try self.ensure(count); load(self) }
                    let to = out + length
                    let from = to - distance
                    if distance >= count {
                        to.update(from: from, count: count)
                    } else {
                        // Overlapping copy: the match repeats the last `distance` bytes, byte by byte by definition.
                        for k in 0..<count { to[k] = from[k] }
                    }
                    length += count
                }
                store(&self)
            }
        }
    }
}

func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return "0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
}

func hex32(_ value: UInt32) -> String {
    let digits = Array("0123456789ABCDEF")
    return "0x" + String((0..<8).map { digits[Int((value >> UInt32(28 - 4 * $0)) & 15)] })
}
