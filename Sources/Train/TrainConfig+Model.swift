// TEMPORARY until the config key table lands (branch config-table): the model keys' defaults.
extension TrainConfig {
    var stem: String { "imagenet" }
    var norm: String { "batch" }
    var normGroups: Int { 8 }
}
