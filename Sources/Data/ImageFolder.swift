// Datasets a user keeps as files: an image folder as torchvision's ImageFolder reads it, and numpy arrays.
//
// Folder: DIR/train/<class>/*.{png,jpg,jpeg} and DIR/test/<class>/… (or DIR/val/…). Class ids are the train class
// folders' names in sorted (code point) order, as ImageFolder numbers them; images are taken class by class, files
// in sorted order. Every image must have the same channel count (1 or 3); images of another size than the target
// (`--image-size`, else the first image's) are resized bilinearly (Resize.swift). Decoding is slow, so the decoded
// bytes are cached in one file per split, keyed by the file list with sizes and modification times and the target
// size: a later run with unchanged files reads the cache instead.
//
// Arrays: DIR/train/images.npy (uint8, (N, H, W) or (N, H, W, C), C 1 or 3) and DIR/train/labels.npy (any integer
// type, (N)), and the same under DIR/test/ (or DIR/val/); classes = largest training label + 1.
//
// Normalisation: mean and std of pixel/255 per channel over this split's images (the training run applies the
// training split's to both splits and records them; `--mean/--std` replace them).
import FileIO
import Foundation
import Tensor

/// How image files are read: target size, cache folder and a progress callback.
public struct ImageLoadOptions: Sendable {
    /// Pixels a side every image is resized to (nil: the first image's size, and every image must have it).
    public var imageSize: Int? = nil
    /// Folder of the decoded-image cache (nil: DIR/.dtrain-cache beside the data).
    public var cacheDirectory: String? = nil
    /// Receives progress lines while decoding (nil: silent).
    public var progress: (@Sendable (String) -> Void)? = nil

    public init(imageSize: Int? = nil, cacheDirectory: String? = nil,
                progress: (@Sendable (String) -> Void)? = nil) {
        self.imageSize = imageSize
        self.cacheDirectory = cacheDirectory
        self.progress = progress
    }
}

// MARK: - Folder

/// The folder holding `split`: DIR/train, or DIR/test (DIR/val when there is no DIR/test).
func splitFolder(_ directory: String, _ split: Split, dataset: String) throws -> String {
    let candidates = split == .train ? ["train"] : ["test", "val"]
    for c in candidates where isDirectory(directory + "/" + c) { return directory + "/" + c }
    throw DataError(.missingFile, file: directory + "/" + candidates[0],
                    "no such folder" + (split == .test ? " (nor \(directory)/val)" : "") + "; a \(dataset) dataset "
                    + (dataset == "folder" ? "has train/<class>/*.png|jpg|jpeg and test/<class>/… (or val/)"
                                           : "has train/images.npy, train/labels.npy and test/… (or val/)"))
}

func isDirectory(_ path: String) -> Bool {
    var flag: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
}

/// Names in `folder`, hidden ones skipped, sorted by code point (Python's `sorted`).
func sortedEntries(_ folder: String) throws -> [String] {
    do {
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }
            .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    } catch {
        throw DataError(.unreadable, file: folder, "cannot list the folder: \(error.localizedDescription)")
    }
}

/// The class names of an image folder dataset: DIR/train's subfolders, sorted.
public func imageFolderClasses(directory: String) throws -> [String] {
    let train = try splitFolder(directory, .train, dataset: "folder")
    let classes = try sortedEntries(train).filter { isDirectory(train + "/" + $0) }
    guard !classes.isEmpty else { throw DataError(.emptyClass, file: train, "no class folders") }
    return classes
}

private let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

