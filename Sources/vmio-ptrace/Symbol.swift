import ArgumentParser
import VmioCommands

struct Symbol: ParsableCommand {
    static let configuration = SymbolCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: SymbolCommand

    func run() throws { try target.run(command) }
}
