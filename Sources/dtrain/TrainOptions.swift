import ArgumentParser
import Loss
import Model
import Train

// Flags of `dtrain train` (and of `study`, which takes any of them), one per key of the config table
// `ConfigKey.all`, which gives their help and shown defaults (`ConfigFlagTests` checks the two agree). Every flag is
// optional so that a config file's value stands unless the flag is given; the defaults are TrainConfig's.

struct DataOptions: ParsableArguments {
    @Option(help: .key("dataset")) var dataset: DatasetName?
    @Option(help: .key("data-dir")) var dataDir: String?
    @Option(parsing: .unconditional, help: .key("train-limit")) var trainLimit: Int?
    @Option(parsing: .unconditional, help: .key("test-limit")) var testLimit: Int?
    @Option(help: .key("classes", valueName: "ids")) var classes: String?
    @Option(help: .key("cache-dir")) var cacheDir: String?
    @Option(help: .key("mean", valueName: "m1,m2,…")) var mean: String?
    @Option(help: .key("std", valueName: "s1,s2,…")) var std: String?

    func validate() throws {
        var c = TrainConfig()
        do {
            if let mean { try c.set("mean", to: mean) }
            if let std { try c.set("std", to: std) }
        } catch { throw ValidationError("\(error)") }
    }

    func apply(to c: inout TrainConfig) {
        if let dataset {
            c.dataset = dataset.rawValue
            if dataDir == nil, dataset != .fashionMNIST { c.dataDir = dataset == .synthetic ? "" : "." }
        }
        if let dataDir { c.dataDir = dataDir }
        if let trainLimit { c.trainLimit = trainLimit }
        if let testLimit { c.testLimit = testLimit }
        if let cacheDir { c.cacheDir = cacheDir }
        if let mean { try? c.set("mean", to: mean) }   // checked by validate()
        if let std { try? c.set("std", to: std) }
    }
}

struct ModelOptions: ParsableArguments {
    @Option(help: .key("model")) var model: ModelKind?
    @Option(help: .key("loss")) var loss: LossKind?
    @Option(name: .customLong("lambda"), parsing: .unconditional, help: .key("lambda")) var lambda: Double?
    @Option(parsing: .unconditional, help: .key("tau")) var tau: Double?
    @Option(parsing: .unconditional, help: .key("beta")) var beta: Double?
    @Option(name: .customLong("init"), help: .key("init", valueName: "FILE")) var initWeights: String?
    @Option(help: .key("init-head", valueName: "yes|no")) var initHead: YesNo?
    @Option(parsing: .unconditional, help: .key("image-size")) var imageSize: Int?
    @Option(help: .key("norm")) var norm: NormKind?
    @Option(parsing: .unconditional, help: .key("norm-groups")) var normGroups: Int?
    @Option(help: .key("stem")) var stem: StemKind?
    @Option(help: .key("patch-size")) var patchSize: Int?
    @Option(help: .key("embed-dim")) var embedDim: Int?
    @Option(help: .key("depth")) var depth: Int?
    @Option(help: .key("heads")) var heads: Int?
    @Option(help: .key("mlp-ratio")) var mlpRatio: Double?

    func apply(to c: inout TrainConfig) {
        if let model { c.model = model.rawValue }
        if let loss { c.loss = loss.rawValue }
        if let lambda { c.lambda = lambda }
        if let tau { c.tau = tau }
        if let beta { c.beta = beta }
        if let initWeights { c.initWeights = initWeights }
        if let initHead { c.initHead = initHead.isYes }
        if let imageSize { c.imageSize = imageSize }
        if let norm { c.norm = norm }
        if let normGroups { c.normGroups = normGroups }
        if let stem { c.stem = stem }
        if let patchSize { c.patchSize = patchSize }
        if let embedDim { c.embedDim = embedDim }
        if let depth { c.depth = depth }
        if let heads { c.heads = heads }
        if let mlpRatio { c.mlpRatio = mlpRatio }
    }
}

