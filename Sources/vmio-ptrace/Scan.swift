import ArgumentParser
import VmioCommands

struct Scan: ParsableCommand {
    static let configuration = ScanCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: ScanCommand

    func run() throws { try target.run(command) }
}
