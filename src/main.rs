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
    skillsets::cli::main_with(skillsets::cli::Cli::parse())
}
