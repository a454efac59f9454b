import ArgumentParser
import VmioCommands

struct Restore: ParsableCommand {
    static let configuration = RestoreCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: RestoreCommand

    func run() throws { try target.run(command) }
}
