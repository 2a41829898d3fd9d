//! Turning GeoCLIP logits into probabilities and a ranked top-k.

/// One ranked candidate: its index in the gallery and its probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    pub gallery_index: usize,
    pub probability: f32,
}

/// Numerically stable softmax (max-subtracted, summed in f64).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![0.0; logits.len()];
    }
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().map(|&e| f64::from(e)).sum();
    exps.iter().map(|&e| (f64::from(e) / sum) as f32).collect()
}

/// The `k` most probable entries, most probable first; ties keep the lower index first.
/// NaNs rank last.
pub fn top_k(probabilities: &[f32], k: usize) -> Vec<Ranked> {
    let k = k.min(probabilities.len());
    if k == 0 {
        return Vec::new();
    }
    let order = |a: &usize, b: &usize| {
        let (pa, pb) = (probabilities[*a], probabilities[*b]);
        match (pa.is_nan(), pb.is_nan()) {
            (true, true) => a.cmp(b),
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => pb.total_cmp(&pa).then(a.cmp(b)),
        }
    };
    let mut indices: Vec<usize> = (0..probabilities.len()).collect();
    if k < indices.len() {
        indices.select_nth_unstable_by(k - 1, order);
        indices.truncate(k);
    }
    indices.sort_by(order);
    indices
        .into_iter()
        .map(|gallery_index| Ranked {
            gallery_index,
            probability: probabilities[gallery_index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let p = softmax(&[1000.0, 1001.0, 999.0]);
        assert_relative_eq!(p.iter().sum::<f32>(), 1.0, epsilon = 1e-6);
        assert!(p[1] > p[0] && p[0] > p[2]);
        assert_relative_eq!(p[1], 0.665_240_9, epsilon = 1e-6);
    }

    #[test]
    fn top_k_orders_and_truncates() {
        let p = [0.1, 0.4, 0.05, 0.4, 0.05];
        let top = top_k(&p, 3);
        let idx: Vec<usize> = top.iter().map(|r| r.gallery_index).collect();
        assert_eq!(idx, vec![1, 3, 0]);
        assert_eq!(top_k(&p, 10).len(), 5);
        assert!(top_k(&p, 0).is_empty());
    }

    #[test]
    fn nan_ranks_last() {
        let top = top_k(&[f32::NAN, 0.2, 0.1], 2);
        assert_eq!(top[0].gallery_index, 1);
        assert_eq!(top[1].gallery_index, 2);
    }
}
