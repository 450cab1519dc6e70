import Tensor

// Legend: B = batch, inFeatures = I, outFeatures = O. Row-major throughout.

/// A fully connected layer, y = x Wᵀ + b, with PyTorch's weight layout.
///
/// x: (B, I), W: (O, I), b: (O), y: (B, O). The weight and bias slices index both the parameter arena and the
/// gradient arena (one layout). Initialisation (PyTorch default): W, b ~ U(−1/√I, 1/√I).
public struct Linear: Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    /// (O, I) row-major.
    public let weight: Slice
    /// (O).
    public let bias: Slice

    /// Reserves the weight, then the bias, in `layout`, naming them `name.weight` and `name.bias`.
    public init(inFeatures: Int, outFeatures: Int, name: String, layout: inout ArenaLayout) {
        var registry = ParameterRegistry(layout: layout)
        self.init(inFeatures: inFeatures, outFeatures: outFeatures, name: name, registry: &registry)
        layout = registry.layout
    }

    /// Reserves `name.weight` (O, I) then `name.bias` (O) in `registry`; `weightInit` defaults to PyTorch's
    /// U(−1/√I, 1/√I), and the bias takes `biasInit`, by default the same rule. `biasDecay` false exempts the
    /// bias from weight decay (timm's convention for the ViTs); the weight always decays.
    public init(inFeatures: Int, outFeatures: Int, name: String, registry: inout ParameterRegistry,
                weightInit: InitRule? = nil, biasInit: InitRule? = nil, biasDecay: Bool = true) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear \(name): sizes \(inFeatures)→\(outFeatures)")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = InitRule.uniform(bound: 1 / Float(Double(inFeatures).squareRoot()))
        weight = registry.parameter(name + ".weight", shape: [outFeatures, inFeatures], initRule: weightInit ?? bound)
        bias = registry.parameter(name + ".bias", shape: [outFeatures], initRule: biasInit ?? bound, decay: biasDecay)
    }

    /// Fan-in used by the default initialisation: inFeatures.
    public var fanIn: Int { inFeatures }
    /// One past the last arena element this layer owns (its gradient is final once `backward` returns).
    public var end: Int { max(weight.offset + weight.count, bias.offset + bias.count) }
    /// Forward multiply-adds per sample: I·O.
    public var multiplyAddsPerSample: Int { inFeatures * outFeatures }
    /// Backward multiply-adds per sample: I·O for dW, plus I·O for dX when the input gradient is computed
    /// (`dInput` non-nil; the first layer of an encoder skips it).
    public func backwardMultiplyAddsPerSample(inputGradient: Bool) -> Int {
        (inputGradient ? 2 : 1) * inFeatures * outFeatures
    }

    // MARK: - Forward / backward

    /// y = x Wᵀ + b, or y = max(x Wᵀ + b, 0) when `relu` (the following ReLU fused into the bias pass).
    /// input: (B, I), output: (B, O); nothing is cached (backward needs `input`, and `output` when `relu`).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                        params: Arena, relu: Bool = false) {
        let w = params.pointer(weight), b = params.pointer(bias)
        gemm(.none, .transposed, m: batch, n: outFeatures, k: inFeatures, a: input, lda: inFeatures,
             b: w, ldb: inFeatures, beta: 0, c: output, ldc: outFeatures)
        addRowBias(output, rows: batch, cols: outFeatures, bias: b, relu: relu)
    }

    /// Accumulates dW += dYᵀ x and db += Σ_rows dY; writes dX = dY W.
    ///
    /// dOutput: (B, O), input: the forward input (B, I), dInput: (B, I) or nil to skip (first layer).
    /// `dInput` is **overwritten**, or **accumulated** into when `accumulateInput` is true.
    /// `dInput` must not alias `dOutput`.
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         dInput: UnsafeMutablePointer<Float>?, batch: Int, params: Arena, grads: Arena,
                         accumulateInput: Bool = false) {
        addColumnSums(dOutput, rows: batch, cols: outFeatures, into: grads.pointer(bias))
        productsBackward(dOutput: dOutput, input: input, dInput: dInput, batch: batch, params: params,
                         grads: grads, accumulateInput: accumulateInput)
    }

    /// The backward of `forward(…, relu: true)`: masks `dOutput` **in place** with [output > 0] (∂/∂ of the
    /// pre-activation), then as `backward`. dOutput: (B, O), ∂loss/∂ the ReLU's output on entry; output: the
    /// forward output (B, O) after the ReLU. `dInput` is **overwritten** and must not alias `dOutput`.
    @inlinable
    public func backwardThroughReLU(dOutput: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>,
                                    input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                                    params: Arena, grads: Arena) {
        reluMaskColumnSums(dOutput, output: output, rows: batch, cols: outFeatures, into: grads.pointer(bias))
        productsBackward(dOutput: dOutput, input: input, dInput: dInput, batch: batch, params: params,
                         grads: grads, accumulateInput: false)
    }

    /// y = x Wᵀ + b and activated = GELU(y) (exact GELU), the bias and the GELU in one pass after the gemm.
    /// input: (B, I); output: (B, O), the pre-activation (backward needs it); activated: (B, O), must not alias
    /// output.
    public func forwardGELU(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                            activated: UnsafeMutablePointer<Float>, batch: Int, params: Arena) {
        gemm(.none, .transposed, m: batch, n: outFeatures, k: inFeatures, a: input, lda: inFeatures,
             b: params.pointer(weight), ldb: inFeatures, beta: 0, c: output, ldc: outFeatures)
        GELU.addBiasForward(output, rows: batch, cols: outFeatures, bias: params.pointer(bias), activated: activated)
    }

    /// The backward of `forwardGELU`: multiplies `dOutput` **in place** by GELU′(output) (∂/∂ the
    /// pre-activation) while accumulating db, then as `backward`. dOutput: (B, O), ∂loss/∂ the GELU's output on
    /// entry; output: the forward's pre-activation (B, O). `dInput` is **overwritten** and must not alias `dOutput`.
    public func backwardThroughGELU(dOutput: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>,
                                    input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                                    params: Arena, grads: Arena) {
        GELU.backwardColumnSums(dOutput, preActivation: output, rows: batch, cols: outFeatures,
                                into: grads.pointer(bias))
        productsBackward(dOutput: dOutput, input: input, dInput: dInput, batch: batch, params: params,
                         grads: grads, accumulateInput: false)
    }

    /// dW += dYᵀ x; dX = dY W (or += when `accumulateInput`), skipped when `dInput` is nil.
    @inlinable
    func productsBackward(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                          dInput: UnsafeMutablePointer<Float>?, batch: Int, params: Arena, grads: Arena,
                          accumulateInput: Bool) {
        gemm(.transposed, .none, m: outFeatures, n: inFeatures, k: batch, a: dOutput, lda: outFeatures,
             b: input, ldb: inFeatures, beta: 1, c: grads.pointer(weight), ldc: inFeatures)
        if let dInput {
            gemm(.none, .none, m: batch, n: inFeatures, k: outFeatures, a: dOutput, lda: outFeatures,
                 b: params.pointer(weight), ldb: inFeatures, beta: accumulateInput ? 1 : 0, c: dInput,
                 ldc: inFeatures)
        }
    }
}
