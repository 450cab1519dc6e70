import Foundation
import Testing
@testable import Evaluation

/// The scikit-learn reference written by scripts/probe_fixture.py.
struct SklearnFixture: Decodable {
    var embed_dim: Int, classes: Int
    var train: [Float], train_labels: [Int32], test: [Float], test_labels: [Int32]
    var probe_C: Double, probe_test_accuracy: Double, probe_objective: Double
    var probe_coef: [Double], probe_intercept: [Double]
    var fewshot_support: [Int], fewshot_coef: [Double], fewshot_intercept: [Double]
    var fewshot_test_predictions: [Int32]

    static func load() throws -> SklearnFixture {
        let url = try #require(Bundle.module.url(forResource: "probe_sklearn", withExtension: "json",
                                                  subdirectory: "Fixtures"))
        return try JSONDecoder().decode(SklearnFixture.self, from: Data(contentsOf: url))
    }
}

@Suite struct ProbeSklearnTests {
    @Test func equivalentC() throws {
        let f = try SklearnFixture.load()
        // sklearn: C·Σ CE + ½‖W‖²  ⇔  mean CE + ‖W‖²/(2·C·n), so λ = 1e-4 ⇔ C = 1/(2·1e-4·n).
        #expect(abs(f.probe_C - 1 / (2 * LinearProbe.penalty * Double(f.train_labels.count))) < 1e-9)
    }

    @Test func probeMatchesScikitLearn() throws {
        let f = try SklearnFixture.load()
        let probe = LinearProbe(features: f.train, labels: f.train_labels, embedDim: f.embed_dim, classes: f.classes)
        #expect(probe.model.result.converged, "\(probe.model.result)")
        let acc = accuracy(predictions: probe.predict(f.test), labels: f.test_labels)
        // The bar: within 0.2 points of scikit-learn's test accuracy.
        #expect(abs(acc - f.probe_test_accuracy) * 100 <= 0.2, "dtrain \(acc), sklearn \(f.probe_test_accuracy)")
        // Same convex objective: the optimum value and the weights agree closely.
        #expect(abs(probe.model.result.value - f.probe_objective) <= 1e-7 * max(1, f.probe_objective),
                "objective \(probe.model.result.value) vs \(f.probe_objective)")
        let K = f.classes, D = f.embed_dim
        let w = Array(probe.model.parameters[0..<(K * D)]), b = Array(probe.model.parameters[(K * D)...])
        let worstW = zip(w, f.probe_coef).map { abs($0 - $1) }.max()!
        let worstB = zip(b, f.probe_intercept).map { abs($0 - $1) }.max()!
        #expect(worstW <= 1e-4 && worstB <= 1e-4, "coef off by \(worstW), intercept by \(worstB)")
    }

    @Test func fewShotLogisticRegressionMatchesScikitLearn() throws {
        let f = try SklearnFixture.load()
        let D = f.embed_dim, K = f.classes
        let all = normalisedRows(f.train, embedDim: D)
        var x: [Double] = [], y: [Int32] = []
        for i in f.fewshot_support { x += all[(i * D)..<((i + 1) * D)]; y.append(f.train_labels[i]) }
        // RFS: C = 1 ⇔ λ = 1/(2n).
        let model = LogisticRegression(x: x, y: y, features: D, classes: K, penalty: 1 / (2 * Double(y.count)))
        let worst = zip(model.parameters, f.fewshot_coef + f.fewshot_intercept).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4, "parameters off by \(worst)")
        let predicted = model.predict(normalisedRows(f.test, embedDim: D))
        let agree = zip(predicted, f.fewshot_test_predictions).filter { $0 == $1 }.count
        #expect(agree >= f.test_labels.count - 1, "\(agree)/\(f.test_labels.count) predictions agree")
    }

    @Test func lbfgsGradientMatchesFiniteDifferences() {
        let (x, y) = clusteredEmbeddings(count: 30, classes: 3, embedDim: 4, noise: 1, seed: 3)
        let xd = x.map(Double.init)
        let theta = (0..<15).map { Double($0 % 7) * 0.1 - 0.3 }
        var z = [Double](repeating: 0, count: 30 * 3), g = [Double](repeating: 0, count: 15), scratch = g
        _ = LogisticRegression.objective(theta: theta, x: xd, y: y, n: 30, D: 4, K: 3, penalty: 0.05, z: &z,
                                         gradient: &g)
        for i in 0..<15 {
            var p = theta, m = theta
            p[i] += 1e-6; m[i] -= 1e-6
            let fp = LogisticRegression.objective(theta: p, x: xd, y: y, n: 30, D: 4, K: 3, penalty: 0.05, z: &z,
                                                  gradient: &scratch)
            let fm = LogisticRegression.objective(theta: m, x: xd, y: y, n: 30, D: 4, K: 3, penalty: 0.05, z: &z,
                                                  gradient: &scratch)
            #expect(abs((fp - fm) / 2e-6 - g[i]) < 1e-7, "component \(i)")
        }
    }
}
