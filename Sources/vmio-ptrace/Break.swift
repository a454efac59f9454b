import ArgumentParser
import VmioCommands

struct Break: ParsableCommand {
    static let configuration = BreakCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: BreakCommand

    func run() throws { try target.run(command) }
}
