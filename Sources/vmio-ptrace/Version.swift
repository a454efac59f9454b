/// The version of vmio-ptrace: the one place it is written. `vmio-ptrace --version` prints
/// it; scripts/install stamps it into the installed man page and scripts/package names the
/// Debian package after it (both ask the built binary).
let vmioPtraceVersion = "0.1.0"
