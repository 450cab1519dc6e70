import Model
import Tensor
import Testing

// The multiply-adds a training step performs (docs/PERFORMANCE.md, "How `bench` counts FLOPs and memory"): forward,
// every weight gradient, and every input gradient except the encoder's first layer's, which backward skips.
@Suite struct FlopCountTests {
    @Test func mlpCountsByHand() {
        let net = Network(config: NetworkConfig(kind: .mlp), maxBatch: 1, seed: 0)
        // Layers (I→O): 784→512, 512→512, 512→128, head 128→10; one multiply-add per weight per sample.
        let forward = 784 * 512 + 512 * 512 + 512 * 128 + 128 * 10           // 730 368
        let weightGradients = forward                                           // dW = dYᵀ X, same shapes
        let inputGradients = 512 * 512 + 512 * 128 + 128 * 10                   // dX = dY W, not for 784→512
        #expect(forward == 730_368)
        #expect(net.forwardMultiplyAddsPerSample == forward)
        #expect(net.trainingMultiplyAddsPerSample == forward + weightGradients + inputGradients)
        #expect(net.trainingMultiplyAddsPerSample == 1_789_696)
        // Per image (two views) with the CLCE loss gemms at batch 256 (512 views, D 128): 6·512²·128 / 256 FLOPs.
        let perImage = 2 * net.trainingFlopsPerSample + 6 * 512 * 512 * 128 / 256
        #expect(perImage == 7_945_216)                                          // the issue's "about 7.95 MFLOP"
    }

    @Test func cnnCountsByHand() {
        let net = Network(config: NetworkConfig(kind: .cnn), maxBatch: 1, seed: 0)
        // 3×3 convs, O·(C·9)·(H·W) multiply-adds each: 28×28 (784 pixels), then 14×14 (196) after the pool.
        let conv1 = 32 * (1 * 9) * 784                                          //   225 792
        let conv2 = 32 * (32 * 9) * 784                                         // 7 225 344
        let conv3 = 64 * (32 * 9) * 196                                         // 3 612 672
        let conv4 = 64 * (64 * 9) * 196                                         // 7 225 344
        let linears = 3136 * 256 + 256 * 128 + 128 * 10                         //   836 864 (head included)
        let forward = conv1 + conv2 + conv3 + conv4 + linears
        #expect(forward == 19_126_016)
        #expect(net.forwardMultiplyAddsPerSample == forward)
        // Weight gradients of every layer; input gradients of every layer but conv1 (it reads the image).
        let training = forward + forward + (forward - conv1)
        #expect(training == 57_152_256)
        #expect(net.trainingMultiplyAddsPerSample == training)
        #expect(net.trainingFlopsPerSample == 2 * training)
        #expect(net.flopsPerSample == 2 * forward)
    }

    @Test func resnet20SkipsOnlyTheStemInputGradient() {
        let net = Network(config: NetworkConfig(kind: .resnet20), maxBatch: 1, seed: 0)
        guard case .resnet(let e) = net.body else { Issue.record("resnet20 is not a ResNet"); return }
        let skipped = e.stemConv.multiplyAddsPerSample
        #expect(skipped == 16 * 9 * 784)                                        // 3×3, 1→16 channels, 28×28
        #expect(net.trainingMultiplyAddsPerSample == 3 * net.forwardMultiplyAddsPerSample - skipped)
    }

    @Test func vitTinySkipsOnlyThePatchEmbeddingInputGradient() {
        let net = Network(config: NetworkConfig(kind: .vitTiny), maxBatch: 1, seed: 0)
        guard case .vit(let e) = net.body else { Issue.record("vit-tiny is not a ViT"); return }
        let skipped = e.patchEmbedding.multiplyAddsPerSample
        #expect(skipped == 49 * 16 * 64)                                        // 7×7 patches of 4×4×1 → D 64
        // Attention: Q Kᵀ and P V forward (2·T²·D), four products of the same size backward (4·T²·D).
        let attention = e.blocks[0].attention
        #expect(attention.multiplyAddsPerSample == 2 * 50 * 50 * 64)
        #expect(attention.backwardMultiplyAddsPerSample == 2 * attention.multiplyAddsPerSample)
        #expect(net.trainingMultiplyAddsPerSample == 3 * net.forwardMultiplyAddsPerSample - skipped)
    }

    @Test func arenaBytesNameEveryBuffer() {
        for kind in [EncoderKind.mlp, .cnn, .resnet20, .vitTiny] {
            let small = Network(config: NetworkConfig(kind: kind), maxBatch: 2, seed: 0)
            let large = Network(config: NetworkConfig(kind: kind), maxBatch: 4, seed: 0)
            let a = small.arenaBytes, b = large.arenaBytes
            #expect(Set(a.map(\.name)).count == a.count, "\(kind): names unique")
            #expect(a.first { $0.name == "parameters" }?.bytes == 4 * small.params.count)
            #expect(a.first { $0.name == "gradients" }?.bytes == 4 * small.grads.count)
            let acts = { (x: [(name: String, bytes: Int)]) in x.first { $0.name == "encoder activations" }!.bytes }
            // Activations are per sample: twice the batch, about twice the bytes (64-byte alignment aside).
            #expect(abs(acts(b) - 2 * acts(a)) <= 64 * 200, "\(kind): \(acts(a)) → \(acts(b))")
        }
    }
}