struct OptimOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: .key("batch-size")) var batchSize: Int?
    @Option(parsing: .unconditional, help: .key("epochs")) var epochs: Int?
    @Option(parsing: .unconditional, help: .key("max-steps")) var maxSteps: Int?
    @Option(parsing: .unconditional, help: .key("steps")) var steps: Int?
    @Option(parsing: .unconditional, help: .key("chunk-size")) var chunkSize: Int?
    @Option(parsing: .unconditional, help: .key("lr")) var lr: Double?
    @Option(parsing: .unconditional, help: .key("weight-decay")) var weightDecay: Double?
    @Option(help: .key("optimizer")) var optimizer: OptimizerKind?
    @Option(parsing: .unconditional, help: .key("momentum")) var momentum: Double?
    @Option(parsing: .unconditional, help: .key("warmup-epochs")) var warmupEpochs: Double?
    @Option(parsing: .unconditional, help: .key("seed")) var seed: UInt64?

    func apply(to c: inout TrainConfig) {
        if let batchSize { c.batchSize = batchSize }
        if let epochs { c.epochs = epochs }
        if let maxSteps { c.maxSteps = maxSteps }
        if let steps { c.steps = steps }
        if let chunkSize { c.chunkSize = chunkSize }
        if let lr { c.lr = lr }
        if let weightDecay { c.weightDecay = weightDecay }
        if let optimizer { c.optimizer = optimizer.rawValue }
        if let momentum { c.momentum = momentum }
        if let warmupEpochs { c.warmupEpochs = warmupEpochs }
        if let seed { c.seed = seed }
    }
}

struct RunOptions: ParsableArguments {
    @Option(help: .key("out")) var out: String?
    @Option(parsing: .unconditional, help: .key("log-every")) var logEvery: Int?
    @Option(parsing: .unconditional, help: .key("blas-threads")) var blasThreads: Int?
    @Flag(help: .key("quiet")) var quiet = false
    @Option(help: "YAML or JSON config file with any of these options as keys (batch-size: 64); flags override it.")
    var config: String?
    @Option(parsing: .unconditional, help: .key("checkpoint-every")) var checkpointEvery: Int?
    @Option(parsing: .unconditional, help: .key("checkpoint-every-epochs")) var checkpointEveryEpochs: Int?
    @Flag(help: .key("overlap")) var noOverlap = false
        @Option(parsing: .unconditional, help: .key("bucket-size")) var bucketSize: Int?
    @Flag(help: .key("checkpoint")) var noCheckpoint = false
    @Option(parsing: .unconditional, help: .key("checkpoint-minutes")) var checkpointMinutes: Double?
    @Option(parsing: .unconditional, help: .key("divergence-factor")) var divergenceFactor: Double?
    @Option(parsing: .unconditional, help: .key("step-timeout")) var stepTimeout: Double?

    func apply(to c: inout TrainConfig) {
        if let out { c.out = out }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let checkpointEveryEpochs { c.checkpointEveryEpochs = checkpointEveryEpochs }
        if let logEvery { c.logEvery = logEvery }
        if let blasThreads { c.blasThreads = blasThreads }
        if quiet { c.quiet = true }
        if noOverlap { c.overlap = false }
        if let bucketSize { c.bucketSize = bucketSize }
        if noCheckpoint { c.checkpoint = false }
        if let checkpointMinutes { c.checkpointMinutes = checkpointMinutes }
        if let divergenceFactor { c.divergenceFactor = divergenceFactor }
        if let stepTimeout { c.stepTimeout = stepTimeout }
    }
}

struct EvalOptions: ParsableArguments {
    @Option(help: .key("eval", valueName: "modes")) var eval: String?
    @Option(parsing: .unconditional, help: .key("knn-k")) var knnK: Int?
    @Option(parsing: .unconditional, help: .key("probe-epochs")) var probeEpochs: Int?
    @Flag(help: .key("epoch-eval")) var noEpochEval = false

    func validate() throws {
        if let eval {
            var c = TrainConfig()
            do { try c.set("eval", to: eval) } catch { throw ValidationError("--eval: \(error)") }
        }
    }

    func apply(to c: inout TrainConfig) throws {
        if let eval { try c.set("eval", to: eval) }
        if let knnK { c.knnK = knnK }
        if let probeEpochs { c.probeEpochs = probeEpochs }
        if noEpochEval { c.epochEval = false }
    }
}

/// Builds the run's config: `base` (the defaults, or a resumed checkpoint's settings), replaced by the config file
/// if one is given, then the flags given.
func makeConfig(data: DataOptions, model: ModelOptions, optim: OptimOptions, run: RunOptions,
                eval: EvalOptions, base: TrainConfig = TrainConfig()) throws -> TrainConfig {
    var c = base
    if let path = run.config { c = try TrainConfig.load(path: path) }
    data.apply(to: &c); model.apply(to: &c); optim.apply(to: &c); run.apply(to: &c)
    if let classes = data.classes {
        do { try c.set("classes", to: classes) } catch { throw ValidationError("--classes: \(error)") }
    }
    try eval.apply(to: &c)
    return c
}
