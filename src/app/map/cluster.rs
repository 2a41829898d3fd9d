//! Markers that would hide each other: screen points closer than a radius are grouped into
//! clusters (drawn as one disc with a count), and a few markers at one spot (the candidates)
//! are fanned out around it. Pure, in screen points.

use std::collections::HashMap;

use egui::{Pos2, Vec2};

/// Points drawn as one: the indices of its members (in the order given) and their mean.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub centre: Pos2,
    pub members: Vec<usize>,
}

/// Groups points greedily, in the order given (put the most important first): a point joins
/// the first cluster whose first point is within `radius_px`, else it starts one. Every point
/// is in exactly one cluster. Near-linear (a grid of `radius_px` cells).
pub fn cluster_points(points: &[Pos2], radius_px: f32) -> Vec<Cluster> {
    let radius = radius_px.max(f32::EPSILON);
    let cell = |p: Pos2| ((p.x / radius).floor() as i64, (p.y / radius).floor() as i64);
    let mut seeds: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    let mut clusters: Vec<(Pos2, Vec<usize>)> = Vec::new();
    for (i, &p) in points.iter().enumerate() {
        if !p.x.is_finite() || !p.y.is_finite() {
            clusters.push((p, vec![i]));
            continue;
        }
        let (cx, cy) = cell(p);
        let joined = (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (cx + dx, cy + dy)))
            .filter_map(|c| seeds.get(&c))
            .flatten()
            .copied()
            .filter(|&c| clusters[c].0.distance(p) <= radius)
            .min();
        match joined {
            Some(c) => clusters[c].1.push(i),
            None => {
                seeds.entry((cx, cy)).or_default().push(clusters.len());
                clusters.push((p, vec![i]));
            }
        }
    }
    clusters
        .into_iter()
        .map(|(seed, members)| {
            let sum = members
                .iter()
                .fold(Vec2::ZERO, |s, &i| s + points[i].to_vec2());
            let centre = if members.len() == 1 {
                seed
            } else {
                (sum / members.len() as f32).to_pos2()
            };
            Cluster { centre, members }
        })
        .collect()
}

/// Where `count` markers around `centre` go so that neighbours are `spacing_px` apart: one
/// stays at the centre, more sit on a circle, the first at the top, clockwise.
pub fn fan_out(centre: Pos2, count: usize, spacing_px: f32) -> Vec<Pos2> {
    if count <= 1 {
        return vec![centre; count];
    }
    let n = count as f32;
    let radius = (spacing_px / (2.0 * (std::f32::consts::PI / n).sin())).max(spacing_px * 0.75);
    (0..count)
        .map(|i| {
            let angle = std::f32::consts::TAU * i as f32 / n - std::f32::consts::FRAC_PI_2;
            centre + radius * Vec2::new(angle.cos(), angle.sin())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::pos2;

    #[test]
    fn close_points_cluster_with_a_count_and_far_ones_stay_alone() {
        let points = [
            pos2(100.0, 100.0),
            pos2(105.0, 102.0),
            pos2(300.0, 300.0),
            pos2(98.0, 97.0),
            pos2(130.0, 100.0),
        ];
        let clusters = cluster_points(&points, 12.0);
        assert_eq!(clusters.len(), 3);
        assert_eq!(clusters[0].members, vec![0, 1, 3]);
        assert_eq!(clusters[1].members, vec![2]);
        assert_eq!(clusters[2].members, vec![4]);
        assert!(clusters[0].centre.distance(pos2(101.0, 99.67)) < 0.01);
        assert_eq!(clusters[1].centre, points[2]);
        // Each point once.
        let mut all: Vec<usize> = clusters.iter().flat_map(|c| c.members.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn clusters_reach_across_grid_cells_and_many_points_collapse() {
        // Either side of a cell boundary at x = 12.
        let clusters = cluster_points(&[pos2(11.0, 5.0), pos2(13.0, 5.0)], 12.0);
        assert_eq!(clusters.len(), 1);
        let same: Vec<Pos2> = (0..1000).map(|_| pos2(50.0, 50.0)).collect();
        let clusters = cluster_points(&same, 10.0);
        assert_eq!(clusters.len(), 1);
        assert_eq!(clusters[0].members.len(), 1000);
        assert!(cluster_points(&[], 10.0).is_empty());
    }

    #[test]
    fn fanned_out_markers_are_spaced_apart() {
        let centre = pos2(200.0, 200.0);
        assert_eq!(fan_out(centre, 1, 20.0), vec![centre]);
        assert!(fan_out(centre, 0, 20.0).is_empty());
        for n in [2, 3, 5, 10] {
            let at = fan_out(centre, n, 20.0);
            assert_eq!(at.len(), n);
            for i in 0..n {
                for j in i + 1..n {
                    assert!(
                        at[i].distance(at[j]) >= 20.0 * 0.99,
                        "{n}: {i} and {j} overlap"
                    );
                }
            }
        }
        // The first at the top.
        let at = fan_out(centre, 4, 20.0);
        assert!(at[0].y < centre.y && (at[0].x - centre.x).abs() < 0.01);
    }
}
