// Vectorised elementwise kernels the layers fuse around their gemms: bias + ReLU after a forward product, and
// the ReLU mask + bias-gradient reduction before a backward product. Each is one pass over memory on 8-lane
// vectors (explicit SIMD: the scalar loops do not vectorise because the compiler cannot rule out aliasing).
//
// Legend: rows × cols row-major matrices (Linear: rows = batch, cols = features); planes × planeSize
// (Conv2d, one image: planes = channels, planeSize = H·W).

/// The 8-lane Float vector of the elementwise kernels (here and in Model's LayerNorm, softmax and GELU).
public typealias Lanes = SIMD8<Float>

/// 8 Floats from `p` (unaligned).
@inlinable @inline(__always)
public func loadLanes(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

/// Stores 8 Floats at `p` (unaligned).
@inlinable @inline(__always)
public func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
}

/// y = max(y + b, 0) (or y + b when `relu` is false) over `count` contiguous values sharing one bias `b`.
/// NaN propagates through the ReLU (as in PyTorch).
@inlinable @inline(__always)
func addScalarBias(_ y: UnsafeMutablePointer<Float>, count: Int, bias b: Float, relu: Bool) {
    let bv = Lanes(repeating: b), zero = Lanes.zero
    var i = 0
    while i + 8 <= count {
        let v = loadLanes(y + i) + bv
        storeLanes(relu ? v.replacing(with: zero, where: v .< zero) : v, y + i)
        i += 8
    }
    while i < count {
        let v = y[i] + b
        y[i] = relu && v < 0 ? 0 : v
        i += 1
    }
}

/// y[r, c] = max(y[r, c] + bias[c], 0) (or without the max when `relu` is false). y: (rows, cols), bias: (cols).
/// The bias epilogue of `Linear.forward`, fused with the following ReLU.
@inlinable
public func addRowBias(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>,
                       relu: Bool) {
    let zero = Lanes.zero
    for r in 0..<rows {
        let row = y + r * cols
        var c = 0
        while c + 8 <= cols {
            let v = loadLanes(row + c) + loadLanes(bias + c)
            storeLanes(relu ? v.replacing(with: zero, where: v .< zero) : v, row + c)
            c += 8
        }
        while c < cols {
            let v = row[c] + bias[c]
            row[c] = relu && v < 0 ? 0 : v
            c += 1
        }
    }
}

/// y[o, p] = max(y[o, p] + bias[o], 0) (or without the max when `relu` is false). y: (planes, planeSize),
/// bias: (planes). The bias epilogue of one image of `Conv2d.forward`, fused with the following ReLU.
@inlinable
public func addPlaneBias(_ y: UnsafeMutablePointer<Float>, planes: Int, planeSize: Int, bias: UnsafePointer<Float>,
                         relu: Bool) {
    for o in 0..<planes { addScalarBias(y + o * planeSize, count: planeSize, bias: bias[o], relu: relu) }
}

/// dst[i] = max(src[i] + b, 0) (or src[i] + b when `relu` is false) over `count` contiguous values; `src` may
/// equal `dst`. The scatter of a grouped convolution's (O, G·P) product back to NCHW, with its bias and ReLU.
@inlinable
public func copyPlane(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int, bias b: Float,
                      relu: Bool) {
    let bv = Lanes(repeating: b), zero = Lanes.zero
    var i = 0
    while i + 8 <= count {
        let v = loadLanes(src + i) + bv
        storeLanes(relu ? v.replacing(with: zero, where: v .< zero) : v, dst + i)
        i += 8
    }
    while i < count {
        let v = src[i] + b
        dst[i] = relu && v < 0 ? 0 : v
        i += 1
    }
}

/// dst[i] += src[i] over `count` contiguous values (8-lane).
@inlinable
public func addPlane(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        storeLanes(loadLanes(dst + i) + loadLanes(src + i), dst + i)
        i += 8
    }
    while i < count { dst[i] += src[i]; i += 1 }
}

