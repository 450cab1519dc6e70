// Every loss key of every single-process reference file, in Float (loss rel 1e-5, gradients 1e-4 × max|g|) and
// Double (loss rel 1e-10, gradients 1e-9 × max|g|). Files come from the bundled Fixtures folder and, when set,
// $DTRAIN_REFERENCE_VECTORS. A file that cannot be decoded fails its test. dist_4ranks.json (distributed layout)
// is recognised by its keys and checked in DistributedTests.

import Foundation
import Testing
import Tensor
import Loss

@Suite struct ReferenceVectorTests {
    @Test func fixtureFoldersAreReadable() throws {
        let fixtures = ReferenceFolders.jsonFiles(in: ReferenceFolders.fixtures)
        #expect(fixtures.count >= 9, "expected the 9 bundled reference files, found \(fixtures.count)")
        if let folder = ReferenceFolders.environment {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory)
            #expect(exists && isDirectory.boolValue, "DTRAIN_REFERENCE_VECTORS=\(folder.path) is not a folder")
            #expect(!ReferenceFolders.jsonFiles(in: folder).isEmpty, "no *.json in \(folder.path)")
        }
    }

    @Test("Float32 against reference", arguments: ReferenceFolders.allFiles)
    func float32(_ url: URL) throws {
        try checkReferenceFile(url, as: Float.self, lossTolerance: 1e-5, gradientTolerance: 1e-4)
    }

    @Test("Float64 against reference", arguments: ReferenceFolders.allFiles)
    func float64(_ url: URL) throws {
        try checkReferenceFile(url, as: Double.self, lossTolerance: 1e-10, gradientTolerance: 1e-9)
    }
}

/// Checks every key present in one file. Loss values: relative `lossTolerance`; per-anchor terms: relative
/// `lossTolerance` plus `lossTolerance` × max|l_i|; gradients: absolute `gradientTolerance` × max|g|.
func checkReferenceFile<T: BLASScalar>(_ url: URL, as type: T.Type, lossTolerance: Double,
                                       gradientTolerance: Double) throws {
    guard case .singleProcess(let file) = try ReferenceFile.load(url) else { return }
    let name = url.lastPathComponent, precision = "\(T.self)"
    let inputs = file.inputs, outputs = file.outputs
    let x = inputs.flatEmbeddings, labels = inputs.labels, logits = inputs.flatLogits

    func compareLoss(_ actual: Double, _ expected: Double, _ key: String) {
        assertClose(actual, expected, rtol: lossTolerance, "\(name) \(key) loss [\(precision)]")
    }
    func comparePerAnchor(_ actual: [Double], _ expected: [Double]?, _ key: String) {
        guard let expected else { return }
        assertClose(actual, expected, rtol: lossTolerance, atol: lossTolerance * maxAbs(expected),
                    "\(name) \(key) per_anchor [\(precision)]")
    }
    func compareGradient(_ actual: [Double], _ expected: [[Double]]?, _ what: String) {
        guard let expected else { return }
        let flat = expected.flatMap { $0 }
        assertClose(actual, flat, atol: gradientTolerance * maxAbs(flat), "\(name) \(what) [\(precision)]")
    }
    func contrastive(_ key: String, _ reference: ReferenceLoss?, _ loss: ContrastiveLoss,
                     detached: ContrastiveLoss? = nil) {
        guard let reference else { return }
        let r = runContrastive(loss, x: x, labels: labels, dim: inputs.D, tau: inputs.tau, as: T.self)
        compareLoss(r.loss, reference.loss, key)
        comparePerAnchor(r.perAnchor, reference.perAnchor, key)
        compareGradient(r.dEmbeddings, reference.gradEmbeddings, "\(key) grad_embeddings")
        if let detached, let expected = reference.gradEmbeddingsWeightsDetached {
            let d = runContrastive(detached, x: x, labels: labels, dim: inputs.D, tau: inputs.tau, as: T.self)
            compareLoss(d.loss, reference.loss, "\(key) (detached)")
            compareGradient(d.dEmbeddings, expected, "\(key) grad_embeddings_weights_detached")
        }
    }
    func blend(_ key: String, _ reference: ReferenceLoss?, _ kind: LossKind) {
        guard let reference else { return }
        let r = runBlend(kind, x: x, labels: labels, dim: inputs.D, logits: logits, classes: inputs.C,
                         tau: inputs.tau, lambda: inputs.lambda, beta: inputs.beta, as: T.self)
        compareLoss(r.value.total, reference.loss, key)
        compareGradient(r.dEmbeddings, reference.gradEmbeddings, "\(key) grad_embeddings")
        compareGradient(r.dLogits, reference.gradLogits, "\(key) grad_logits")
    }

    if let reference = outputs.ce {
        let r = runCrossEntropy(logits: logits, labels: labels, classes: inputs.C, as: T.self)
        compareLoss(r.loss, reference.loss, "ce")
        comparePerAnchor(r.perAnchor, reference.perAnchor, "ce")
        compareGradient(r.dLogits, reference.gradLogits, "ce grad_logits")
    }
    let beta = inputs.beta
    contrastive("supcon_out", outputs.supconOut, .supconOut)
    contrastive("lacl_no_hnm", outputs.laclNoHnm, .laclNoHNM)
    contrastive("lacln", outputs.lacln, .lacln(beta: beta),
                detached: .lacln(beta: beta, detachedWeights: true))
    contrastive("lacln_out", outputs.laclnOut, .lacln(beta: beta, placement: .outside),
                detached: .lacln(beta: beta, placement: .outside, detachedWeights: true))
    blend("clce", outputs.clce, .clce)
    blend("clce_no_hnm", outputs.clceNoHnm, .clceNoHNM)
}
