//! A conversation through a checkpoint's chat template: the rendered prompt, then the
//! assistant's answer, with a `#[skillset(family = "llama")]` struct.
//!
//!     cargo run --example chat -- tests/fixtures/qwen2-tiny "What is the capital of France?"

use skillsets::runtime::{skillset, task::TextGeneration, ChatMessage, Skillset};

#[skillset(family = "llama")]
struct Assistant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checkpoint = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/qwen2-tiny".into());
    let question = args
        .next()
        .unwrap_or_else(|| "What is the capital of France?".into());
    let chat = Assistant::init_cpu::<TextGeneration>(&checkpoint)?;

    let mut conversation = vec![
        ChatMessage::system("You answer in one sentence."),
        ChatMessage::user(question),
    ];
    println!(
        "--- the prompt the model reads ---\n{}",
        chat.render_chat(&conversation)?
    );

    let mut options = chat.options();
    options.max_new_tokens = 12;
    let answer = chat.chat_with(&conversation, &options)?;
    let reply = answer.generated_text.last().expect("the new message");
    println!("--- {} ---\n{}", reply.role, reply.content);

    // The next turn continues the conversation the answer returned.
    conversation = answer.generated_text;
    conversation.push(ChatMessage::user("And of Germany?"));
    let next = chat.chat_with(&conversation, &options)?;
    println!(
        "--- after a second question: {} messages ---",
        next.generated_text.len()
    );
    Ok(())
}
