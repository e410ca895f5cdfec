//! Fill the mask with the generated `Bert` skillset.
//!
//!     cargo run --example fill_mask -- tests/fixtures/bert-tiny-mlm "Paris is the [MASK] of France."

use skillsets::{task::FillMask, Bert, Skillset};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checkpoint = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/bert-tiny-mlm".into());
    let text = args
        .next()
        .unwrap_or_else(|| "Paris is the [MASK] of France.".into());
    let fill = Bert::init_cpu::<FillMask>(&checkpoint)?;
    for p in fill.call(&text)? {
        println!("{:>8.4}  {:<12} {}", p.score, p.token_str, p.sequence);
    }
    Ok(())
}
