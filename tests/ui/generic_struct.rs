use skillset_runtime::skillset;

#[skillset(family = "bert")]
struct Generic<T>(T);

fn main() {}
