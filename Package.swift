// swift-tools-version: 6.1
import PackageDescription

// Linux only: the tool works through process_vm_readv, ptrace and /proc.
#if !os(Linux)
    #error("vmio-ptrace builds on Linux only (process_vm_readv, ptrace, /proc)")
#endif

/// Fixture processes: small C programs the tests and `vmio-ptrace demo` run as targets.
let fixtures = [
    "holder", "many-maps", "threads", "unmapper", "exiter", "deep-stack", "random", "truncated", "seccomp-deny",
    "states", "execer", "frames", "regions", "core-maps", "mapping-churn", "changer", "traps", "leader-exit",
]

/// C programs of `vmio-bench` (Benchmarks/NAME/main.c), always built with -O2: the
/// baselines, and bench-spawn, which runs a command and reports its time and peak memory.
let benchmarkPrograms = [
    "bench-c-read", "bench-c-dump", "bench-c-search", "bench-c-scatter", "bench-spawn", "bench-c-trap", "bench-c-diff",
]

/// The tests themselves are compiled without optimization even in a release build (the
/// sanitized suites build the code under test optimized, scripts/sanitize): Swift 6.3's
/// optimizer crashes on some of them ("Found ownership error?!", a typed error caught by
/// pattern; README.md, "Known issues").
let testsUnoptimized: [SwiftSetting] = [.unsafeFlags(["-Onone"], .when(configuration: .release))]

let package = Package(
    name: "vmio-ptrace",
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
        // DocC for the library products: `swift package generate-documentation` (scripts/docs).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Thin C shim: variadic ptrace, process_vm_readv/writev (need _GNU_SOURCE),
        // and an async-signal-safe detach for the tool's signal handlers.
        .target(name: "CVmio"),
        // Thin C shim over elfutils' libdwfl unwinder (its callbacks are C function pointers),
        // the C++ runtime's demangler and the libelf headers; libdw and libelf are Debian
        // packages (scripts/setup installs libdw-dev and libelf-dev).
        .target(
            name: "CUnwind",
            linkerSettings: [.linkedLibrary("dw"), .linkedLibrary("elf"), .linkedLibrary("stdc++")]
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
            dependencies: [
                "VmIO", "VmioPtrace", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The session language.
        .target(name: "VmioScript", dependencies: ["VmIO", "VmioPtrace", "VmioCommands"]),
        // The one fixture client: starts a fixture program, reads its facts up to `ready`, talks
        // to it and ends it; for the demo, the benchmarks and the tests (no product uses it).
        .target(name: "VmioFixtures", dependencies: ["VmIO"]),
        // The command line: one file a subcommand.
        .executableTarget(
            name: "vmio-ptrace",
            dependencies: [
                "VmIO", "VmioPtrace", "VmioCommands", "VmioScript", "VmioFixtures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "VmIOTests",
            dependencies: [
                "VmIO", "VmioTestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: testsUnoptimized),
        .testTarget(
            name: "VmioPtraceTests",
            dependencies: [
                "VmIO", "VmioPtrace", "CVmio", "VmioFixtures", "VmioTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: testsUnoptimized),
        .testTarget(
            name: "VmioScriptTests", dependencies: ["VmioScript", "VmioCommands", "VmioTestSupport"],
            swiftSettings: testsUnoptimized),
        .testTarget(
            name: "CLITests", dependencies: ["VmIO", "VmioPtrace", "VmioFixtures", "VmioTestSupport"],
            swiftSettings: testsUnoptimized),
        // What the tests read of /proc about a fixture, and their seeded generator.
        .target(name: "VmioTestSupport", path: "Tests/Support"),
    ]
        + fixtures.map { name in
            .executableTarget(name: "vmio-fixture-\(name)", path: "fixtures/\(name)")
        } + [
            // Call frame information only in .debug_frame, and no frame pointer (backtrace tests).
            .executableTarget(
                name: "vmio-fixture-debug-frame", path: "fixtures/debug-frame",
                cSettings: [
                    .unsafeFlags([
                        "-g", "-O1", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fomit-frame-pointer",
                    ])
                ]),
            // C++ frames with mangled names (backtrace tests).
            .executableTarget(name: "vmio-fixture-cxx-names", path: "fixtures/cxx-names"),
        ]
        + benchmarkPrograms.map { name in
            .executableTarget(name: name, path: "Benchmarks/\(name)", cSettings: [.unsafeFlags(["-O2"])])
        } + [
            // Benchmarks against the C baselines, gdb and scanmem: `scripts/bench` (not part of the tests).
            .executableTarget(
                name: "vmio-bench", dependencies: ["VmIO", "VmioPtrace", "VmioFixtures"], path: "Benchmarks/vmio-bench"),
            // The unwinder's PTRACE_PEEKDATA memory reader against the cached process_vm_readv one (issue 5).
            .executableTarget(
                name: "vmio-bench-unwind", dependencies: ["VmIO", "VmioPtrace", "VmioFixtures"],
                path: "Benchmarks/vmio-bench-unwind"),
            // backtrace and regs of 1,000 threads against gdb (issue 19).
            .executableTarget(
                name: "vmio-bench-threads", dependencies: ["VmioFixtures"], path: "Benchmarks/vmio-bench-threads"),
        ]
)
