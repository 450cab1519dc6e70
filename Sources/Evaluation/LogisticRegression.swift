// Multinomial logistic regression fitted to convergence by L-BFGS in Double.
//
//   logits z_i = W x_i + b            W: (K, D), b: (K), x_i: (D)
//   objective  F(W, b) = (1/n) Σ_i CE(softmax(z_i), y_i) + λ·‖W‖²      (the bias is not penalised)
//   gradient   ∂F/∂W = (1/n) (P − Y)ᵀ X + 2λ W,   ∂F/∂b = (1/n) Σ_i (p_i − y_i)
//
// scikit-learn's LogisticRegression (lbfgs, multinomial) minimises C·Σ_i CE + ½‖W‖², i.e. (dividing by C·n)
// the objective above with λ = 1/(2·C·n); so λ = 1e-4 is C = 1/(2·1e-4·n) = 5000/n, and RFS's C = 1 is
// λ = 1/(2n).
// Softmax in log space (max subtracted). Zero start: the problem is strictly convex for λ > 0, so the optimum
// is unique and the start only changes the path.
//
// Legend: n = rows, D = features, K = classes.
import Foundation
import Tensor

/// A fitted multinomial logistic regression: weights (K, D), bias (K), and how the solver stopped.
public struct LogisticRegression: Sendable {
    public let features: Int, classes: Int
    /// W (K, D) row-major, then b (K): the L-BFGS variable.
    public internal(set) var parameters: [Double]
    /// The penalty λ of λ·‖W‖².
    public let penalty: Double
    public let result: LBFGSResult

    /// Fits on `x` (n, D) with labels `y` (n, values in 0..<K), minimising mean CE + `penalty`·‖W‖² by L-BFGS
    /// from zero until max |∂F| ≤ `options.gradientTolerance`; `progress` is called after every evaluation of F.
    public init(x: [Double], y: [Int32], features D: Int, classes K: Int, penalty: Double,
                options: LBFGSOptions = LBFGSOptions(), progress: (() -> Void)? = nil) {
        let n = y.count
        precondition(D >= 1 && K >= 1 && x.count == n * D, "LogisticRegression: \(x.count) values, expected \(n)×\(D)")
        precondition(n >= 1 && penalty >= 0, "LogisticRegression: n \(n), penalty \(penalty)")
        for label in y { precondition(label >= 0 && Int(label) < K, "LogisticRegression: label \(label) ∉ 0..<\(K)") }
        features = D
        classes = K
        self.penalty = penalty
        var theta = [Double](repeating: 0, count: K * D + K)
        var z = [Double](repeating: 0, count: n * K)
        result = minimiseLBFGS(&theta, options: options, progress: progress) { theta, grad in
            LogisticRegression.objective(theta: theta, x: x, y: y, n: n, D: D, K: K, penalty: penalty, z: &z,
                                         gradient: &grad)
        }
        parameters = theta
    }

    /// F(θ) and ∇F into `gradient`; `z` (n, K) is scratch.
    static func objective(theta: [Double], x: [Double], y: [Int32], n: Int, D: Int, K: Int, penalty: Double,
                          z: inout [Double], gradient: inout [Double]) -> Double {
        var loss = 0.0
        theta.withUnsafeBufferPointer { t in x.withUnsafeBufferPointer { xp in
            z.withUnsafeMutableBufferPointer { zp in
            // z = X Wᵀ, then + b.
            gemm(.none, .transposed, m: n, n: K, k: D, a: xp.baseAddress!, lda: D, b: t.baseAddress!, ldb: D,
                 c: zp.baseAddress!, ldc: K)
            for i in 0..<n {
                let row = zp.baseAddress! + i * K
                var top = -Double.infinity
                for c in 0..<K { row[c] += t[K * D + c]; top = max(top, row[c]) }
                var sum = 0.0
                for c in 0..<K { row[c] = Foundation.exp(row[c] - top); sum += row[c] }
                let label = Int(y[i])
                // CE = log Σ exp(z − top) − (z_y − top), with row[label] = exp(z_y − top).
                loss += Foundation.log(sum) - Foundation.log(row[label])
                // z becomes (P − Y)/n, the gradient of the mean CE with respect to the logits.
                for c in 0..<K { row[c] = row[c] / sum / Double(n) }
                row[label] -= 1 / Double(n)
            }
        } } }
        loss /= Double(n)
        gradient.withUnsafeMutableBufferPointer { g in x.withUnsafeBufferPointer { xp in
            z.withUnsafeBufferPointer { zp in
            // dW = (P − Y)ᵀ X / n  (K, D).
            gemm(.transposed, .none, m: K, n: D, k: n, a: zp.baseAddress!, lda: K, b: xp.baseAddress!, ldb: D,
                 c: g.baseAddress!, ldc: D)
            for c in 0..<K {
                var s = 0.0
                for i in 0..<n { s += zp[i * K + c] }
                g[K * D + c] = s
            }
        } } }
        var norm = 0.0
        for j in 0..<(K * D) {
            norm += theta[j] * theta[j]
            gradient[j] += 2 * penalty * theta[j]
        }
        return loss + penalty * norm
    }

