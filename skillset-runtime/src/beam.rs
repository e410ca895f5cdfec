//! Beam search as transformers' `generate(num_beams=N)` runs it (the vectorized
//! `_beam_search` of transformers 5): at each step every running beam's log-softmax
//! (then the logits processors, on log-probabilities) is added to its score; the best
//! `K = max(2, 1 + eos tokens) * N` continuations over all beams are kept; those that
//! end (an EOS token, or the length limit) and rank among the first `N` become finished
//! hypotheses, scored by `score / length ** length_penalty`; the best `N` that do not
//! end run on. The search stops when no running beam can beat the worst finished one
//! (transformers' `early_stopping=False` heuristic), when every hypothesis is finished
//! (`early_stopping=True`), or at the length limit. Scores are f32 and the -1e9
//! penalties the same as transformers', so that the same hypotheses win.

use crate::error::{Error, Result};
use crate::ops::{log_softmax, top_indices};

/// transformers' `early_stopping` generation parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `False` (the default): stop when the best running beam, at its current length,
    /// cannot beat the worst finished hypothesis.
    #[default]
    Heuristic,
    /// `True`: stop as soon as `num_beams` hypotheses are finished.
    WhenFull,
    /// `"never"`: the canonical rule (with a positive length penalty, the best running
    /// score is estimated at the maximum length).
    Never,
}

impl EarlyStopping {
    /// From generation_config.json's `early_stopping` (`true`, `false` or `"never"`).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        match v {
            serde_json::Value::Bool(true) => Some(EarlyStopping::WhenFull),
            serde_json::Value::Bool(false) => Some(EarlyStopping::Heuristic),
            serde_json::Value::String(s) if s == "never" => Some(EarlyStopping::Never),
            _ => None,
        }
    }
}

/// The settings of one beam search.
#[derive(Debug, Clone)]
pub(crate) struct BeamSettings {
    pub num_beams: usize,
    /// New tokens at most (the step that reaches it ends every beam).
    pub max_new_tokens: usize,
    pub eos: Vec<u32>,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
}

/// A model decoding `num_beams` rows of one input.
pub(crate) trait Beams {
    /// Logits `[num_beams][vocab]` of the token after the prompt (the rows are copies).
    fn prefill(&mut self) -> Result<Vec<Vec<f32>>>;
    /// Row `i` of the new batch continues old row `sources[i]` with `tokens[i]`: the
    /// logits of the token after it, per row.
    fn advance(&mut self, sources: &[usize], tokens: &[u32]) -> Result<Vec<Vec<f32>>>;
}

const PENALTY: f32 = -1.0e9;

/// The indices of the `k` largest values, largest first (ties: the lower index first).
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    top_indices(values, k)
        .into_iter()
        .map(|(i, _)| i as usize)
        .collect()
}

