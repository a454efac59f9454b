import ArgumentParser
import VmioCommands

struct Watch: ParsableCommand {
    static let configuration = WatchCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: WatchCommand

    func run() throws { try target.run(command) }
}