    /// Logits (m, K) of the rows of `x` (m, D).
    public func logits(_ x: [Double]) -> [Double] {
        let D = features, K = classes, m = x.count / D
        precondition(x.count == m * D, "LogisticRegression.logits: \(x.count) values are not rows of \(D)")
        var z = [Double](repeating: 0, count: m * K)
        parameters.withUnsafeBufferPointer { t in x.withUnsafeBufferPointer { xp in
            z.withUnsafeMutableBufferPointer { zp in
            gemm(.none, .transposed, m: m, n: K, k: D, a: xp.baseAddress!, lda: D, b: t.baseAddress!, ldb: D,
                 c: zp.baseAddress!, ldc: K)
            for i in 0..<m { for c in 0..<K { zp[i * K + c] += t[K * D + c] } }
        } } }
        return z
    }

    /// The argmax class (ties → lower class) of each row of `x` (m, D).
    public func predict(_ x: [Double]) -> [Int32] {
        let K = classes, z = logits(x)
        return (0..<(z.count / K)).map { i in
            var best = 0
            for c in 1..<K where z[i * K + c] > z[i * K + best] { best = c }
            return Int32(best)
        }
    }
}

// MARK: - The linear probe

/// The linear-evaluation protocol on frozen embeddings: each embedding is L2-normalised, then standardised per
/// dimension with the training set's mean and (population) std, a constant dimension keeping std 1; a multinomial
/// logistic regression is fitted to convergence with λ = `LinearProbe.penalty` (mean CE + 1e-4·‖W‖²).
public struct LinearProbe: Sendable {
    /// λ of the probe's objective mean CE + λ·‖W‖².
    public static let penalty = 1e-4
    /// The probe's L-BFGS stopping rule.
    public static let options = LBFGSOptions(gradientTolerance: 1e-6, maxIterations: 5000, memory: 10)
    /// What every probe figure names as its solver.
    public static let solver = "lbfgs(multinomial logistic regression, l2-normalised+standardised, "
        + "mean CE + 1e-4·‖W‖², max|grad| <= 1e-6)"

    public let embedDim: Int
    /// Per-dimension mean and 1/std of the normalised training features (D each).
    public let mean: [Double], invStd: [Double]
    public internal(set) var model: LogisticRegression

    /// Fits the probe on `features` (n, D) with `labels` (n, values in 0..<classes); `progress` as in
    /// `minimiseLBFGS`.
    public init(features: [Float], labels: [Int32], embedDim D: Int, classes K: Int,
                penalty: Double = LinearProbe.penalty, options: LBFGSOptions = LinearProbe.options,
                progress: (() -> Void)? = nil) {
        let n = labels.count
        precondition(features.count == n * D, "LinearProbe: \(features.count) values, expected \(n)×\(D)")
        embedDim = D
        let x = normalisedRows(features, embedDim: D)
        var sum = [Double](repeating: 0, count: D), sumSquares = [Double](repeating: 0, count: D)
        for i in 0..<n { for j in 0..<D { sum[j] += x[i * D + j]; sumSquares[j] += x[i * D + j] * x[i * D + j] } }
        mean = sum.map { $0 / Double(n) }
        invStd = (0..<D).map { j in
            let m = sum[j] / Double(n), variance = max(0, sumSquares[j] / Double(n) - m * m)
            return variance > 1e-12 ? 1 / variance.squareRoot() : 1
        }
        let standardised = LinearProbe.standardise(x, mean: mean, invStd: invStd)
        model = LogisticRegression(x: standardised, y: labels, features: D, classes: K, penalty: penalty,
                                   options: options, progress: progress)
    }

    static func standardise(_ x: [Double], mean: [Double], invStd: [Double]) -> [Double] {
        let D = mean.count
        var out = x
        for i in 0..<(x.count / D) { for j in 0..<D { out[i * D + j] = (x[i * D + j] - mean[j]) * invStd[j] } }
        return out
    }

    /// The features the classifier sees for raw embeddings `features` (m, D): normalised, then standardised.
    public func transform(_ features: [Float]) -> [Double] {
        LinearProbe.standardise(normalisedRows(features, embedDim: embedDim), mean: mean, invStd: invStd)
    }

    /// Predicted class of each row of `features` (m, D).
    public func predict(_ features: [Float]) -> [Int32] { model.predict(transform(features)) }
}

/// Rows of `x` (m, D) scaled to unit L2 norm, in Double (an all-zero row stays zero).
public func normalisedRows(_ x: [Float], embedDim D: Int) -> [Double] {
    precondition(D >= 1 && x.count % D == 0, "normalisedRows: \(x.count) values are not rows of \(D)")
    var out = x.map(Double.init)
    for i in 0..<(x.count / D) {
        var s = 0.0
        for j in 0..<D { s += out[i * D + j] * out[i * D + j] }
        let inv = s > 0 ? 1 / s.squareRoot() : 0
        for j in 0..<D { out[i * D + j] *= inv }
    }
    return out
}
