import ArgumentParser

@main
struct DTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dtrain", abstract: "Distributed CLCE trainer.")
}
