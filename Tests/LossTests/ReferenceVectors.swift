// Decoding of the reference-vector JSON files (/work/shared/reference-vectors/README.md describes the layout).

import Foundation

/// Errors that make a reference file unusable: reported as test failures, never skipped.
struct ReferenceFileError: Error, CustomStringConvertible {
    var description: String
}

/// Inputs shared by both layouts.
struct ReferenceInputs: Decodable {
    var N: Int, D: Int, C: Int
    var tau: Double, lambda: Double, beta: Double
    var labels: [Int32]
    var embeddings: [[Double]]
    var logits: [[Double]]

    var flatEmbeddings: [Double] { embeddings.flatMap { $0 } }
    var flatLogits: [Double] { logits.flatMap { $0 } }

    func validate(_ file: String) throws {
        guard N >= 1, labels.count == N, embeddings.count == N, logits.count == N,
              embeddings.allSatisfy({ $0.count == D }), logits.allSatisfy({ $0.count == C }) else {
            throw ReferenceFileError(description: "\(file): inputs do not match N=\(N), D=\(D), C=\(C)")
        }
    }
}

/// One loss's outputs; which members are present depends on the key.
struct ReferenceLoss: Decodable {
    var loss: Double
    var perAnchor: [Double]?
    var gradEmbeddings: [[Double]]?
    var gradEmbeddingsWeightsDetached: [[Double]]?
    var gradLogits: [[Double]]?
}

/// `outputs` of a single-process file.
struct ReferenceOutputs: Decodable {
    var ce: ReferenceLoss?
    var supconOut: ReferenceLoss?
    var laclNoHnm: ReferenceLoss?
    var lacln: ReferenceLoss?
    var laclnOut: ReferenceLoss?
    var clce: ReferenceLoss?
    var clceNoHnm: ReferenceLoss?

    var presentKeys: [String] {
        [("ce", ce), ("supcon_out", supconOut), ("lacl_no_hnm", laclNoHnm), ("lacln", lacln),
         ("lacln_out", laclnOut), ("clce", clce), ("clce_no_hnm", clceNoHnm)].compactMap { $0.1 == nil ? nil : $0.0 }
    }
}

/// A single-process reference file.
struct SingleProcessReference: Decodable {
    var name: String?
    var inputs: ReferenceInputs
    var outputs: ReferenceOutputs
}

/// Per-rank contrastive outputs of the distributed file.
struct RankContrastive: Decodable {
    var localLoss: Double
    var gradLocalEmbeddings: [[Double]]
    var gradLocalEmbeddingsOwnLossOnly: [[Double]]?
    var gradLocalLogits: [[Double]]?
}

/// Per-rank cross-entropy outputs of the distributed file.
struct RankCrossEntropy: Decodable {
    var localLoss: Double
    var gradLocalLogits: [[Double]]
}

/// One rank of the distributed file.
struct RankReference: Decodable {
    var rank: Int
    var rows: [Int]
    var lacln: RankContrastive
    var supconOut: RankContrastive
    var ce: RankCrossEntropy
    var clce: RankContrastive
}

/// The distributed reference file (dist_4ranks.json).
struct DistributedReference: Decodable {
    var inputs: ReferenceInputs
    var singleProcess: ReferenceOutputs
    var ranks: [RankReference]
}

/// The top-level keys that tell the layouts apart.
private struct LayoutProbe: Decodable {
    var inputs: AnyKey?
    var outputs: AnyKey?
    var ranks: AnyKey?
    var singleProcess: AnyKey?

    struct AnyKey: Decodable {
        init(from decoder: Decoder) throws {}
    }
}

/// A reference file, classified by its keys.
enum ReferenceFile {
    case singleProcess(SingleProcessReference)
    case distributed(DistributedReference)

    /// Reads and decodes `url`; throws when the file is not JSON or has neither layout.
    static func load(_ url: URL) throws -> ReferenceFile {
        let data = try Data(contentsOf: url)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let name = url.lastPathComponent
        let probe: LayoutProbe
        do {
            probe = try decoder.decode(LayoutProbe.self, from: data)
        } catch {
            throw ReferenceFileError(description: "\(name): not a JSON object: \(error)")
        }
        if probe.ranks != nil && probe.singleProcess != nil {
            let file = try decoder.decode(DistributedReference.self, from: data)
            try file.inputs.validate(name)
            return .distributed(file)
        }
        guard probe.inputs != nil, probe.outputs != nil else {
            throw ReferenceFileError(description: "\(name): neither the single-process layout (inputs, outputs) "
                                     + "nor the distributed one (inputs, single_process, ranks)")
        }
        let file = try decoder.decode(SingleProcessReference.self, from: data)
        try file.inputs.validate(name)
        if file.outputs.presentKeys.isEmpty {
            throw ReferenceFileError(description: "\(name): outputs has none of the known loss keys")
        }
        return .singleProcess(file)
    }
}

/// Where reference files are looked for: the bundled fixtures and, when set, $DTRAIN_REFERENCE_VECTORS.
enum ReferenceFolders {
    static var fixtures: URL? { Bundle.module.url(forResource: "Fixtures", withExtension: nil) }

    static var environment: URL? {
        guard let path = ProcessInfo.processInfo.environment["DTRAIN_REFERENCE_VECTORS"], !path.isEmpty else {
            return nil
        }
        return URL(fileURLWithPath: path, isDirectory: true)
    }

    /// The *.json files of a folder, sorted by name (empty when the folder cannot be listed).
    static func jsonFiles(in folder: URL?) -> [URL] {
        guard let folder,
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.filter { $0.hasSuffix(".json") }.sorted().map { folder.appendingPathComponent($0) }
    }

    /// Every reference file to check.
    static var allFiles: [URL] { jsonFiles(in: fixtures) + jsonFiles(in: environment) }
}
