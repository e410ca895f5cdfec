//! `skillset`: the generator and runner CLI (see `skillset --help`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Die quietly on a closed pipe (`skillset --list-tasks | head`) like other Unix
    // tools, instead of panicking in `println!`.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Keep freed tensor buffers in the heap for the next forward pass instead of
    // returning them to the kernel and faulting fresh zeroed pages in again: with
    // glibc's defaults, page faults were ~10% of a MiniLM batch (perf, BENCHMARKS.md).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any allocation
    // that depends on them, from the only thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    skillsets::cli::main_with(skillsets::cli::Cli::parse())
}
