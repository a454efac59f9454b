// The suites that move hundreds of megabytes or gigabytes (DumpCLILargeTests,
// VanishingMemoryCLITests, FaultInjectionCLITests) are nested in one serialized suite, so
// they run one at a time: a gigabyte dump never steals the CPU, memory bandwidth and page
// cache that the fault-injection attempts were timed with. (The trait is inherited by the
// nested suites; the other suites, which no longer wait on deadlines, run alongside.)

import Testing

@Suite(.serialized) enum HeavyOrTimed {}
