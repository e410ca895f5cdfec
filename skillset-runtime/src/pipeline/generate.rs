//! Text generation and chats on a pipeline (decoder-only models and T5).

use crate::error::{Error, Result};
use std::ops::ControlFlow;

use crate::families::causal::{CausalLm, CausalStepper};
use crate::families::t5::{T5Model, T5Stepper};
use crate::generation::{Generation, GenerationOptions, Generator, OnToken, Stepper};
use crate::tokenize::TextTokenizer;

use super::handler::{json_each, Context, Handler, Inputs};
use super::options::RunOptions;

/// The model that writes: a causal LM continues the prompt (text-generation), an
/// encoder-decoder writes its own sequence from the input (text2text-generation).
pub(crate) enum Writer {
    Causal(Box<dyn CausalLm>),
    Seq2Seq(Box<T5Model>),
}

/// What generating needs besides the model and its tokenizer.
pub(crate) struct GenSetup {
    /// generation_config.json's defaults.
    pub defaults: GenerationOptions,
    /// config.json's `vocab_size`, where it has one.
    pub vocab: Option<usize>,
    /// config.json's `prefix`, which transformers' generation pipelines put before
    /// every input.
    pub prefix: Option<String>,
}

/// text-generation and text2text-generation: the writer, its tokenizer, its
/// generation defaults and (text-generation) its chat template.
pub(crate) struct TextWriter {
    pub writer: Writer,
    pub tok: TextTokenizer,
    pub setup: GenSetup,
    pub chat_template: Option<crate::chat::ChatTemplate>,
}

/// A model's stepper over a batch of prompts, and per row the tokens the repetition
/// penalty sees before the new ones.
type PromptStepper<'a> = (Box<dyn Stepper + 'a>, Vec<Vec<u32>>);

impl GenSetup {
    /// `text` after config.json's `prefix`, which transformers' generation pipelines
    /// put before every input.
    fn with_prefix<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        match &self.prefix {
            Some(prefix) => std::borrow::Cow::Owned(format!("{prefix}{text}")),
            None => std::borrow::Cow::Borrowed(text),
        }
    }

    /// A causal LM's stepper over these (left-padded) rows of prompt ids, its cache
    /// sized for the most new tokens any row may get.
    pub(crate) fn causal_stepper<'m>(
        &self,
        cx: &Context,
        tok: &TextTokenizer,
        model: &'m dyn CausalLm,
        rows: &[Vec<u32>],
        opts: &GenerationOptions,
    ) -> Result<CausalStepper<'m>> {
        CausalStepper::new(
            model,
            rows,
            self.padding_id(tok, opts),
            longest_limit(rows, opts)?,
            cx.candle_dtype(),
            cx.device(),
        )
    }

    /// The id that pads a batch of prompts: the generation config's pad token (else the
    /// tokenizer's), or 0 when it is beyond the vocabulary (padding is masked, so any
    /// valid id does; transformers' `pad_token_id: -1` and ids past the embeddings
    /// would index out of bounds).
    fn padding_id(&self, tok: &TextTokenizer, opts: &GenerationOptions) -> u32 {
        let pad = opts.pad_token_id.unwrap_or(tok.pad_id);
        match self.vocab {
            Some(v) if pad as usize >= v => 0,
            _ => pad,
        }
    }
}

/// Generation options within the budget (beams, new tokens), checked before any cache
/// or beam is sized from them.
pub(crate) fn check_generation(cx: &Context, opts: &GenerationOptions) -> Result<()> {
    cx.limits.check_beams(opts.num_beams)?;
    cx.limits.check_new_tokens(match opts.max_length {
        Some(n) => opts.max_new_tokens.min(n),
        None => opts.max_new_tokens,
    })?;
    opts.check()
}

/// The most new tokens any of these rows may get (the cache size of a stepper).
fn longest_limit(rows: &[Vec<u32>], opts: &GenerationOptions) -> Result<usize> {
    rows.iter()
        .try_fold(0, |m, r| Ok(m.max(opts.new_token_limit(r.len())?)))
}

