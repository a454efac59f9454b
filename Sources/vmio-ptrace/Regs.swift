import ArgumentParser
import VmioCommands

struct Regs: ParsableCommand {
    static let configuration = RegsCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: RegsCommand

    func run() throws { try target.run(command) }
}