/// Loads `split` of the image folder `directory` (see the top of this file), from the cache when it is current.
public func loadImageFolder(directory: String, split: Split, options: ImageLoadOptions = ImageLoadOptions())
    throws -> Dataset {
    let classes = try imageFolderClasses(directory: directory)
    let folder = try splitFolder(directory, split, dataset: "folder")
    // The file list: (path relative to DIR, class id), class by class.
    var files: [(path: String, label: Int32)] = []
    for name in try sortedEntries(folder) where isDirectory(folder + "/" + name) {
        guard let label = classes.firstIndex(of: name) else {
            throw DataError(.badDimensions, file: folder + "/" + name,
                            "class folder not in the training split's classes (\(classes.joined(separator: ", ")))")
        }
        let images = try sortedEntries(folder + "/" + name).filter {
            imageExtensions.contains(($0 as NSString).pathExtension.lowercased())
        }
        guard !images.isEmpty else {
            throw DataError(.emptyClass, file: folder + "/" + name, "class folder has no .png, .jpg or .jpeg images")
        }
        let relative = String(folder.dropFirst(directory.count + 1)) + "/" + name + "/"
        files += images.map { (relative + $0, Int32(label)) }
    }
    guard !files.isEmpty else { throw DataError(.emptyClass, file: folder, "no class folders with images") }

    // The cache key: every file with its size and modification time, and the target size.
    var key = "dtrain image cache 1\nsize \(options.imageSize.map(String.init) ?? "native")\n"
    for (path, label) in files {
        var info = stat()
        guard stat(directory + "/" + path, &info) == 0 else {
            throw DataError(.unreadable, file: directory + "/" + path, "cannot stat")
        }
        key += "\(path)\t\(label)\t\(info.st_size)\t\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)\n"
    }
    let cacheFolder = options.cacheDirectory ?? directory + "/.dtrain-cache"
    let cachePath = cacheFolder + "/folder-\(split.rawValue)-" + String(fnv1a(key), radix: 16) + ".bin"
    if let cached = readImageCache(path: cachePath, key: key, classes: classes.count) {
        options.progress?("\(split.rawValue): \(cached.count) images from the cache \(cachePath)")
        return cached
    }

    // Decode.
    let start = Date()
    var lastReport = start
    var first: (path: String, image: DecodedImage)? = nil
    var height = 0, width = 0, channels = 0
    var images: Buffer<UInt8>? = nil
    let labels = Buffer<Int32>(count: files.count, repeating: 0)
    for (i, file) in files.enumerated() {
        let path = directory + "/" + file.path
        let image = try decodeImage(try readFileBytes(path), name: path)
        if let first {
            guard image.channels == first.image.channels else {
                throw DataError(.mixedChannels, file: path, "has \(image.channels) channel(s) but \(first.path) has "
                                + "\(first.image.channels); every image of a folder dataset must be grayscale, or "
                                + "every one RGB")
            }
            if options.imageSize == nil && (image.width != width || image.height != height) {
                throw DataError(.mixedSizes, file: path, "is \(image.width)×\(image.height) but \(first.path) is "
                                + "\(width)×\(height); give --image-size N to resize every image to N×N")
            }
        } else {
            first = (file.path, image)
            channels = image.channels
            height = options.imageSize ?? image.height
            width = options.imageSize ?? image.width
            images = Buffer<UInt8>(count: files.count * channels * height * width, repeating: 0)
        }
        storePlanes(image, into: images!.base + i * channels * height * width, height: height, width: width)
        labels[i] = file.label
        let now = Date()
        if now.timeIntervalSince(lastReport) >= 1 || i == files.count - 1 {
            lastReport = now
            let rate = Double(i + 1) / max(now.timeIntervalSince(start), 1e-9)
            options.progress?(String(format: "%@: decoded %d/%d images (%.0f%%, %.0f images/s)", split.rawValue,
                                     i + 1, files.count, 100 * Double(i + 1) / Double(files.count), rate))
        }
    }
    let stats = channelStatistics(images!, count: files.count, channels: channels, planeSize: height * width)
    let data = Dataset(name: "folder", images: images!, labels: labels, count: files.count, channels: channels,
                       height: height, width: width, classes: classes.count, mean: stats.mean, std: stats.std)
    do {
        try FileManager.default.createDirectory(atPath: cacheFolder, withIntermediateDirectories: true)
        try writeFileAtomically(imageCacheBytes(data, key: key), to: cachePath)
        options.progress?("\(split.rawValue): cached the decoded images in \(cachePath)")
    } catch {
        options.progress?("\(split.rawValue): not cached (\(error)); give --cache-dir DIR to keep them elsewhere")
    }
    return data
}

