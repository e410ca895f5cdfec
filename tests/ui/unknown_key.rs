use skillset_runtime::skillset;

#[skillset(famly = "bert")]
struct Typo;

fn main() {}
