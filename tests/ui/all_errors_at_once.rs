use skillset_runtime::skillset;

// An unknown key, a wrong literal and a duplicate in one attribute, on an enum:
// every mistake is reported, not just the first.
#[skillset(famly = "bert", model_type = 7, model_type = "bert")]
enum Everything {}

fn main() {}
