use skillset_runtime::skillset;

#[skillset(family = 3)]
struct Number;

#[skillset(model_type = bert)]
struct Path;

#[skillset(family)]
struct NoValue;

fn main() {}
