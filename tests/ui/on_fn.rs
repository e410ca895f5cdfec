use skillset_runtime::skillset;

#[skillset(family = "bert")]
fn not_a_struct() {}

fn main() {}
