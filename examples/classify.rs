//! Text and token classification, loading whichever task the caller names through the
//! untyped `Pipeline` (what `skillset run` uses).
//!
//!     cargo run --example classify -- tests/fixtures/bert-tiny-cls text-classification "I love it"

use skillsets::runtime::pipeline::RunOptions;
use skillsets::runtime::{LoadOptions, Pipeline, Scope};
use skillsets::Task;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .map(String::as_str)
        .unwrap_or("tests/fixtures/bert-tiny-cls");
    let task: Task = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("text-classification")
        .parse()?;
    let inputs: Vec<String> = if args.len() > 2 {
        args[2..].to_vec()
    } else {
        vec!["I love this movie!".into()]
    };
    let model_type = skillsets::runtime::Checkpoint::open(dir.as_ref())?.model_type;
    let info = skillsets::lookup(&model_type)
        .ok_or_else(|| anyhow::anyhow!("unknown model type {model_type}"))?;
    let pipeline = Pipeline::load_for_scope(
        Scope::ModelType(info),
        dir.as_ref(),
        task,
        &LoadOptions::default(),
    )?;
    for (input, output) in inputs
        .iter()
        .zip(pipeline.run_json(&inputs, &RunOptions::default())?)
    {
        println!("{input}\n  {output}");
    }
    Ok(())
}
