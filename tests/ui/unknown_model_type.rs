use skillset_runtime::skillset;

#[skillset(model_type = "robera")]
struct MyRoberta;

fn main() {}
