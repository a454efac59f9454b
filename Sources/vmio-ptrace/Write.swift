import ArgumentParser
import VmioCommands

struct Write: ParsableCommand {
    static let configuration = WriteCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: WriteCommand

    func run() throws { try target.run(command) }
}
