//! Locating several photos of one place together.
//!
//! GeoCLIP's softmax over its gallery is `p(x | photo)` under a uniform prior over the gallery
//! points `x` (the logits are `exp(logit_scale) * cos(image, location)`, nothing else). For
//! photos `a` and `b` that are independent views of one place, Bayes gives
//! `p(x | a, b) ∝ p(a | x) p(b | x) p(x) ∝ p(x | a) p(x | b) / p(x)`; with the prior uniform
//! the division is a constant, so `p(x | a, b) ∝ exp(l_a(x)) exp(l_b(x))`, which is
//! `softmax(l_a + l_b)`. Summing the logits, then one softmax, is the product of the photos'
//! beliefs renormalised; averaging the probabilities instead would answer "one of these photos
//! was taken here", not "all of them were". The same holds at any point of the location
//! encoder (refining a group's candidate scores the summed logits).

/// The group's logits: the photos' logits over the same points, summed point by point. `None`
/// when there is no photo or the rows differ in length.
pub fn sum_logits<R: AsRef<[f32]>>(rows: &[R]) -> Option<Vec<f32>> {
    let (first, rest) = rows.split_first()?;
    let mut sum = first.as_ref().to_vec();
    for row in rest {
        let row = row.as_ref();
        if row.len() != sum.len() {
            return None;
        }
        for (s, l) in sum.iter_mut().zip(row) {
            *s += l;
        }
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{softmax, top_k};

    #[test]
    fn identical_photos_rank_as_one_photo_with_doubled_logits() {
        let one = vec![3.0_f32, 1.0, 2.5, -1.0, 2.9];
        let group = sum_logits(&[one.clone(), one.clone()]).unwrap();
        let doubled: Vec<f32> = one.iter().map(|l| 2.0 * l).collect();
        assert_eq!(group, doubled);
        let (g, d) = (softmax(&group), softmax(&doubled));
        assert_eq!(top_k(&g, 5), top_k(&d, 5));
        // ...which is sharper than one photo's belief: two views agree.
        assert!(g[0] > softmax(&one)[0]);
    }

    #[test]
    fn the_product_of_beliefs() {
        let a = [0.0_f32, 2.0, 0.0];
        let b = [0.0_f32, 0.0, 2.0];
        let p = softmax(&sum_logits(&[a, b]).unwrap());
        // Each photo alone prefers a different point; together they tie (product of beliefs).
        approx::assert_abs_diff_eq!(p[1], p[2], epsilon = 1e-7);
        let (pa, pb) = (softmax(&a), softmax(&b));
        let product: Vec<f32> = pa.iter().zip(&pb).map(|(x, y)| x * y).collect();
        let total: f32 = product.iter().sum();
        for (got, want) in p.iter().zip(&product) {
            approx::assert_abs_diff_eq!(*got, want / total, epsilon = 1e-6);
        }
    }

    #[test]
    fn rows_must_match() {
        assert_eq!(sum_logits::<Vec<f32>>(&[]), None);
        assert_eq!(sum_logits(&[vec![1.0_f32], vec![1.0, 2.0]]), None);
        assert_eq!(sum_logits(&[vec![1.0_f32, 2.0]]), Some(vec![1.0, 2.0]));
    }
}
