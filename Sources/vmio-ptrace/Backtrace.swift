import ArgumentParser
import VmioCommands

struct Backtrace: ParsableCommand {
    static let configuration = BacktraceCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: BacktraceCommand

    func run() throws { try target.run(command) }
}
