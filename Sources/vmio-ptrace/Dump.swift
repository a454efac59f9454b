import ArgumentParser
import VmioCommands

struct Dump: ParsableCommand {
    static let configuration = DumpCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: DumpCommand

    func run() throws { try target.run(command) }
}
