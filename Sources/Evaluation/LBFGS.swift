// Limited-memory BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed., Alg. 7.4 and 7.5) for smooth convex
// objectives in Double: the two-loop recursion over the last `memory` (s, y) pairs, a backtracking line search
// with the Armijo condition f(x + a·p) ≤ f(x) + 1e-4·a·gᵀp, and an update skipped when sᵀy is not positive.
// Deterministic: no randomness, fixed order of every sum, so the same inputs give the same bits.
import Foundation
import Tensor

/// When L-BFGS stops and what it reached.
public struct LBFGSResult: Sendable, Equatable {
    /// Iterations done (line searches).
    public var iterations: Int
    /// Objective evaluations.
    public var evaluations: Int
    /// Final objective value and max-norm of its gradient.
    public var value: Double, gradientMaxNorm: Double
    /// Whether the gradient tolerance was met (false: stopped by the iteration cap or a stalled line search).
    public var converged: Bool
}

/// Settings of `minimiseLBFGS`.
public struct LBFGSOptions: Sendable, Equatable {
    /// Stop when max_i |∂f/∂x_i| ≤ `gradientTolerance`.
    public var gradientTolerance = 1e-6
    /// Stop after this many iterations.
    public var maxIterations = 1000
    /// (s, y) pairs kept.
    public var memory = 10
    public init(gradientTolerance: Double = 1e-6, maxIterations: Int = 1000, memory: Int = 10) {
        self.gradientTolerance = gradientTolerance
        self.maxIterations = maxIterations
        self.memory = memory
    }
}

/// Minimises f starting from `x` (updated in place). `objective(x, gradient)` returns f(x) and overwrites
/// `gradient` with ∇f(x). Stops at the gradient tolerance, the iteration cap, or when a line search cannot
/// decrease f (f is then at its floating-point minimum along the search direction). `progress` is called after every
/// evaluation of the objective.
public func minimiseLBFGS(_ x: inout [Double], options: LBFGSOptions = LBFGSOptions(),
                          progress: (() -> Void)? = nil,
                          objective: ([Double], inout [Double]) -> Double) -> LBFGSResult {
    let n = x.count
    var g = [Double](repeating: 0, count: n)
    var f = objective(x, &g)
    progress?()
    var evaluations = 1
    var s: [[Double]] = [], y: [[Double]] = [], rho: [Double] = []
    var alpha = [Double](repeating: 0, count: options.memory)
    var p = [Double](repeating: 0, count: n), xNew = x, gNew = g
    func maxNorm(_ v: [Double]) -> Double { v.reduce(0) { Swift.max($0, abs($1)) } }
    func dot(_ a: [Double], _ b: [Double]) -> Double {
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
            Double.dot(count: n, x: a.baseAddress!, y: b.baseAddress!)
        } }
    }
    var iteration = 0
    while iteration < options.maxIterations {
        if maxNorm(g) <= options.gradientTolerance {
            return LBFGSResult(iterations: iteration, evaluations: evaluations, value: f,
                               gradientMaxNorm: maxNorm(g), converged: true)
        }
        // Two-loop recursion: p = −H·g, H₀ = (sᵀy / yᵀy)·I from the newest pair.
        for i in 0..<n { p[i] = -g[i] }
        let pairs = s.count
        for j in stride(from: pairs - 1, through: 0, by: -1) {
            alpha[j] = rho[j] * dot(s[j], p)
            for i in 0..<n { p[i] -= alpha[j] * y[j][i] }
        }
        if pairs > 0 {
            let gamma = dot(s[pairs - 1], y[pairs - 1]) / dot(y[pairs - 1], y[pairs - 1])
            for i in 0..<n { p[i] *= gamma }
        }
        for j in 0..<pairs {
            let beta = rho[j] * dot(y[j], p)
            for i in 0..<n { p[i] += (alpha[j] - beta) * s[j][i] }
        }
        var slope = dot(g, p)
        if slope >= 0 {
            // Not a descent direction (round-off): restart from steepest descent.
            s.removeAll(); y.removeAll(); rho.removeAll()
            for i in 0..<n { p[i] = -g[i] }
            slope = dot(g, p)
        }
        // A steepest-descent step is scaled to length 1; quasi-Newton steps start at 1.
        var step = s.isEmpty ? 1 / Swift.max(dot(p, p).squareRoot(), 1e-300) : 1
        var fNew = 0.0, accepted = false
        for _ in 0..<60 {
            for i in 0..<n { xNew[i] = x[i] + step * p[i] }
            fNew = objective(xNew, &gNew)
            progress?()
            evaluations += 1
            if fNew <= f + 1e-4 * step * slope { accepted = true; break }
            step *= 0.5
        }
        iteration += 1
        if !accepted || fNew >= f {
            return LBFGSResult(iterations: iteration, evaluations: evaluations, value: f,
                               gradientMaxNorm: maxNorm(g), converged: maxNorm(g) <= options.gradientTolerance)
        }
        var sNew = [Double](repeating: 0, count: n), yNew = [Double](repeating: 0, count: n)
        for i in 0..<n { sNew[i] = xNew[i] - x[i]; yNew[i] = gNew[i] - g[i] }
        let sy = dot(sNew, yNew)
        if sy > 1e-12 * dot(yNew, yNew).squareRoot() * dot(sNew, sNew).squareRoot() {
            if s.count == options.memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            s.append(sNew); y.append(yNew); rho.append(1 / sy)
        }
        swap(&x, &xNew)
        swap(&g, &gNew)
        f = fNew
    }
    return LBFGSResult(iterations: iteration, evaluations: evaluations, value: f, gradientMaxNorm: maxNorm(g),
                       converged: maxNorm(g) <= options.gradientTolerance)
}
