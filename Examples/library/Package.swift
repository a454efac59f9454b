// swift-tools-version: 6.1
// Programs that use vmio-ptrace's library products as a package of their own would: by
// path, through the products only. Each is built and run against a fixture by
// Tests/CLITests/LibraryExamplesTests.swift, and README.md's library snippets are these
// files, verbatim. One package with one executable each, so that the tests resolve and
// build vmio-ptrace's modules once (scratch path .build-examples). The tests also check that
// each imports only the products listed here (and the system's modules).
import PackageDescription

let examples: [(name: String, products: [String])] = [
    ("read-range", ["VmIO", "VmioPtrace"]),
    ("copy-between", ["VmIO", "VmioPtrace"]),
    ("stream-region", ["VmIO", "VmioPtrace"]),
    ("unwind-thread", ["VmioPtrace"]),
    ("run-session", ["VmIO", "VmioPtrace", "VmioScript"]),
]

let package = Package(
    name: "vmio-library-examples",
    dependencies: [.package(name: "vmio-ptrace", path: "../..")],
    targets: examples.map { example in
        // A member (`status.rawValue`) counts only from a module imported here, so an example
        // that builds needs no module but the products it lists.
        .executableTarget(
            name: example.name, dependencies: example.products.map { .product(name: $0, package: "vmio-ptrace") },
            swiftSettings: [.enableUpcomingFeature("MemberImportVisibility")])
    }
)