impl TextWriter {
    /// Encode generation prompts as transformers' text-generation pipeline does: with
    /// the tokenizer's defaults, so that its post-processor's special tokens (the BOS
    /// of Llama, Mistral, Gemma, Phi-3, OPT checkpoints) are there, and no truncation.
    /// A prompt that encodes to nothing starts from the checkpoint's `bos_token_id`, as
    /// `generate` does without input ids.
    fn prompt_ids(&self, prompts: &[&str]) -> Result<Vec<Vec<u32>>> {
        if prompts.is_empty() {
            return Err(Error::InvalidInput("no prompt".into()));
        }
        let tok = &self.tok;
        prompts
            .iter()
            .map(|p| {
                let ids = tok.encode_prompt(&self.setup.with_prefix(p), true)?;
                if ids.is_empty() {
                    if let Some(bos) = self.setup.defaults.bos_token_id {
                        if self.setup.vocab.is_none_or(|v| (bos as usize) < v) {
                            return Ok(vec![bos]);
                        }
                    }
                }
                Ok(ids)
            })
            .collect()
    }

    /// A token-by-token generator over a batch of prompts: a causal LM continues the
    /// prompt, an encoder-decoder reads it and writes its own sequence.
    pub(crate) fn generator(
        &self,
        cx: &Context,
        prompts: &[&str],
        opts: &GenerationOptions,
    ) -> Result<Generator<'_, Box<dyn Stepper + '_>>> {
        if opts.num_beams > 1 {
            return Err(Error::InvalidOption(
                "tokens cannot be streamed from a beam search (the best hypothesis is known only at the end, as in transformers): use num_beams 1 to stream".into(),
            ));
        }
        check_generation(cx, opts)?;
        let (stepper, seen) = self.stepper(cx, prompts, opts)?;
        Generator::new(stepper, &self.tok, seen, opts.clone())
    }

