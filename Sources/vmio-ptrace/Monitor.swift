import ArgumentParser
import VmioCommands

struct Monitor: ParsableCommand {
    static let configuration = MonitorCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: MonitorCommand

    func run() throws { try target.run(command) }
}
