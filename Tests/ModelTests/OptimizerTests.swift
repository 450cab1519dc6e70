import Testing
import Tensor
import Model

// Trajectories for p0 = (1, −2, 0.5) and gradients g1, g2, g3 below, computed by hand (Python, Double) from
// the PyTorch update rules stated in SGD.swift / AdamW.swift.
let startingPoint: [Float] = [1, -2, 0.5]
let gradientSequence: [[Float]] = [[0.1, 0.2, -0.3], [-0.2, 0.05, 0.4], [0.3, -0.1, 0.0]]

@Suite struct OptimizerTests {
    @Test func sgdMomentumWeightDecayTrajectory() {
        let params = Arena(startingPoint), grads = Arena(count: 3)
        let sgd = SGD(params: params, grads: grads, momentum: 0.9, weightDecay: 0.01)
        let expected: [[Double]] = [
            [0.989, -2.018, 0.5295],
            [0.998111, -2.037182, 0.5155205],
            [0.975312789, -2.042408618, 0.5024234295],
        ]
        for (g, p) in zip(gradientSequence, expected) {
            for i in 0..<3 { grads[i] = g[i] }
            sgd.step(lr: 0.1)
            assertClose(params.toArray(), p, rtol: 1e-6, atol: 1e-7, "sgd step \(sgd.stepCount)")
        }
        #expect(sgd.stepCount == 3)
        #expect(grads.toArray() == gradientSequence[2])   // gradients untouched
        // The buffer after step 1 is d = g + wd·p0; check via a fresh optimiser.
        let p2 = Arena(startingPoint), g2 = Arena(gradientSequence[0])
        let one = SGD(params: p2, grads: g2, momentum: 0.9, weightDecay: 0.01)
        one.step(lr: 0.1)
        assertClose(one.momentumBuffer.toArray(), [0.11, 0.18, -0.295], rtol: 1e-6, atol: 1e-7, "first buf")
    }

    @Test func adamWTrajectory() {
        let params = Arena(startingPoint), grads = Arena(count: 3)
        let adam = AdamW(params: params, grads: grads, weightDecay: 0.01)
        #expect(adam.beta1 == 0.9 && adam.beta2 == 0.999 && adam.epsilon == 1e-8)
        let expected: [[Double]] = [
            [0.9899000009999999, -2.0097999995, 0.5099499996666667],
            [0.9934620460387489, -2.0179049942668943, 0.5079639006300642],
            [0.9899302891900704, -2.0206887209860427, 0.5064172632206679],
        ]
        for (g, p) in zip(gradientSequence, expected) {
            for i in 0..<3 { grads[i] = g[i] }
            adam.step(lr: 0.01)
            // rtol 2e-6: Float state, bias corrections in Double.
            assertClose(params.toArray(), p, rtol: 2e-6, atol: 1e-7, "adamw step \(adam.stepCount)")
        }
        assertClose(adam.firstMoment.toArray(), [0.0201, 0.0107, 0.0117], rtol: 1e-5, atol: 1e-7, "m")
        assertClose(adam.secondMoment.toArray(), [0.00013994001, 0.00005241754, 0.00024966009], rtol: 1e-5, atol: 0,
                    "v")
    }

    @Test func scheduleWarmupThenCosine() {
        #expect(abs(LearningRateSchedule.defaultBase(globalBatch: 1024) - 0.1) < 1e-15)
        #expect(abs(LearningRateSchedule.defaultBase(globalBatch: 256) - 0.05) < 1e-15)
        let s = LearningRateSchedule(base: 0.1, warmupSteps: 10, totalSteps: 100)
        let steps = [0, 4, 9, 10, 55, 99, 100]
        let expected = [0.01, 0.05, 0.1, 0.1, 0.05, 3.0458649045211895e-05, 0.0]
        assertClose(steps.map { s.rate(at: $0) }, expected, rtol: 1e-6, atol: 1e-9, "schedule")
        // No warmup: cosine from the first step; T = W: max(1, T − W) guards the division.
        #expect(LearningRateSchedule(base: 0.2, warmupSteps: 0, totalSteps: 10).rate(at: 0) == 0.2)
        #expect(LearningRateSchedule(base: 0.2, warmupSteps: 5, totalSteps: 5).rate(at: 5) == 0.2)
    }
}
