import Tensor

// `--image-size S`: the whole dataset is resized once, at load time, before any batch is filled.
//
// Why here and in bytes: a Dataset keeps its images as bytes and normalises them only when a batch is filled
// (`BatchFiller`'s lookup table), so resizing the stored images keeps that path unchanged and costs nothing per
// step. The bytes are resized as torchvision's `Resize` treats a uint8 tensor (bilinear in Float, round half to even;
// see Resize.swift). Compared with resizing the normalised Floats, which is what a PyTorch pipeline doing
// `F.interpolate` after `Normalize` computes, the only difference is that rounding: at most 0.5/255 before
// normalisation (bilinear weights sum to 1, so resizing commutes with the per-channel affine normalisation).
// mean and std (statistics of the original images) are kept as they are.
// Memory grows with S²: Fashion-MNIST's 60,000 images at S = 224 take 3 GB.

extension Dataset {
    /// A copy of the dataset with every image resized to (height, width) by bilinear interpolation
    /// (`resizeBilinear` on bytes: torch's `F.interpolate(mode="bilinear", align_corners=False, antialias=False)`,
    /// rounded half to even). Labels, classes, name, mean and std are kept. Returns `self` when the size is unchanged.
    /// Precondition: height, width ≥ 1.
    public func resized(height outHeight: Int, width outWidth: Int) -> Dataset {
        precondition(outHeight >= 1 && outWidth >= 1, "resize target must be positive, got \(outHeight)×\(outWidth)")
        if outHeight == height && outWidth == width { return self }
        let resizedImages = Buffer<UInt8>(count: count * channels * outHeight * outWidth, repeating: 0)
        resizeBilinear(UnsafeBufferPointer(images.storage), planes: count * channels, height: height, width: width,
                       into: resizedImages.storage, outHeight: outHeight, outWidth: outWidth)
        return Dataset(name: name, images: resizedImages, labels: labels, count: count, channels: channels,
                       height: outHeight, width: outWidth, classes: classes, mean: mean, std: std)
    }

    /// A copy of the dataset with every image resized to size × size (`--image-size`); see `resized(height:width:)`.
    public func resized(to size: Int) -> Dataset {
        resized(height: size, width: size)
    }
}
