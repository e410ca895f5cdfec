use skillset_runtime::{skillset, task::TextGeneration, Skillset};

#[skillset(family = "bert")]
struct MyBert;

fn main() {
    let _ = MyBert::init_cpu::<TextGeneration>("checkpoint");
}
