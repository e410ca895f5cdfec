use skillset_runtime::skillset;

#[skillset(family = "bert")]
enum NotAStruct {
    A,
}

fn main() {}
