// swift-tools-version: 6.1
// libFuzzer targets for the parsers of vmio-ptrace: one executable a parser, built with
// `-sanitize=fuzzer,address` by scripts/fuzz (never by the main package's build or tests).
import PackageDescription

let fuzzers: [(name: String, products: [String])] = [
    ("fuzz-maps", ["VmIO"]),
    ("fuzz-address", ["VmIO"]),
    ("fuzz-session", ["VmIO", "VmioScript", "VmioCommands"]),
    ("fuzz-manifest", ["VmIO", "VmioPtrace"]),
    ("fuzz-pattern", ["VmIO", "VmioPtrace", "VmioCommands"]),
]

let package = Package(
    name: "vmio-fuzz",
    dependencies: [.package(name: "vmio-ptrace", path: "..")],
    targets: fuzzers.map { f in
        .executableTarget(
            name: f.name,
            dependencies: f.products.map { .product(name: $0, package: "vmio-ptrace") },
            // No main: libFuzzer supplies it and calls LLVMFuzzerTestOneInput.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    }
)
