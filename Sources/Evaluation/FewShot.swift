// Few-shot evaluation of frozen embeddings (RFS, Tian et al. 2020; Prototypical Networks, Snell et al. 2017).
//
// An episode (seed, e) draws `ways` distinct classes from the novel classes, then `shots + queries` distinct images
// of each, all with the counter RNG (stream `.episode`, index e, one substream per draw in a fixed order), so an
// episode depends on (seed, e, ways, shots, queries) only: not on the rank count, the classifier or the other
// episodes. Partial Fisher–Yates: draw t picks uniformly among the items not drawn yet. The first `shots` images of
// a class are its support, the rest its queries. Embeddings are L2-normalised once.
//   prototype  each query goes to the class whose support mean has the largest cosine similarity with it;
//   logreg     multinomial logistic regression on the support (RFS: sklearn LogisticRegression(C = 1, lbfgs,
//              multinomial) = mean CE + ‖W‖²/(2n) over the n = ways·shots support rows), fitted by L-BFGS.
// Episode accuracy = correct queries / (ways·queries); the report is the mean over episodes and the 95% confidence
// half-width t(0.975, E−1)·s/√E, s the sample standard deviation (E − 1 in the denominator).
//
// Legend: N = ways, K = shots, Q = queries per class, E = episodes, D = embedDim.
import Foundation
import Tensor

/// One episode: the dataset indices of each way's support and query images.
public struct Episode: Sendable, Equatable {
    /// The novel class (original label value) of each way, (N).
    public var classes: [Int32]
    /// Dataset indices, (N) × (K) and (N) × (Q).
    public var support: [[Int]], query: [[Int]]
}

/// Draws episodes over the images of a set of novel classes.
public struct EpisodeSampler: Sendable {
    public let ways: Int, shots: Int, queries: Int
    public let seed: UInt64
    /// The novel classes (label values) and, for each, its dataset indices in increasing order.
    public let classes: [Int32]
    public let members: [[Int]]

    /// A sampler over the images of `labels` whose label is in `classes`. Throws when a class has fewer than
    /// `shots + queries` images or there are fewer than `ways` classes.
    public init(labels: [Int32], classes: [Int32], ways: Int, shots: Int, queries: Int, seed: UInt64) throws {
        precondition(ways >= 1 && shots >= 1 && queries >= 1, "EpisodeSampler: \(ways) ways, \(shots) shots, "
                     + "\(queries) queries")
        guard classes.count >= ways else {
            throw EvaluationError("\(ways)-way episodes need at least \(ways) classes, got \(classes.count)")
        }
        guard Set(classes).count == classes.count else { throw EvaluationError("classes listed twice: \(classes)") }
        var index = [Int32: Int]()
        for (i, c) in classes.enumerated() { index[c] = i }
        var members = [[Int]](repeating: [], count: classes.count)
        for (i, label) in labels.enumerated() { if let k = index[label] { members[k].append(i) } }
        for (k, m) in members.enumerated() where m.count < shots + queries {
            throw EvaluationError("class \(classes[k]) has \(m.count) images, an episode needs shots + queries = "
                                  + "\(shots + queries)")
        }
        self.ways = ways; self.shots = shots; self.queries = queries; self.seed = seed
        self.classes = classes
        self.members = members
    }

    /// Episode `e`, a function of (seed, e) and the sampler's sizes.
    public func episode(_ e: Int) -> Episode {
        let rng = CounterRNG(seed: seed)
        var draw: UInt32 = 0
        /// The first `take` entries of a partial Fisher–Yates shuffle of 0..<count.
        func pick(_ take: Int, of count: Int) -> [Int] {
            var items = Array(0..<count)
            for t in 0..<take {
                let j = t + rng.integer(below: count - t, stream: .episode, index: UInt64(e), substream: draw)
                draw += 1
                items.swapAt(t, j)
            }
            return Array(items[0..<take])
        }
        let chosen = pick(ways, of: classes.count)
        var support: [[Int]] = [], query: [[Int]] = []
        for k in chosen {
            let images = pick(shots + queries, of: members[k].count).map { members[k][$0] }
            support.append(Array(images[0..<shots]))
            query.append(Array(images[shots...]))
        }
        return Episode(classes: chosen.map { classes[$0] }, support: support, query: query)
    }
}

