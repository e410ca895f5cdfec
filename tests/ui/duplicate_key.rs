use skillset_runtime::skillset;

#[skillset(family = "bert", family = "bert")]
struct Twice;

fn main() {}
