use skillsets::{task::ImageClassification, Bert, Skillset};

fn main() {
    // BERT is a text encoder: no image-classification.
    let _ = Bert::init_cpu::<ImageClassification>("checkpoint");
}
