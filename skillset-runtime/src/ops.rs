//! Plain numeric helpers on rows of scores (softmax, argmax, top-k, ranking) and the
//! non-finite output check: a leaf module every layer above may use.

use crate::error::{Error, Result};
use crate::outputs::LabelScore;

/// The error for non-finite model outputs.
pub(crate) fn non_finite(what: &str) -> Error {
    Error::InvalidInput(format!(
        "{what} is not finite (NaN or infinity): the checkpoint's weights or config (an epsilon, rope_theta, image_std, ...) are broken"
    ))
}

/// `Err` when any value of `rows` is NaN or infinite.
pub(crate) fn ensure_finite<'a>(
    rows: impl IntoIterator<Item = &'a [f32]>,
    what: &str,
) -> Result<()> {
    if rows.into_iter().any(|r| r.iter().any(|x| !x.is_finite())) {
        return Err(non_finite(what));
    }
    Ok(())
}

/// Labels with scores, best first, cut to `top_k`.
pub(crate) fn ranked(
    scores: &[f32],
    label: impl Fn(usize) -> String,
    top_k: usize,
) -> Vec<LabelScore> {
    let mut ranked: Vec<LabelScore> = scores
        .iter()
        .enumerate()
        .map(|(i, &score)| LabelScore {
            label: label(i),
            score,
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked.truncate(top_k);
    ranked
}

/// A task output as JSON (`run_json`'s values).
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("task outputs are plain data and always serialize")
}

/// Softmax of one row, computed like numpy/torch (subtract the max first).
pub(crate) fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}

/// The first largest entry of `row` and its value (`(0, -inf)` for an empty row).
pub(crate) fn argmax(row: &[f32]) -> (usize, f32) {
    row.iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
}

/// The `k` largest entries of `row` as `(index, value)`, best first (ties: lower index).
pub(crate) fn top_indices(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    let k = k.min(row.len());
    if k < row.len() {
        idx.select_nth_unstable_by(k, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        idx.truncate(k);
    }
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.into_iter().map(|i| (i as u32, row[i])).collect()
}

/// Log-softmax of one row, summed in f64 (a row without a finite maximum is returned
/// as it is).
pub(crate) fn log_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return row.to_vec();
    }
    let sum: f64 = row.iter().map(|&x| ((x - max) as f64).exp()).sum();
    let log_sum = sum.ln() as f32;
    row.iter().map(|&x| x - max - log_sum).collect()
}
