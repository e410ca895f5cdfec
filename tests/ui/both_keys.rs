use skillset_runtime::skillset;

#[skillset(family = "bert", model_type = "roberta")]
struct Both;

fn main() {}
