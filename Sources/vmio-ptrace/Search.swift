import ArgumentParser
import VmioCommands

struct Search: ParsableCommand {
    static let configuration = SearchCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: SearchCommand

    func run() throws { try target.run(command) }
}