/// dY = dY·[y > 0] in place over `count` values (the ReLU backward from its output y); returns Σ of the
/// masked dY, accumulated in Float lanes.
@inlinable @inline(__always)
@discardableResult
func maskReLU(_ dY: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, count: Int) -> Float {
    let zero = Lanes.zero
    var acc = Lanes.zero
    var i = 0
    while i + 8 <= count {
        let g = loadLanes(dY + i).replacing(with: zero, where: loadLanes(y + i) .<= zero)
        storeLanes(g, dY + i)
        acc += g
        i += 8
    }
    var s = acc.sum()
    while i < count {
        let g = y[i] > 0 ? dY[i] : 0
        dY[i] = g
        s += g
        i += 1
    }
    return s
}

/// dY = dY·[y > 0] in place over `count` values: the ReLU backward from its output y, on 8-lane vectors.
@inlinable
public func maskReLUGradient(_ dY: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, count: Int) {
    maskReLU(dY, output: y, count: count)
}

/// Σ of `count` contiguous values, accumulated in Float lanes.
@inlinable @inline(__always)
func laneSum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var acc = Lanes.zero
    var i = 0
    while i + 8 <= count { acc += loadLanes(x + i); i += 8 }
    var s = acc.sum()
    while i < count { s += x[i]; i += 1 }
    return s
}

/// dBias[c] += Σ_r dY[r, c]. dY: (rows, cols); dBias: (cols). The bias gradient of `Linear.backward`.
@inlinable
public func addColumnSums(_ dY: UnsafePointer<Float>, rows: Int, cols: Int, into dBias: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let g = dY + r * cols
        var c = 0
        while c + 8 <= cols {
            storeLanes(loadLanes(dBias + c) + loadLanes(g + c), dBias + c)
            c += 8
        }
        while c < cols { dBias[c] += g[c]; c += 1 }
    }
}

/// Masks dY in place with [y > 0] (the backward of a ReLU, from its output y), then dBias[c] += Σ_r dY[r, c].
/// dY, y: (rows, cols); dBias: (cols). The fused prologue of `Linear.backwardThroughReLU`.
@inlinable
public func reluMaskColumnSums(_ dY: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, rows: Int,
                               cols: Int, into dBias: UnsafeMutablePointer<Float>) {
    let zero = Lanes.zero
    for r in 0..<rows {
        let g = dY + r * cols, o = y + r * cols
        var c = 0
        while c + 8 <= cols {
            let v = loadLanes(g + c).replacing(with: zero, where: loadLanes(o + c) .<= zero)
            storeLanes(v, g + c)
            storeLanes(loadLanes(dBias + c) + v, dBias + c)
            c += 8
        }
        while c < cols {
            let v = o[c] > 0 ? g[c] : 0
            g[c] = v
            dBias[c] += v
            c += 1
        }
    }
}

/// dBias[o] += Σ_p dY[o, p]. dY: (planes, planeSize); dBias: (planes). The bias gradient of one image of
/// `Conv2d.backward`.
@inlinable
public func addPlaneSums(_ dY: UnsafePointer<Float>, planes: Int, planeSize: Int,
                         into dBias: UnsafeMutablePointer<Float>) {
    for o in 0..<planes { dBias[o] += laneSum(dY + o * planeSize, count: planeSize) }
}

/// Masks dY in place with [y > 0], then dBias[o] += Σ_p dY[o, p]. dY, y: (planes, planeSize); dBias: (planes).
/// The fused prologue of one image of `Conv2d.backwardThroughReLU`.
@inlinable
public func reluMaskPlaneSums(_ dY: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, planes: Int,
                              planeSize: Int, into dBias: UnsafeMutablePointer<Float>) {
    for o in 0..<planes { dBias[o] += maskReLU(dY + o * planeSize, output: y + o * planeSize, count: planeSize) }
}
