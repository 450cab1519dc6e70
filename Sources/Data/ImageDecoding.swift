// PNG and JPEG files to bytes, through the system's libpng (simplified API) and libjpeg-turbo (a C shim that turns
// libjpeg's longjmp errors into return codes, Sources/CJPEG/CJPEG.h). Images come out 8-bit, (height, width,
// channels) interleaved, channels 1 (grayscale) or 3 (RGB); alpha is dropped, palettes expanded.
import CJPEG
import CPNG
import Foundation

/// A decoded image: bytes (height, width, channels), interleaved as in the file.
public struct DecodedImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// 1 (grayscale) or 3 (RGB).
    public let channels: Int
    /// (height, width, channels) bytes.
    public let pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels,
                     "\(pixels.count) bytes for \(height)×\(width)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// Decodes a PNG or JPEG file's bytes, told apart by their magic; `name` is used in errors
/// (`DataError(.corruptImage, file: name, …)` with the library's message).
public func decodeImage(_ bytes: [UInt8], name: String) throws -> DecodedImage {
    if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try decodePNG(bytes, name: name) }
    if bytes.starts(with: [0xFF, 0xD8]) { return try decodeJPEG(bytes, name: name) }
    throw DataError(.corruptImage, file: name, "not a PNG or JPEG file (starts with "
                    + bytes.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ") + ")")
}

/// Decodes PNG bytes with libpng's simplified API: grayscale files (and gray palettes) to 1 channel, colour ones to
/// 3; alpha is composited away, 16-bit samples reduced to 8.
public func decodePNG(_ bytes: [UInt8], name: String) throws -> DecodedImage {
    var image = png_image()
    image.version = UInt32(PNG_IMAGE_VERSION)
    var channels = 0
    var pixels: [UInt8] = []
    let failure: String? = bytes.withUnsafeBytes { raw -> String? in
        // libpng reads from `raw` until finish_read, so both calls stay inside this closure.
        guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
            return pngMessage(image)
        }
        let color = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        channels = color ? 3 : 1
        image.format = color ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        pixels = [UInt8](repeating: 0, count: Int(image.width) * Int(image.height) * channels)
        let done = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        if done == 0 {
            let message = pngMessage(image)
            png_image_free(&image)
            return message
        }
        return nil
    }
    if let failure { throw DataError(.corruptImage, file: name, "not a readable PNG: \(failure)") }
    return DecodedImage(width: Int(image.width), height: Int(image.height), channels: channels, pixels: pixels)
}

/// The error text libpng left in `image.message`.
private func pngMessage(_ image: png_image) -> String {
    withUnsafeBytes(of: image.message) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Encodes (height, width, channels) bytes as PNG (channels 1 or 3). For tests and tools.
public func encodePNG(_ image: DecodedImage) -> [UInt8] {
    precondition(image.channels == 1 || image.channels == 3, "PNG channels must be 1 or 3, got \(image.channels)")
    var png = png_image()
    png.version = UInt32(PNG_IMAGE_VERSION)
    png.width = UInt32(image.width)
    png.height = UInt32(image.height)
    png.format = image.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
    var size = 0
    // First call measures, second writes.
    let measured = image.pixels.withUnsafeBytes {
        png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, 0, nil)
    }
    precondition(measured != 0, "png_image_write_to_memory failed: \(pngMessage(png))")
    var out = [UInt8](repeating: 0, count: size)
    let wrote = image.pixels.withUnsafeBytes { pixels in
        out.withUnsafeMutableBytes {
            png_image_write_to_memory(&png, $0.baseAddress, &size, 0, pixels.baseAddress, 0, nil)
        }
    }
    precondition(wrote != 0, "png_image_write_to_memory failed: \(pngMessage(png))")
    return Array(out.prefix(size))
}

/// Decodes JPEG bytes with libjpeg-turbo: grayscale files to 1 channel, others to RGB. A truncated or damaged file
/// (a libjpeg warning) is an error.
public func decodeJPEG(_ bytes: [UInt8], name: String) throws -> DecodedImage {
    var out: UnsafeMutablePointer<UInt8>? = nil
    var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
    var message = [CChar](repeating: 0, count: 256)
    let rc = bytes.withUnsafeBufferPointer { b in
        dtrain_jpeg_decode(b.baseAddress, UInt(b.count), &out, &width, &height, &channels, &message)
    }
    guard rc == 0, let out else {
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw DataError(.corruptImage, file: name, "not a readable JPEG: \(text)")
    }
    defer { free(out) }
    let count = Int(width) * Int(height) * Int(channels)
    return DecodedImage(width: Int(width), height: Int(height), channels: Int(channels),
                        pixels: Array(UnsafeBufferPointer(start: out, count: count)))
}

/// Encodes (height, width, channels) bytes as a JPEG of `quality` (1…100). For tests and tools.
public func encodeJPEG(_ image: DecodedImage, quality: Int = 95) -> [UInt8] {
    var jpeg: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    var message = [CChar](repeating: 0, count: 256)
    let rc = image.pixels.withUnsafeBufferPointer {
        dtrain_jpeg_encode($0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                           Int32(quality), &jpeg, &size, &message)
    }
    precondition(rc == 0 && jpeg != nil, "JPEG encoding failed")
    defer { free(jpeg) }
    return Array(UnsafeBufferPointer(start: jpeg, count: Int(size)))
}
