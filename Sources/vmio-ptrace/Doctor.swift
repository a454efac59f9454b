import ArgumentParser
import VmioCommands

struct Doctor: ParsableCommand {
    static let configuration = DoctorCommand.configuration

    @OptionGroup var target: TargetOptions

    @OptionGroup var command: DoctorCommand

    func run() throws { try target.run(command) }
}
