import ArgumentParser
import VmioCommands

struct Diff: ParsableCommand {
    static let configuration = DiffCommand.configuration

    @OptionGroup var command: DiffCommand

    @OptionGroup var output: OutputOptions

    func run() throws { try execute(command, pid: nil, json: output.json) }
}
