//! Stream a continuation with the generated `Llama` skillset, then sample three more.
//!
//!     cargo run --example generate -- tests/fixtures/llama-tiny "Paris is the capital of"

use std::io::Write;
use std::ops::ControlFlow;

use skillsets::{task::TextGeneration, Llama, Skillset};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checkpoint = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/llama-tiny".into());
    let prompt = args
        .next()
        .unwrap_or_else(|| "Paris is the capital of".into());
    let generate = Llama::init_cpu::<TextGeneration>(&checkpoint)?;

    let mut greedy = generate.options();
    greedy.max_new_tokens = 16;
    print!("greedy: {prompt}");
    generate.stream(&prompt, &greedy, |token| {
        print!("{}", token.text);
        let _ = std::io::stdout().flush();
        ControlFlow::Continue(())
    })?;
    println!();

    for seed in 0..3 {
        let mut sampled = greedy.clone().sampling();
        sampled.temperature = 0.8;
        sampled.seed = seed;
        println!(
            "seed {seed}: {}",
            generate.call_with(&prompt, &sampled)?.generated_text
        );
    }
    Ok(())
}
