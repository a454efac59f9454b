// vmio-bench: measures the library and the CLI against C baselines, gdb and scanmem
// in one run, and prints each figure as a ratio against a baseline measured in the
// same invocation (see README.md, "Benchmarks"). Not part of the test suite.
//
//   vmio-bench [--reps N] [--mib N] [--seed N] [--maps N] [--tmp DIR] [--no-gdb] [--no-scanmem]
//              [--only 1,2,3,4,6,7,8,9] [--hex-mib N]
//
// Every time is the median of N repetitions (default 5), taken after one warm-up
// round that is not counted; the measurements of one item are interleaved
// (ours, baseline, ours, ...) in a rotating order, so load from other processes
// and page-cache state fall on both sides alike. ratio = baseline time / our time
// (above 1: we are faster); for memory, baseline peak / our peak.
//
// Files: Harness.swift (clocks, statistics, child processes, interleaving), Table.swift
// (rows and formats), Options.swift, Bench.swift (the fixtures and the order of the items),
// one file an item (BulkRead, Dump, ScatteredReads, Search, Core, HexDump, Sessions, ScanAndDiff),
// Baselines.swift (what the C baselines, gdb and scanmem are asked and what they answer).

var bench = Bench(Options(Array(CommandLine.arguments.dropFirst())))
bench.runAll()
