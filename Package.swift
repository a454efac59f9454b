// swift-tools-version: 6.1
import PackageDescription

/// Fixture processes: small C programs the tests and `vmio-ptrace demo` run as targets.
let fixtures = [
    "holder", "many-maps", "threads", "unmapper", "exiter", "deep-stack", "random", "truncated", "seccomp-deny",
    "states", "execer", "frames",
]

/// C programs of `vmio-bench` (Benchmarks/NAME/main.c), always built with -O2: the
/// baselines, and bench-spawn, which runs a command and reports its time and peak memory.
let benchmarkPrograms = ["bench-c-read", "bench-c-dump", "bench-c-search", "bench-c-scatter", "bench-spawn"]

let package = Package(
    name: "vmio-ptrace",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vmio-ptrace", targets: ["vmio-ptrace"]),
        .library(name: "VmIO", targets: ["VmIO"]),
        .library(name: "VmioPtrace", targets: ["VmioPtrace"]),
        // The commands shared by the command line and sessions; a product for the fuzz package.
        .library(name: "VmioCommands", targets: ["VmioCommands"]),
        // The session language; a product so the fuzz package (Fuzz/) can reach its parser.
        .library(name: "VmioScript", targets: ["VmioScript"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
    ],
    targets: [
        // Thin C shim: variadic ptrace, process_vm_readv/writev (need _GNU_SOURCE),
        // and an async-signal-safe detach for the tool's signal handlers.
        .target(name: "CVmio"),
        // Thin C shim over libunwind-ptrace (its entry points are macros) and the libelf
        // headers; libunwind and libelf are Debian packages (scripts/setup installs them).
        .target(
            name: "CUnwind",
            linkerSettings: [
                .linkedLibrary("unwind-ptrace"), .linkedLibrary("unwind-generic"), .linkedLibrary("unwind"),
                .linkedLibrary("lzma"), .linkedLibrary("elf"),
            ]
        ),
        // The model: no system calls.
        .target(name: "VmIO"),
        // The Linux layer.
        .target(
            name: "VmioPtrace",
            dependencies: [
                "VmIO", "CVmio", "CUnwind",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Every command: its options (the one definition of its syntax), its output and its
        // exit status; shared by the command line and sessions.
        .target(
            name: "VmioCommands",
            dependencies: ["VmIO", "VmioPtrace", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The session language.
        .target(name: "VmioScript", dependencies: ["VmIO", "VmioPtrace", "VmioCommands"]),
        // The command line: one file a subcommand.
        .executableTarget(
            name: "vmio-ptrace",
            dependencies: [
                "VmIO", "VmioPtrace", "VmioCommands", "VmioScript",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "VmIOTests",
            dependencies: ["VmIO", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "VmioPtraceTests", dependencies: ["VmIO", "VmioPtrace", "CVmio", "VmioTestSupport"]),
        .testTarget(name: "VmioScriptTests", dependencies: ["VmioScript", "VmioCommands"]),
        .testTarget(name: "CLITests", dependencies: ["VmIO", "VmioPtrace", "VmioTestSupport"]),
        // Launches the fixture processes for the tests.
        .target(name: "VmioTestSupport", path: "Tests/Support"),
    ]
        + fixtures.map { name in
            .executableTarget(name: "vmio-fixture-\(name)", path: "fixtures/\(name)")
        }
        + benchmarkPrograms.map { name in
            .executableTarget(name: name, path: "Benchmarks/\(name)", cSettings: [.unsafeFlags(["-O2"])])
        } + [
            // Benchmarks against the C baselines, gdb and scanmem: `scripts/bench` (not part of the tests).
            .executableTarget(name: "vmio-bench", dependencies: ["VmIO", "VmioPtrace"], path: "Benchmarks/vmio-bench"),
            // libunwind's PTRACE_PEEKDATA accessors against the cached process_vm_readv ones (issue 5).
            .executableTarget(
                name: "vmio-bench-unwind", dependencies: ["VmIO", "VmioPtrace"], path: "Benchmarks/vmio-bench-unwind"),
        ]
)
