// A dataset cut to a set of classes: base classes for training on a subset, novel classes for few-shot.
import Tensor

extension Dataset {
    /// The images whose label is in `classes` (dataset order kept). With `remap` their labels become the position
    /// of the label in `classes` (so `classes.count` classes, the original id of class i being `classes[i]`);
    /// without, labels keep their values and `classes` stays the original count. Normalisation is unchanged.
    public func keeping(classes wanted: [Int32], remap: Bool) -> Dataset {
        var position = [Int32: Int32]()
        for (i, c) in wanted.enumerated() { position[c] = Int32(i) }
        var kept: [Int] = []
        for i in 0..<count where position[labels[i]] != nil { kept.append(i) }
        let newImages = Buffer<UInt8>(count: max(kept.count * imageSize, 0), repeating: 0)
        let newLabels = Buffer<Int32>(count: kept.count, repeating: 0)
        for (row, i) in kept.enumerated() {
            (newImages.base + row * imageSize).update(from: images.base + i * imageSize, count: imageSize)
            newLabels[row] = remap ? position[labels[i]]! : labels[i]
        }
        return Dataset(name: name, images: newImages, labels: newLabels, count: kept.count, channels: channels,
                       height: height, width: width, classes: remap ? wanted.count : classes, mean: mean, std: std)
    }
}
