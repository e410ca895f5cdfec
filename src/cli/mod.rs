//! The `skillset` command line: the Python generator's flags (`--list-families`,
//! `--model`, `--all`, `--validate`, `--run-tests`, ...) plus the `run` subcommand.
//!
//! Exit status: 0 on success, 1 when something failed (a validation, a conformance
//! check, a model run), 2 for a usage error such as an unknown name.

/// `println!` that never panics: when standard output cannot be written (a full disk,
/// `> /dev/full`), the error is said on stderr and the process exits with status 1.
/// (A closed pipe ends the process quietly: SIGPIPE has its default action.)
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::stdout_failed(e);
        }
    }};
}

/// `eprintln!` that never panics: a message that cannot be written is dropped (there
/// is nowhere left to say so).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod bench;
mod generate;
mod run;
mod run_tests;

/// Standard output failed: say so on stderr (if it can be written) and exit 1.
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr().lock(),
        "error: cannot write to standard output: {e}"
    );
    std::process::exit(1)
}

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use skillset_codegen::Metadata;

pub use bench::BenchArgs;
pub use run::RunArgs;

/// Generate, validate, test and run typed skillsets for HF transformers model types.
#[derive(Debug, Parser)]
#[command(
    name = "skillset",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
        skillset --list-families\n  \
        skillset --model bert --output-dir generated_skillsets\n  \
        skillset --all --max-workers 8\n  \
        skillset --validate bert\n  \
        skillset --model bert --run-tests\n  \
        skillset run --model-dir tests/fixtures/bert-tiny-mlm --task fill-mask --input 'Paris is the [MASK] of France.' --json"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

/// The generator's flags (the Python tool's command lines).
#[derive(Debug, Args, Default)]
pub struct GeneratorArgs {
    /// List the skillset families with the model types and tasks each runs.
    #[arg(long)]
    pub list_families: bool,
    /// List the tasks with how many model types transformers serves and skillsets runs.
    #[arg(long)]
    pub list_tasks: bool,
    /// Print the registry as JSON: each family's description, modality, base classes
    /// and the architecture classes it runs per task (what scripts/gen_model_types.py
    /// reads to write model_types.json).
    #[arg(long)]
    pub registry: bool,
    /// Generate the skillset of a model type (repeatable).
    #[arg(long, value_name = "MODEL_TYPE")]
    pub model: Vec<String>,
    /// Generate the skillsets of every model type of a family (repeatable).
    #[arg(long, value_name = "FAMILY")]
    pub family: Vec<String>,
    /// Generate the skillsets of every model type transformers serves a task with
    /// (repeatable).
    #[arg(long, value_name = "TASK")]
    pub task: Vec<String>,
    /// Generate the skillsets of all model types.
    #[arg(long)]
    pub all: bool,
    /// Worker threads for generation (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub max_workers: Option<usize>,
    /// Where generated files go.
    #[arg(long, value_name = "DIR", default_value = "generated_skillsets")]
    pub output_dir: PathBuf,
    /// Overwrite generated files that exist (otherwise they are kept).
    #[arg(long)]
    pub force: bool,
    /// Check a generated file's structure (repeatable); exits 1 when one fails.
    #[arg(long, value_name = "MODEL_TYPE")]
    pub validate: Vec<String>,
    /// Run the conformance checks of the selected model types on every backend this
    /// build and machine have, record the results, and (re)generate their files from
    /// them.
    #[arg(long)]
    pub run_tests: bool,
    /// The results file `--run-tests` writes and generation reads
    /// [default: OUTPUT_DIR/backend_results.json].
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Where `--run-tests` finds fixtures (checkpoints with transformers' outputs).
    #[arg(long, value_name = "DIR", default_value = "tests/fixtures")]
    pub fixtures: PathBuf,
    /// dtypes `--run-tests` checks (comma-separated).
    #[arg(
        long,
        value_name = "DTYPES",
        default_value = "f32",
        value_delimiter = ','
    )]
    pub dtypes: Vec<String>,
    /// Copy the runs of `--backends` from FILE (another `--run-tests` results file, e.g.
    /// a GPU session's) into the results file; the other backends' runs stay.
    #[arg(long, value_name = "FILE")]
    pub merge_results: Option<PathBuf>,
    /// Native backends `--run-tests` runs (comma-separated: cpu, cuda, metal)
    /// [default: every one this build has]. The others keep their recorded results.
    #[arg(long, value_name = "BACKENDS", value_delimiter = ',')]
    pub backends: Vec<String>,
    /// Generate from this metadata file instead of the model_types.json built in.
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Log what happens (tracing at debug level; RUST_LOG overrides).
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a checkpoint on inputs and print the outputs in pipeline() schema.
    Run(Box<RunArgs>),
    /// Time a task's handler on a synthetic batch (median of timed iterations).
    Bench(BenchArgs),
}

