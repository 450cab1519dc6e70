// timm's `resample_abs_pos_embed` (the default of its ViT `checkpoint_filter_fn`): a pretrained `pos_embed` of an
// Gh×Gw patch grid is resized to a new grid by PyTorch's `F.interpolate(mode="bicubic", antialias=True,
// align_corners=False)`, the class token's row kept as it is. That interpolation is separable, and along each axis
// (PyTorch's `_upsample_bicubic2d_aa`, after Pillow) output i of n from m inputs, with scale s = m/n:
//   centre c = s·(i + ½); support h = 2·max(s, 1); inputs j ∈ [max(⌊c − h + ½⌋, 0), min(⌊c + h + ½⌋, m));
//   w_j = K((j − c + ½)/max(s, 1)), normalised to sum 1; K the Keys cubic with a = −0.5:
//   K(x) = (a+2)|x|³ − (a+3)|x|² + 1 for |x| < 1, a(|x|³ − 5|x|² + 8|x| − 4) for 1 ≤ |x| < 2, else 0.
// (Without antialias PyTorch's bicubic uses a = −0.75 and clamps indices; timm asks for antialias.) Computed in
// Double here; PyTorch works in Float, so the two agree to rounding.

/// The antialiased bicubic weights of resizing an axis of `inputSize` samples to `outputSize`: for output i, the
/// first input index and the weights of the inputs from there on.
public func antialiasedBicubicWeights(inputSize m: Int, outputSize n: Int) -> [(start: Int, weights: [Double])] {
    precondition(m > 0 && n > 0, "antialiasedBicubicWeights: sizes \(m) → \(n)")
    let scale = Double(m) / Double(n)
    let stretch = max(scale, 1), support = 2 * stretch
    func cubic(_ t: Double) -> Double {
        let x = abs(t), a = -0.5
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }
    return (0..<n).map { i in
        let centre = scale * (Double(i) + 0.5)
        // As PyTorch: truncation toward zero (a C++ cast), then clamped to [0, m).
        let lo = max(Int((centre - support + 0.5).rounded(.towardZero)), 0)
        let hi = min(Int((centre + support + 0.5).rounded(.towardZero)), m)
        var w = (lo..<hi).map { j in cubic((Double(j) - centre + 0.5) / stretch) }
        let total = w.reduce(0, +)
        if total != 0 { w = w.map { $0 / total } }
        return (lo, w)
    }
}

/// timm's `resample_abs_pos_embed` for a (1, prefix + Gh·Gw, D) position embedding: the first `prefixTokens` rows
/// (the class token) unchanged, the grid rows resized from `oldGrid` to `newGrid` (rows, columns) by antialiased
/// bicubic interpolation (see the file comment). `values` is row-major (tokens, D); the result is
/// (prefix + newGrid.rows·newGrid.columns, D).
public func resamplePositionEmbedding(_ values: [Float], embedDim D: Int, prefixTokens: Int,
                                      oldGrid: (rows: Int, columns: Int),
                                      newGrid: (rows: Int, columns: Int)) -> [Float] {
    precondition(values.count == (prefixTokens + oldGrid.rows * oldGrid.columns) * D,
                 "resamplePositionEmbedding: \(values.count) values for \(prefixTokens) + \(oldGrid) tokens of \(D)")
    let rowWeights = antialiasedBicubicWeights(inputSize: oldGrid.rows, outputSize: newGrid.rows)
    let columnWeights = antialiasedBicubicWeights(inputSize: oldGrid.columns, outputSize: newGrid.columns)
    var out = [Float](repeating: 0, count: (prefixTokens + newGrid.rows * newGrid.columns) * D)
    for i in 0..<prefixTokens * D { out[i] = values[i] }
    // Along the columns first (oldGrid.rows × newGrid.columns, in Double), then along the rows.
    var across = [Double](repeating: 0, count: oldGrid.rows * newGrid.columns * D)
    for y in 0..<oldGrid.rows {
        for (x, cw) in columnWeights.enumerated() {
            let dst = (y * newGrid.columns + x) * D
            for (k, w) in cw.weights.enumerated() {
                let src = (prefixTokens + y * oldGrid.columns + cw.start + k) * D
                for c in 0..<D { across[dst + c] += w * Double(values[src + c]) }
            }
        }
    }
    for (y, rw) in rowWeights.enumerated() {
        for x in 0..<newGrid.columns {
            let dst = (prefixTokens + y * newGrid.columns + x) * D
            var acc = [Double](repeating: 0, count: D)
            for (k, w) in rw.weights.enumerated() {
                let src = ((rw.start + k) * newGrid.columns + x) * D
                for c in 0..<D { acc[c] += w * across[src + c] }
            }
            for c in 0..<D { out[dst + c] = Float(acc[c]) }
        }
    }
    return out
}
