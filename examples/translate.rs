//! text2text-generation with the generated `T5` skillset: one input, then a batch.
//!
//!     cargo run --example translate -- tests/fixtures/t5-tiny "translate English to German: The house is wonderful."

use skillsets::{task::Text2TextGeneration, Skillset, T5};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checkpoint = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/t5-tiny".into());
    let input = args
        .next()
        .unwrap_or_else(|| "translate English to German: The house is wonderful.".into());
    let t5 = T5::init_cpu::<Text2TextGeneration>(&checkpoint)?;
    let mut options = t5.options();
    options.max_new_tokens = 16;
    let out = t5.call_with(&input, &options)?;
    println!(
        "{input}\n  -> {} ({} tokens)",
        out.generated_text,
        out.token_ids.len()
    );
    for g in t5.call_batch(
        &[
            "summarize: The quick brown fox jumps over the lazy dog.",
            "Le café est délicieux.",
        ],
        &options,
    )? {
        println!("  -> {}", g.generated_text);
    }
    Ok(())
}