    /// The model's stepper over a batch of prompts, and per row the tokens the
    /// repetition penalty sees before the new ones.
    fn stepper(
        &self,
        cx: &Context,
        prompts: &[&str],
        opts: &GenerationOptions,
    ) -> Result<PromptStepper<'_>> {
        match &self.writer {
            Writer::Causal(model) => {
                let ids = self.prompt_ids(prompts)?;
                let stepper =
                    self.setup
                        .causal_stepper(cx, &self.tok, model.as_ref(), &ids, opts)?;
                Ok((Box::new(stepper), ids))
            }
            Writer::Seq2Seq(model) => {
                if prompts.is_empty() {
                    return Err(Error::InvalidInput("no input text".into()));
                }
                // The last 4.x text2text pipeline prepends the config's `prefix`.
                let prefixed: Vec<_> = prompts.iter().map(|p| self.setup.with_prefix(p)).collect();
                let prompts: Vec<&str> = prefixed.iter().map(|p| p.as_ref()).collect();
                let batch = self.tok.encode_batch(&prompts, cx.device())?;
                let start = decoder_start(model, opts);
                // The decoder's sequence starts with its start token.
                let seen = vec![vec![start]; prompts.len()];
                let limit = longest_limit(&seen, opts)?;
                let stepper =
                    T5Stepper::new(model, &batch.input_ids, &batch.attention_mask, limit, start)?;
                Ok((Box::new(stepper), seen))
            }
        }
    }

    /// The token ids the model reads for each text, encoded as transformers' pipeline
    /// for this task encodes them (text-generation: the prompt with the tokenizer's
    /// special tokens, untruncated; text2text-generation: the config's `prefix` and the
    /// input; the encoder tasks: the input with special tokens, truncated to the
    /// model's positions).
    pub fn input_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        if let Writer::Causal(_) = self.writer {
            return self.prompt_ids(texts);
        }
        let prefixed: Vec<_> = texts.iter().map(|t| self.setup.with_prefix(t)).collect();
        let refs: Vec<&str> = prefixed.iter().map(|t| t.as_ref()).collect();
        Ok(self
            .tok
            .encode_all(&refs)?
            .iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// A conversation rendered with the checkpoint's chat template as the
    /// text-generation pipeline renders a chat: with the generation prompt, or, when the
    /// last message is the assistant's, continuing that message; `now` is the clock
    /// `strftime_now` reads. Returns the text and whether the final message is continued.
    pub fn render_chat(
        &self,
        cx: &Context,
        messages: &[crate::chat::ChatMessage],
        now: std::time::SystemTime,
    ) -> Result<(String, bool)> {
        let template = self.chat_template.as_ref().ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} has no chat template (chat_template.jinja or tokenizer_config.json's `chat_template`): give the prompt as text instead, or add the template the model was trained with",
                cx.dir.display()
            ))
        })?;
        let continue_final = messages.last().is_some_and(|m| m.role == "assistant");
        let text = template.render(
            messages,
            !continue_final,
            continue_final,
            &self.tok.special_tokens,
            now,
        )?;
        Ok((text, continue_final))
    }

    /// Generate the assistant's answer to each conversation (rendered with the chat
    /// template, encoded without adding special tokens, as `apply_chat_template` does;
    /// several conversations run as one left-padded batch). The output is the
    /// conversation with the new assistant message, or with its last assistant message
    /// continued.
    pub fn chat_at(
        &self,
        cx: &Context,
        conversations: &[Vec<crate::chat::ChatMessage>],
        opts: &GenerationOptions,
        now: std::time::SystemTime,
    ) -> Result<Vec<crate::chat::ChatGeneration>> {
        let Writer::Causal(model) = &self.writer else {
            return Err(Error::InvalidOption(format!(
                "a chat needs a text-generation pipeline; this one was loaded for `{}`",
                cx.task
            )));
        };
        check_generation(cx, opts)?;
        if conversations.is_empty() {
            return Err(Error::InvalidInput("no conversation".into()));
        }
        let tok = &self.tok;
        let mut prompts = Vec::with_capacity(conversations.len());
        for messages in conversations {
            let (text, continued) = self.render_chat(cx, messages, now)?;
            prompts.push((tok.encode_prompt(&text, false)?, continued));
        }
        let mut new_tokens: Vec<Vec<u32>> = Vec::with_capacity(prompts.len());
        if opts.num_beams > 1 {
            for (ids, _) in &prompts {
                let rows = vec![ids.clone(); opts.num_beams];
                let stepper = self
                    .setup
                    .causal_stepper(cx, tok, model.as_ref(), &rows, opts)?;
                new_tokens.push(crate::generation::beam_generate(stepper, ids, opts)?);
            }
        } else {
            for chunk in prompts.chunks(cx.max_batch_size) {
                let ids: Vec<Vec<u32>> = chunk.iter().map(|(ids, _)| ids.clone()).collect();
                let stepper = self
                    .setup
                    .causal_stepper(cx, tok, model.as_ref(), &ids, opts)?;
                let mut gen = Generator::new(
                    Box::new(stepper) as Box<dyn Stepper + '_>,
                    tok,
                    ids,
                    opts.clone(),
                )?;
                gen.run(&mut |_| ControlFlow::Continue(()))?;
                new_tokens.extend(gen.new_tokens().iter().cloned());
            }
        }
        conversations
            .iter()
            .zip(prompts)
            .zip(new_tokens)
            .map(|((messages, (_, continued)), tokens)| {
                let text = tok.decode(&tokens, true)?;
                let mut generated_text = messages.clone();
                if continued {
                    let last = generated_text.last_mut().expect("rendered, so not empty");
                    last.content.push_str(&text);
                } else {
                    generated_text.push(crate::chat::ChatMessage::assistant(text));
                }
                Ok(crate::chat::ChatGeneration {
                    generated_text,
                    token_ids: tokens,
                })
            })
            .collect()
    }

    /// Beam search for one prompt: `num_beams` copies of it decoded together; the best
    /// hypothesis' new tokens.
    /// (`opts` checked by the caller, [`check_generation`].)
    fn beam_generation(
        &self,
        cx: &Context,
        prompt: &str,
        opts: &GenerationOptions,
    ) -> Result<Vec<u32>> {
        let copies = vec![prompt; opts.num_beams];
        let (stepper, seen) = self.stepper(cx, &copies, opts)?;
        let before = seen.into_iter().next().unwrap_or_default();
        crate::generation::beam_generate(stepper, &before, opts)
    }

    /// text-generation (continue each prompt, one left-padded batch) or
    /// text2text-generation (write a new sequence from each input), calling `on_token`
    /// for every new token; it may stop generation with `Break`.
    pub fn text_generation(
        &self,
        cx: &Context,
        prompts: &[&str],
        opts: &GenerationOptions,
        mut on_token: Option<OnToken<'_>>,
    ) -> Result<Vec<Generation>> {
        let mut out = Vec::with_capacity(prompts.len());
        if opts.num_beams > 1 {
            check_generation(cx, opts)?;
            if on_token.is_some() {
                return Err(Error::InvalidOption(
                    "tokens cannot be streamed from a beam search (the best hypothesis is known only at the end, as in transformers): use num_beams 1 to stream".into(),
                ));
            }
            for prompt in prompts {
                let tokens = self.beam_generation(cx, prompt, opts)?;
                out.push(Generation {
                    generated_text: self.generated_text(prompt, &tokens, opts)?,
                    token_ids: tokens,
                });
            }
            return Ok(out);
        }
        for chunk in prompts.chunks(cx.max_batch_size) {
            let mut gen = self.generator(cx, chunk, opts)?;
            match on_token {
                Some(ref mut f) => gen.run(&mut **f)?,
                None => gen.run(&mut |_| ControlFlow::Continue(()))?,
            }
            for (prompt, tokens) in chunk.iter().zip(gen.new_tokens()) {
                out.push(Generation {
                    generated_text: self.generated_text(prompt, tokens, opts)?,
                    token_ids: tokens.clone(),
                });
            }
        }
        Ok(out)
    }

    /// The pipeline's text of a generation: text-generation (transformers 5's
    /// pipeline) returns the prompt followed by the new tokens decoded alone;
    /// text2text-generation (the last 4.x pipeline) decodes the whole decoder sequence,
    /// its start token included (skipped when it is a special token, as T5's pad is).
    fn generated_text(
        &self,
        prompt: &str,
        tokens: &[u32],
        opts: &GenerationOptions,
    ) -> Result<String> {
        let tok = &self.tok;
        match &self.writer {
            Writer::Seq2Seq(model) => {
                let start = decoder_start(model, opts);
                let sequence: Vec<u32> = std::iter::once(start)
                    .chain(tokens.iter().copied())
                    .collect();
                tok.decode(&sequence, true)
            }
            Writer::Causal(_) => Ok(format!("{prompt}{}", tok.decode(tokens, true)?)),
        }
    }
}

impl Handler for TextWriter {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let texts = inputs.texts(cx.task)?;
        let opts = opts.generation(&self.setup.defaults)?;
        Ok(json_each(&self.text_generation(cx, texts, &opts, None)?))
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
    fn generation_defaults(&self) -> Option<&GenerationOptions> {
        Some(&self.setup.defaults)
    }
}

/// The first token of T5's decoder: generation_config.json's `decoder_start_token_id`,
/// else config.json's (else its pad token).
fn decoder_start(model: &crate::families::t5::T5Model, opts: &GenerationOptions) -> u32 {
    opts.decoder_start_token_id
        .unwrap_or_else(|| T5Stepper::start_token(model))
}
