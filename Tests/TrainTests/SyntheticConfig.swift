@testable import Train

extension TrainConfig {
    /// The base of the tests' small runs: the synthetic dataset (no files), `trainLimit` training and `testLimit`
    /// test images, `batchSize` images per step, quiet; each test sets the rest.
    static func synthetic(model: String = "mlp", loss: String = "clce", batchSize: Int, trainLimit: Int,
                          testLimit: Int) -> TrainConfig {
        var c = TrainConfig()
        c.dataset = "synthetic"
        c.dataDir = ""
        c.model = model
        c.loss = loss
        c.batchSize = batchSize
        c.trainLimit = trainLimit
        c.testLimit = testLimit
        c.quiet = true
        return c
    }
}
