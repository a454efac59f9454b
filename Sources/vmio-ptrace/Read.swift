import ArgumentParser
import VmioCommands

struct Read: ParsableCommand {
    static let configuration = ReadCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: ReadCommand

    func run() throws { try target.run(command) }
}