/// Writes `image`'s (height, width, channels) bytes as (channels, height, width) planes at `out`, resized to
/// height × width when its size differs.
private func storePlanes(_ image: DecodedImage, into out: UnsafeMutablePointer<UInt8>, height: Int, width: Int) {
    let c = image.channels
    var planes = [UInt8](repeating: 0, count: c * image.height * image.width)
    let plane = image.height * image.width
    for p in 0..<plane { for k in 0..<c { planes[k * plane + p] = image.pixels[p * c + k] } }
    if image.height == height && image.width == width {
        out.update(from: planes, count: planes.count)
    } else {
        planes.withUnsafeBufferPointer {
            resizeBilinear($0, planes: c, height: image.height, width: image.width,
                           into: UnsafeMutableBufferPointer(start: out, count: c * height * width),
                           outHeight: height, outWidth: width)
        }
    }
}

/// 64-bit FNV-1a of the text's UTF-8 bytes (names the cache file; the full key inside it is compared).
private func fnv1a(_ text: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    return h
}

// MARK: - Cache file
// "DTRAINIMG1\n", the key's length (UInt64 LE) and text, count, channels, height, width (Int64 LE each), the
// mean and std (Float32 LE each, per channel), the images (bytes) and the labels (Int32 LE).

private let cacheMagic = Array("DTRAINIMG1\n".utf8)

