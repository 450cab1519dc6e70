// The few-shot class splits of CIFAR-100 and how `--classes` lists resolve to label values.
//
// CIFAR-FS (Bertinetto, Henriques, Torr & Vedaldi, "Meta-learning with differentiable closed-form solvers", ICLR
// 2019): 64 train / 16 val / 20 test fine classes, the lists of the authors' split files (as shipped with RFS and
// learn2learn); train is the 64 classes in neither of the others.
// FC100 (Oreshkin, Rodríguez & Lacoste, "TADAM", NeurIPS 2018): by superclass, 12 / 4 / 4 superclasses of 5 fine
// classes each (60 / 20 / 20 classes).
// Names resolve to fine label ids through `fine_label_names.txt` of the CIFAR-100 binary distribution when it is
// present in the data folder, else through the standard order below (the order of that file). Superclass
// membership is the table of the CIFAR page (https://www.cs.toronto.edu/~kriz/cifar.html); superclass names may
// likewise be checked against `coarse_label_names.txt`.
import Foundation

/// CIFAR-100's fine class names in label order (the `fine_label_names.txt` of the binary distribution).
public let cifar100FineNames = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
]

/// CIFAR-100's superclasses in coarse label order, each with its five fine classes.
public let cifar100Superclasses: [(name: String, members: [String])] = [
    ("aquatic_mammals", ["beaver", "dolphin", "otter", "seal", "whale"]),
    ("fish", ["aquarium_fish", "flatfish", "ray", "shark", "trout"]),
    ("flowers", ["orchid", "poppy", "rose", "sunflower", "tulip"]),
    ("food_containers", ["bottle", "bowl", "can", "cup", "plate"]),
    ("fruit_and_vegetables", ["apple", "mushroom", "orange", "pear", "sweet_pepper"]),
    ("household_electrical_devices", ["clock", "keyboard", "lamp", "telephone", "television"]),
    ("household_furniture", ["bed", "chair", "couch", "table", "wardrobe"]),
    ("insects", ["bee", "beetle", "butterfly", "caterpillar", "cockroach"]),
    ("large_carnivores", ["bear", "leopard", "lion", "tiger", "wolf"]),
    ("large_man-made_outdoor_things", ["bridge", "castle", "house", "road", "skyscraper"]),
    ("large_natural_outdoor_scenes", ["cloud", "forest", "mountain", "plain", "sea"]),
    ("large_omnivores_and_herbivores", ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"]),
    ("medium_mammals", ["fox", "porcupine", "possum", "raccoon", "skunk"]),
    ("non-insect_invertebrates", ["crab", "lobster", "snail", "spider", "worm"]),
    ("people", ["baby", "boy", "girl", "man", "woman"]),
    ("reptiles", ["crocodile", "dinosaur", "lizard", "snake", "turtle"]),
    ("small_mammals", ["hamster", "mouse", "rabbit", "shrew", "squirrel"]),
    ("trees", ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"]),
    ("vehicles_1", ["bicycle", "bus", "motorcycle", "pickup_truck", "train"]),
    ("vehicles_2", ["lawn_mower", "rocket", "streetcar", "tank", "tractor"]),
]

/// CIFAR-FS's test and validation classes (Bertinetto et al. 2019); train is the other 64.
public let cifarFSTest = ["whale", "poppy", "rose", "sweet_pepper", "telephone", "bed", "table", "wardrobe",
                          "leopard", "plain", "chimpanzee", "fox", "snail", "worm", "baby", "man", "woman", "bicycle",
                          "pickup_truck", "rocket"]
public let cifarFSVal = ["beaver", "otter", "flatfish", "shark", "lamp", "television", "beetle", "butterfly", "sea",
                         "camel", "cattle", "crab", "crocodile", "maple_tree", "motorcycle", "tractor"]

/// FC100's superclasses per split (Oreshkin et al. 2018).
public let fc100Splits: [String: [String]] = [
    "train": ["fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
              "household_furniture", "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "reptiles",
              "trees", "vehicles_1", "vehicles_2"],
    "val": ["large_carnivores", "large_omnivores_and_herbivores", "non-insect_invertebrates", "small_mammals"],
    "test": ["aquatic_mammals", "insects", "medium_mammals", "people"],
]

/// The fine class names of a named split, `cifar-fs:train|val|test` or `fc100:train|val|test`, nil for another name.
public func namedSplitClasses(_ name: String) -> [String]? {
    let parts = name.split(separator: ":").map(String.init)
    guard parts.count == 2 else { return nil }
    switch (parts[0], parts[1]) {
    case ("cifar-fs", "test"): return cifarFSTest
    case ("cifar-fs", "val"): return cifarFSVal
    case ("cifar-fs", "train"):
        let held = Set(cifarFSTest + cifarFSVal)
        return cifar100FineNames.filter { !held.contains($0) }
    case ("fc100", let split):
        guard let supers = fc100Splits[split] else { return nil }
        return supers.flatMap { s in cifar100Superclasses.first { $0.name == s }!.members }
    default: return nil
    }
}

/// The fine names of a CIFAR-100 data folder: `fine_label_names.txt` (in `directory` or
/// `directory/cifar-100-binary`) when present, one name a line, else `cifar100FineNames`.
public func cifar100Names(directory: String) -> [String] {
    for path in [directory + "/fine_label_names.txt", directory + "/cifar-100-binary/fine_label_names.txt"] {
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            if names.count == 100 { return names }
        }
    }
    return cifar100FineNames
}

/// Resolves `--classes`: comma-separated label ids ("0,1,2"), or a named split ("cifar-fs:test", "fc100:val")
/// through `names` (the label order of the data). Returns sorted, distinct ids; throws for an unknown name, an id
/// outside 0..<classes, or an empty list.
public func resolveClasses(_ text: String, names: [String], classes: Int) throws -> [Int32] {
    let ids: [Int]
    if let split = namedSplitClasses(text) {
        guard classes == 100 else {
            throw EvaluationError("--classes \(text) names CIFAR-100 classes; the data has \(classes) classes")
        }
        ids = try split.map { name in
            guard let i = names.firstIndex(of: name) else {
                throw EvaluationError("--classes \(text): class \(name) is not in the data's label names")
            }
            return i
        }
    } else {
        ids = try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let t = part.trimmingCharacters(in: .whitespaces)
            guard let i = Int(t) else {
                throw EvaluationError("--classes: \"\(t)\" is neither a class id nor one of cifar-fs:train|val|test, "
                                      + "fc100:train|val|test")
            }
            return i
        }
    }
    guard !ids.isEmpty else { throw EvaluationError("--classes lists no class") }
    for i in ids where i < 0 || i >= classes {
        throw EvaluationError("--classes: class \(i) is outside 0..<\(classes)")
    }
    guard Set(ids).count == ids.count else { throw EvaluationError("--classes lists a class twice: \(ids)") }
    return ids.sorted().map(Int32.init)
}
