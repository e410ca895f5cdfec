use skillsets::{task::TextGeneration, Mamba, Skillset};

fn main() {
    // No skillset family runs mamba yet, so it has no task at all.
    let _ = Mamba::init_cpu::<TextGeneration>("checkpoint");
}
