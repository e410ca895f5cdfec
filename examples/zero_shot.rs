//! zero-shot-image-classification with a `#[skillset(family = "clip")]` struct (CLIP
//! and SigLIP checkpoints alike), and the image and text embeddings behind it.
//!
//!     cargo run --example zero_shot -- tests/fixtures/clip-tiny tests/fixtures/media/gradient.png "a cat,a dog,a red car"

use skillsets::runtime::media::RgbImage;
use skillsets::{skillset, task::ZeroShotImageClassification, Skillset};

#[skillset(family = "clip")]
struct DualEncoder;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checkpoint = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/clip-tiny".into());
    let image = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/media/gradient.png".into());
    let labels = args
        .next()
        .unwrap_or_else(|| "a cat,a dog,a red car".into());
    let labels: Vec<&str> = labels.split(',').map(str::trim).collect();
    let zero_shot = DualEncoder::init_cpu::<ZeroShotImageClassification>(&checkpoint)?;
    println!("{image}");
    for l in zero_shot.call(&image, &labels)? {
        println!("  {:.4}  {}", l.score, l.label);
    }
    let img = RgbImage::open(image.as_ref())?;
    let image_vec = &zero_shot.image_embeddings(std::slice::from_ref(&img))?[0];
    let text_vecs = zero_shot.text_embeddings(&labels)?;
    println!(
        "  embeddings: image {} dims, {} texts of {} dims",
        image_vec.len(),
        text_vecs.len(),
        text_vecs[0].len()
    );
    Ok(())
}