/// Run a beam search; `process(log_probs, generated)` applies the logits processors
/// (repetition penalty, suppressed tokens, ...) to one row's log-probabilities given
/// the tokens that beam generated so far. Returns the best hypothesis' new tokens (its
/// EOS token included, as transformers returns it).
pub(crate) fn beam_search(
    model: &mut dyn Beams,
    s: &BeamSettings,
    mut process: impl FnMut(&mut [f32], &[u32]),
) -> Result<Vec<u32>> {
    let n = s.num_beams;
    if n < 1 {
        return Err(Error::InvalidOption("num_beams must be at least 1".into()));
    }
    if s.max_new_tokens == 0 {
        return Ok(Vec::new());
    }
    let k = (2usize.max(1 + s.eos.len())) * n;
    let mut running: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut running_scores: Vec<f32> = (0..n).map(|i| if i == 0 { 0.0 } else { PENALTY }).collect();
    let mut finished: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut finished_scores = vec![PENALTY; n];
    let mut is_finished = vec![false; n];
    let mut improvable = true;
    let mut logits = model.prefill()?;
    let mut generated = 0usize;
    loop {
        if logits.len() != n {
            return Err(Error::InvalidInput(format!(
                "internal: {} rows of logits for {n} beams",
                logits.len()
            )));
        }
        let vocab = logits[0].len();
        if vocab == 0 || logits.iter().any(|r| r.len() != vocab) {
            return Err(Error::InvalidInput(
                "internal: beam search got rows of logits of different or zero length".into(),
            ));
        }
        // b. Accumulated log-probabilities of every continuation of every beam.
        let mut acc = Vec::with_capacity(n * vocab);
        for (j, row) in logits.iter().enumerate() {
            let mut lp = log_softmax(row);
            process(&mut lp, &running[j]);
            acc.extend(lp.iter().map(|&x| x + running_scores[j]));
        }
        // c. The best K continuations.
        let top = top_k(&acc, k);
        let cand_scores: Vec<f32> = top.iter().map(|&i| acc[i]).collect();
        let cand_beams: Vec<usize> = top.iter().map(|&i| i / vocab).collect();
        let cand_tokens: Vec<u32> = top.iter().map(|&i| (i % vocab) as u32).collect();
        // d. Which of them end: an EOS token, or the length limit.
        let at_limit = generated + 1 >= s.max_new_tokens;
        let ends: Vec<bool> = cand_tokens
            .iter()
            .map(|t| at_limit || s.eos.contains(t))
            .collect();
        let seq_of = |c: usize| -> Vec<u32> {
            let mut v = running[cand_beams[c]].clone();
            v.push(cand_tokens[c]);
            v
        };
        // e. The best N that do not end run on.
        let run_scores: Vec<f32> = cand_scores
            .iter()
            .zip(&ends)
            .map(|(&sc, &e)| if e { sc + PENALTY } else { sc })
            .collect();
        let next = top_k(&run_scores, n);
        let sources: Vec<usize> = next.iter().map(|&c| cand_beams[c]).collect();
        let tokens: Vec<u32> = next.iter().map(|&c| cand_tokens[c]).collect();
        let next_running: Vec<Vec<u32>> = next.iter().map(|&c| seq_of(c)).collect();
        let next_scores: Vec<f32> = next.iter().map(|&c| run_scores[c]).collect();
        // f. Finished hypotheses: the ending ones among the first N, length-normalized.
        let norm = ((generated + 1) as f64).powf(s.length_penalty) as f32;
        let full = is_finished.iter().all(|&f| f) && s.early_stopping == EarlyStopping::WhenFull;
        let mut merged_scores = finished_scores.clone();
        let mut merged: Vec<(Option<usize>, bool)> =
            (0..n).map(|j| (None, is_finished[j])).collect();
        for c in 0..top.len() {
            let just_finished = ends[c] && c < n;
            let mut sc = cand_scores[c] / norm;
            if full {
                sc += PENALTY;
            }
            if !improvable {
                sc += PENALTY;
            }
            if !just_finished {
                sc += PENALTY;
            }
            merged_scores.push(sc);
            merged.push((Some(c), just_finished));
        }
        let keep = top_k(&merged_scores, n);
        let old = std::mem::take(&mut finished);
        finished = keep
            .iter()
            .map(|&m| match merged[m].0 {
                Some(c) => seq_of(c),
                None => old[m].clone(),
            })
            .collect();
        finished_scores = keep.iter().map(|&m| merged_scores[m]).collect();
        is_finished = keep.iter().map(|&m| merged[m].1).collect();
        running = next_running;
        running_scores = next_scores;
        generated += 1;
        // g. Can a running beam still beat the worst finished hypothesis?
        let hypothetical = if s.early_stopping == EarlyStopping::Never && s.length_penalty > 0.0 {
            s.max_new_tokens
        } else {
            generated
        };
        let best_running =
            running_scores[0] / ((hypothetical as f64).powf(s.length_penalty) as f32);
        let worst = finished_scores
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        improvable = improvable
            && is_finished
                .iter()
                .any(|&f| best_running > if f { worst } else { PENALTY });
        let all_full =
            is_finished.iter().all(|&f| f) && s.early_stopping == EarlyStopping::WhenFull;
        let all_end = ends.iter().all(|&e| e);
        if !improvable || all_full || all_end {
            break;
        }
        logits = model.advance(&sources, &tokens)?;
    }
    Ok(finished.swap_remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model whose next-token log-probabilities depend only on the last token.
    struct Table {
        rows: usize,
        /// logits[last token] -> next logits; the prompt's last token is 0.
        table: Vec<Vec<f32>>,
        last: Vec<u32>,
    }

    impl Beams for Table {
        fn prefill(&mut self) -> Result<Vec<Vec<f32>>> {
            self.last = vec![0; self.rows];
            Ok(vec![self.table[0].clone(); self.rows])
        }
        fn advance(&mut self, sources: &[usize], tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
            let _ = sources;
            self.last = tokens.to_vec();
            Ok(tokens
                .iter()
                .map(|&t| self.table[t as usize].clone())
                .collect())
        }
    }

    fn ln(p: &[f32]) -> Vec<f32> {
        p.iter().map(|x| x.ln()).collect()
    }

    #[test]
    fn beam_search_finds_what_greedy_misses() {
        // Tokens: 0 start, 1 "a", 2 "b", 3 eos. Greedy takes "a" (0.6) then is stuck
        // with 0.3 at best; "b" (0.4) leads to eos with 0.95: 0.38 > 0.6 * 0.3 * ...
        let table = vec![
            ln(&[1e-6, 0.6, 0.4, 1e-6]),
            ln(&[1e-6, 0.35, 0.35, 0.3]),
            ln(&[1e-6, 0.025, 0.025, 0.95]),
            ln(&[1e-6, 0.1, 0.1, 0.8]),
        ];
        let settings = |n| BeamSettings {
            num_beams: n,
            max_new_tokens: 6,
            eos: vec![3],
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
        };
        let mut m = Table {
            rows: 2,
            table: table.clone(),
            last: vec![],
        };
        let best = beam_search(&mut m, &settings(2), |_, _| {}).unwrap();
        assert_eq!(best, vec![2, 3]);
        // One beam is greedy: "a" first.
        let mut m = Table {
            rows: 1,
            table,
            last: vec![],
        };
        let best = beam_search(&mut m, &settings(1), |_, _| {}).unwrap();
        assert_eq!(best[0], 1);
    }

    #[test]
    fn processors_see_each_beams_tokens_and_the_limit_ends_all() {
        let table = vec![ln(&[0.1, 0.5, 0.4]); 3];
        let mut m = Table {
            rows: 2,
            table,
            last: vec![],
        };
        let s = BeamSettings {
            num_beams: 2,
            max_new_tokens: 3,
            eos: vec![],
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
        };
        // Forbid repeating a token: the best path alternates.
        let best = beam_search(&mut m, &s, |lp, seen| {
            for &t in seen {
                lp[t as usize] = f32::NEG_INFINITY;
            }
        })
        .unwrap();
        assert_eq!(best.len(), 3);
        assert!(
            best.windows(2).all(|w| w[0] != w[1])
                && best.iter().collect::<std::collections::HashSet<_>>().len() == 3,
            "{best:?}"
        );
    }

    #[test]
    fn top_k_orders_by_value_then_index() {
        assert_eq!(top_k(&[1.0, 3.0, 3.0, 2.0], 3), vec![1, 2, 3]);
        assert_eq!(log_softmax(&[0.0, 0.0]), vec![-(2f32.ln()); 2]);
    }
}
