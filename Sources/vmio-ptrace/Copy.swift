import ArgumentParser
import VmioCommands

struct Copy: ParsableCommand {
    static let configuration = CopyCommand.configuration

    @OptionGroup var command: CopyCommand

    @OptionGroup var output: OutputOptions

    func run() throws { try execute(command, pid: nil, json: output.json) }
}
