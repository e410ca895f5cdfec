use skillset_runtime::skillset;

#[skillset(family = "bret")]
struct MyBert;

fn main() {}
