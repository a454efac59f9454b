import ArgumentParser
import VmioCommands

struct Core: ParsableCommand {
    static let configuration = CoreCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: CoreCommand

    func run() throws { try target.run(command) }
}