/// A failure with its exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::failed(e.to_string())
    }
}

/// Run the CLI on parsed arguments; returns the process exit code.
pub fn main_with(cli: Cli) -> ExitCode {
    init_tracing(match &cli.command {
        Some(Command::Run(r)) => r.verbose,
        Some(Command::Bench(_)) => false,
        None => cli.generator.verbose,
    });
    let result = match cli.command {
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Bench(args)) => bench::bench(&args),
        None => generator(&cli.generator),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            for line in f.message.lines() {
                errln!(
                    "{}",
                    if line.starts_with("error") || line.starts_with(' ') {
                        line.to_string()
                    } else {
                        format!("error: {line}")
                    }
                );
            }
            ExitCode::from(f.code)
        }
    }
}

fn init_tracing(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The metadata compiled into this binary.
pub fn metadata() -> Result<Metadata, Failure> {
    skillset_codegen::parse_metadata(crate::MODEL_TYPES_JSON, "model_types.json")
        .map_err(|e| Failure::failed(e.to_string()))
}

/// The metadata the generator works from: `--metadata FILE`, else the built-in copy.
fn generator_metadata(args: &GeneratorArgs) -> Result<Metadata, Failure> {
    match &args.metadata {
        None => metadata(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?;
            let meta = skillset_codegen::parse_metadata(&text, &path.display().to_string())
                .map_err(|e| Failure::failed(e.to_string()))?;
            tracing::debug!(
                "read {} model types from {}",
                meta.model_types.len(),
                path.display()
            );
            Ok(meta)
        }
    }
}

fn generator(args: &GeneratorArgs) -> Result<ExitCode, Failure> {
    if args.registry {
        let text = serde_json::to_string_pretty(&skillset_codegen::registry::to_json())
            .expect("the registry serializes");
        outln!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let meta = generator_metadata(args)?;
    let selecting =
        !args.model.is_empty() || !args.family.is_empty() || !args.task.is_empty() || args.all;
    if args.list_families {
        generate::list_families(&meta, args)?;
    }
    if args.list_tasks {
        generate::list_tasks(&meta, args)?;
    }
    let mut code = ExitCode::SUCCESS;
    if selecting {
        let selected = generate::select(&meta, args)?;
        if args.run_tests {
            code = run_tests::run_tests(&meta, &selected, args)?;
        }
        generate::generate(&meta, &selected, args)?;
    } else if args.run_tests {
        return Err(Failure::usage(
            "--run-tests needs model types: add --model M, --family F, --task T or --all",
        ));
    }
    if let Some(from) = &args.merge_results {
        run_tests::merge_results(from, args)?;
    }
    if !args.validate.is_empty() {
        let v = generate::validate(&meta, args)?;
        if v != ExitCode::SUCCESS {
            code = v;
        }
    }
    if !selecting
        && !args.list_families
        && !args.list_tasks
        && args.validate.is_empty()
        && args.merge_results.is_none()
    {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let _ = cmd.print_help();
        return Ok(ExitCode::from(2));
    }
    Ok(code)
}
