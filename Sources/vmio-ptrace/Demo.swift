import ArgumentParser
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A self-contained tour on fixture processes.")
    func run() throws {}
}
