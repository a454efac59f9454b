import ArgumentParser
import VmioCommands

struct Maps: ParsableCommand {
    static let configuration = MapsCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: MapsCommand

    func run() throws { try target.run(command) }
}
