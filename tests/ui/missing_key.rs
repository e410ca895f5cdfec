use skillset_runtime::skillset;

#[skillset]
struct NoKey;

#[skillset()]
struct EmptyParens;

fn main() {}