private func imageCacheBytes(_ d: Dataset, key: String) -> [UInt8] {
    var out = cacheMagic
    func int(_ v: Int) { withUnsafeBytes(of: Int64(v).littleEndian) { out.append(contentsOf: $0) } }
    int(key.utf8.count)
    out += Array(key.utf8)
    for v in [d.count, d.channels, d.height, d.width] { int(v) }
    for v in d.mean + d.std { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
    out += Array(d.images.storage)
    for l in d.labels.storage { withUnsafeBytes(of: l.littleEndian) { out.append(contentsOf: $0) } }
    return out
}

/// The cached dataset when the file exists, is whole and holds exactly `key`; nil otherwise (decode again).
private func readImageCache(path: String, key: String, classes: Int) -> Dataset? {
    guard fileExists(path), let bytes = try? FileIO.readFileBytes(path), bytes.starts(with: cacheMagic) else {
        return nil
    }
    var at = cacheMagic.count
    func int() -> Int? {
        guard at + 8 <= bytes.count else { return nil }
        var v: UInt64 = 0
        for b in 0..<8 { v |= UInt64(bytes[at + b]) << (8 * UInt64(b)) }
        at += 8
        return Int(truncatingIfNeeded: v)
    }
    func uint32() -> UInt32 {
        var v: UInt32 = 0
        for b in 0..<4 { v |= UInt32(bytes[at + b]) << (8 * UInt32(b)) }
        at += 4
        return v
    }
    guard let keyLength = int(), keyLength == key.utf8.count, at + keyLength <= bytes.count,
          bytes[at..<(at + keyLength)].elementsEqual(key.utf8) else { return nil }
    at += keyLength
    guard let count = int(), let channels = int(), let height = int(), let width = int(),
          count > 0, channels == 1 || channels == 3, height > 0, width > 0 else { return nil }
    let pixels = count * channels * height * width
    guard bytes.count == at + 8 * channels + pixels + 4 * count else { return nil }
    let mean = (0..<channels).map { _ in Float(bitPattern: uint32()) }
    let std = (0..<channels).map { _ in Float(bitPattern: uint32()) }
    let images = Buffer<UInt8>(count: pixels, repeating: 0)
    bytes.withUnsafeBufferPointer { images.base.update(from: $0.baseAddress! + at, count: pixels) }
    at += pixels
    let labels = Buffer<Int32>(count: count, repeating: 0)
    for i in 0..<count { labels[i] = Int32(bitPattern: uint32()) }
    guard std.allSatisfy({ $0 > 0 }) else { return nil }
    return Dataset(name: "folder", images: images, labels: labels, count: count, channels: channels, height: height,
                   width: width, classes: classes, mean: mean, std: std)
}

// MARK: - Arrays

/// Loads `split` of a numpy-array dataset: DIR/<split>/images.npy (uint8, (N, H, W) or (N, H, W, C)) and
/// DIR/<split>/labels.npy (integers, (N)); see the top of this file.
public func loadNPYDataset(directory: String, split: Split) throws -> Dataset {
    let folder = try splitFolder(directory, split, dataset: "npy")
    let (imagesPath, labelsPath) = (folder + "/images.npy", folder + "/labels.npy")
    func array(_ path: String) throws -> NPYArray {
        let bytes = try readFileBytes(path)
        do { return try parseNPYArray(bytes) } catch {
            throw DataError(.badDataType, file: path, "\(error)")
        }
    }
    let x = try array(imagesPath), y = try array(labelsPath)
    guard x.descr == "|u1" else {
        throw DataError(.badDataType, file: imagesPath, "dtype \(x.descr); images must be uint8 (|u1)")
    }
    guard x.shape.count == 3 || (x.shape.count == 4 && (x.shape[3] == 1 || x.shape[3] == 3)), x.shape[0] > 0 else {
        throw DataError(.badDimensions, file: imagesPath, "shape \(x.shape); expected (N, H, W) or (N, H, W, C) "
                        + "with C 1 or 3 and N > 0")
    }
    let (count, height, width) = (x.shape[0], x.shape[1], x.shape[2])
    let channels = x.shape.count == 4 ? x.shape[3] : 1
    guard y.shape == [count] else {
        throw DataError(.countMismatch, file: labelsPath, "shape \(y.shape); expected (\(count)) as images.npy")
    }
    // Classes from the training labels, so both splits agree.
    let trainLabels = split == .train ? y : try array(directory + "/train/labels.npy")
    var classes = 0
    for i in 0..<trainLabels.shape.reduce(1, *) { classes = max(classes, trainLabels.integer(at: i) + 1) }
    let labels = Buffer<Int32>(count: count, repeating: 0)
    for i in 0..<count {
        let l = y.integer(at: i)
        guard l >= 0 && l < max(classes, 1) && l <= Int(Int32.max) else {
            throw DataError(.labelOutOfRange, file: labelsPath, "label \(l) at index \(i) is outside 0..<\(classes) "
                            + "(the training labels' range)")
        }
        labels[i] = Int32(l)
    }
    let images = Buffer<UInt8>(count: count * channels * height * width, repeating: 0)
    let plane = height * width
    x.data.withUnsafeBufferPointer { src in
        for n in 0..<count {
            let from = src.baseAddress! + n * plane * channels, to = images.base + n * plane * channels
            for p in 0..<plane { for c in 0..<channels { to[c * plane + p] = from[p * channels + c] } }
        }
    }
    let stats = channelStatistics(images, count: count, channels: channels, planeSize: plane)
    return Dataset(name: "npy", images: images, labels: labels, count: count, channels: channels, height: height,
                   width: width, classes: classes, mean: stats.mean, std: stats.std)
}

// MARK: - Statistics

/// Per-channel mean and (population) standard deviation of pixel/255 over (count, channels, planeSize) bytes;
/// a channel that is constant gets std 1.
public func channelStatistics(_ images: Buffer<UInt8>, count: Int, channels: Int, planeSize: Int)
    -> (mean: [Float], std: [Float]) {
    var sum = [Double](repeating: 0, count: channels), squares = sum
    for n in 0..<count {
        for c in 0..<channels {
            let plane = images.base + (n * channels + c) * planeSize
            var s = 0, q = 0
            for p in 0..<planeSize { let v = Int(plane[p]); s += v; q += v * v }
            sum[c] += Double(s); squares[c] += Double(q)
        }
    }
    let total = Double(count * planeSize)
    let mean = sum.map { $0 / total / 255 }
    let std = (0..<channels).map { c in (max(squares[c] / total / 65025 - mean[c] * mean[c], 0)).squareRoot() }
    return (mean.map(Float.init), std.map { $0 > 1e-6 ? Float($0) : 1 })
}

extension Dataset {
    /// The same images and labels with another per-channel normalisation (`--mean/--std`, or the training split's
    /// statistics applied to the test split).
    public func normalised(mean: [Float], std: [Float]) -> Dataset {
        Dataset(name: name, images: images, labels: labels, count: count, channels: channels, height: height,
                width: width, classes: classes, mean: mean, std: std)
    }
}