/// How an episode's queries are classified.
public enum FewShotClassifier: String, Sendable, CaseIterable {
    /// Cosine nearest support-class mean.
    case prototype
    /// Multinomial logistic regression on the support, sklearn C = 1 (RFS).
    case logreg
}

/// Fraction of the queries of `episode` classified correctly by `classifier` on the L2-normalised `embeddings`
/// (rows, D) of the whole pool.
public func episodeAccuracy(_ episode: Episode, embeddings x: [Double], embedDim D: Int,
                            classifier: FewShotClassifier) -> Double {
    let N = episode.classes.count
    var correct = 0, total = 0
    switch classifier {
    case .prototype:
        var prototypes = [Double](repeating: 0, count: N * D)
        for w in 0..<N {
            for i in episode.support[w] { for j in 0..<D { prototypes[w * D + j] += x[i * D + j] } }
            var s = 0.0
            for j in 0..<D { s += prototypes[w * D + j] * prototypes[w * D + j] }
            let inv = s > 0 ? 1 / s.squareRoot() : 0
            for j in 0..<D { prototypes[w * D + j] *= inv }
        }
        for w in 0..<N {
            for i in episode.query[w] {
                var best = 0, bestScore = -Double.infinity
                for v in 0..<N {
                    var s = 0.0
                    for j in 0..<D { s += prototypes[v * D + j] * x[i * D + j] }
                    if s > bestScore { best = v; bestScore = s }
                }
                if best == w { correct += 1 }
                total += 1
            }
        }
    case .logreg:
        var supportX: [Double] = [], supportY: [Int32] = []
        for w in 0..<N {
            for i in episode.support[w] { supportX += x[(i * D)..<((i + 1) * D)]; supportY.append(Int32(w)) }
        }
        let model = LogisticRegression(x: supportX, y: supportY, features: D, classes: N,
                                       penalty: 1 / (2 * Double(supportY.count)),
                                       options: LBFGSOptions(gradientTolerance: 1e-6, maxIterations: 500))
        for w in 0..<N {
            var queryX: [Double] = []
            for i in episode.query[w] { queryX += x[(i * D)..<((i + 1) * D)] }
            for p in model.predict(queryX) {
                if p == Int32(w) { correct += 1 }
                total += 1
            }
        }
    }
    return Double(correct) / Double(total)
}

// MARK: - Mean and confidence interval

/// Mean and 95% confidence half-width of `values`: t(0.975, n−1)·s/√n with s the sample standard deviation
/// (n − 1 denominator); ci95 is NaN for fewer than two values.
public func meanAndCI95(_ values: [Double]) -> (mean: Double, ci95: Double) {
    let n = Double(values.count)
    let mean = values.reduce(0, +) / n
    guard values.count >= 2 else { return (mean, .nan) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
    return (mean, studentTQuantile(0.975, degreesOfFreedom: n - 1) * (variance / n).squareRoot())
}

/// The p-quantile (0.5 < p < 1) of Student's t distribution with ν degrees of freedom, by bisection on its CDF
/// F(t) = 1 − ½·I_{ν/(ν+t²)}(ν/2, ½) to 1e-12.
public func studentTQuantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
    precondition(p > 0.5 && p < 1 && nu > 0, "studentTQuantile: p \(p), ν \(nu)")
    func cdf(_ t: Double) -> Double { 1 - 0.5 * regularisedIncompleteBeta(nu / (nu + t * t), a: nu / 2, b: 0.5) }
    var lo = 0.0, hi = 1.0
    while cdf(hi) < p { hi *= 2 }
    while hi - lo > 1e-12 * max(1, hi) {
        let mid = (lo + hi) / 2
        if cdf(mid) < p { lo = mid } else { hi = mid }
    }
    return (lo + hi) / 2
}

/// I_x(a, b), the regularised incomplete beta function, by its continued fraction (Numerical Recipes 3rd ed.,
/// §6.4, modified Lentz), using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where it converges faster.
func regularisedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    let logGammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
    let logPowers: Double = a * Foundation.log(x) + b * Foundation.log(1 - x)
    let logFront = logGammas + logPowers
    func fraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...10_000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return h
    }
    if x < (a + 1) / (a + b + 2) { return Foundation.exp(logFront) * fraction(x, a, b) / a }
    return 1 - Foundation.exp(logFront) * fraction(1 - x, b, a) / b
}
