//! `skillset`: the generator and runner CLI (see `skillset --help`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    skillsets::cli::main_with(skillsets::cli::Cli::parse())
}
