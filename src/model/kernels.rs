//! CPU kernels for the model's hot paths, on plain `f32` slices: linear layers with the bias
//! and activation fused into the matmul's epilogue, and multi-head attention read straight out
//! of the fused q/k/v projection.
//!
//! Why they exist (measured on the 2-core CI machine, ViT-L/14 at batch 1): candle's stock path
//! spends about a third of the time outside the matmuls, in element-wise passes that each
//! allocate a fresh tensor and run on one thread (bias add, the three ops of quick GELU, the
//! q/k/v split copies, softmax), and its batched attention matmul splits every small per-head
//! product over both threads. Here each thread takes whole rows (or whole heads), runs gemm
//! single-threaded on them and finishes them while they are still in cache.
//!
//! The numbers are the same operations in the same order as PyTorch's within f32 rounding; the
//! parity tests check the whole model against recorded PyTorch outputs, and the tests below
//! check each kernel against a plain triple loop.

use rayon::prelude::*;

/// What a linear layer applies after adding its bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    /// CLIP's `quick_gelu`: `x * sigmoid(1.702 * x)`.
    QuickGelu,
}

impl Activation {
    #[inline]
    pub(crate) fn apply(self, x: f32) -> f32 {
        match self {
            Self::Identity => x,
            Self::Relu => x.max(0.0),
            Self::QuickGelu => x / (1.0 + (-1.702 * x).exp()),
        }
    }
}

/// A strided view of a matrix inside a slice: element `(r, c)` is at
/// `offset + r * row_stride + c * col_stride`.
#[derive(Clone, Copy)]
struct MatRef<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl MatRef<'_> {
    /// Panics unless every element of the view lies inside `data`: this is what makes the
    /// raw-pointer gemm call below sound.
    fn assert_in_bounds(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last =
                self.offset + (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst (m, n), contiguous = scale * lhs (m, k) @ rhs (k, n)`, on the calling thread.
fn gemm_into(dst: &mut [f32], lhs: MatRef<'_>, rhs: MatRef<'_>, scale: f32) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions differ");
    assert_eq!(dst.len(), m * n, "destination has the wrong size");
    lhs.assert_in_bounds();
    rhs.assert_in_bounds();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst.fill(0.0);
        return;
    }
    let stride = |s: usize| isize::try_from(s).expect("stride fits isize");
    // SAFETY: every element gemm reads lies inside `lhs.data` / `rhs.data` (checked just above
    // with the same offsets and strides), and it writes exactly the `m * n` elements of the
    // contiguous, exclusively borrowed `dst` (row stride `n`, column stride 1). `read_dst` is
    // false, so `dst`'s old contents are never read. Nothing else aliases `dst`.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            stride(n),
            false,
            lhs.data.as_ptr().add(lhs.offset),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data.as_ptr().add(rhs.offset),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `act(x @ w_t + bias)`: `x` is `(rows, in_dim)`, `w_t` `(in_dim, out_dim)` (the transpose of
/// PyTorch's weight, made once at load by [`transpose`]), both row-major; returns
/// `(rows, out_dim)`. (gemm reads a weight left in PyTorch's layout by strides, but measured
/// here that ran the ViT-L/14 tower 30 % slower.)
pub fn linear(
    x: &[f32],
    w_t: &[f32],
    bias: Option<&[f32]>,
    (rows, in_dim, out_dim): (usize, usize, usize),
    act: Activation,
) -> Vec<f32> {
    assert_eq!(x.len(), rows * in_dim, "input has the wrong size");
    assert_eq!(w_t.len(), in_dim * out_dim, "weight has the wrong size");
    if let Some(b) = bias {
        assert_eq!(b.len(), out_dim, "bias has the wrong size");
    }
    let mut out = vec![0f32; rows * out_dim];
    if out.is_empty() {
        return out;
    }
    let threads = rayon::current_num_threads().max(1);
    let epilogue = |row: &mut [f32], bias: Option<&[f32]>| epilogue(row, bias, act);
    let weight_columns = |first: usize, cols: usize| MatRef {
        data: w_t,
        offset: first,
        rows: in_dim,
        cols,
        row_stride: out_dim,
        col_stride: 1,
    };

    if rows < COLUMN_SPLIT_BELOW_ROWS && threads > 1 && out_dim >= 2 * MIN_COLUMNS {
        // Few rows (one photo's 257 tokens): split the weight's columns, so each thread packs
        // only its share of the weight, then assemble rows with the epilogue.
        let step = out_dim.div_ceil(threads).next_multiple_of(MIN_COLUMNS);
        let parts: Vec<(usize, Vec<f32>)> = (0..out_dim)
            .step_by(step)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|first| {
                let cols = step.min(out_dim - first);
                let mut part = vec![0f32; rows * cols];
                gemm_into(
                    &mut part,
                    rows_of(x, 0, rows, in_dim),
                    weight_columns(first, cols),
                    1.0,
                );
                (first, part)
            })
            .collect();
        out.par_chunks_mut(out_dim)
            .enumerate()
            .for_each(|(r, row)| {
                for (first, part) in &parts {
                    let cols = part.len() / rows;
                    row[*first..first + cols].copy_from_slice(&part[r * cols..(r + 1) * cols]);
                }
                epilogue(row, bias);
            });
        return out;
    }

    // Many rows (the gallery, batches): each thread takes whole rows.
    let chunk_rows = rows.div_ceil(threads).max(MIN_ROWS);
    out.par_chunks_mut(chunk_rows * out_dim)
        .enumerate()
        .for_each(|(task, dst)| {
            let n_rows = dst.len() / out_dim;
            let lhs = rows_of(x, task * chunk_rows, n_rows, in_dim);
            gemm_into(dst, lhs, weight_columns(0, out_dim), 1.0);
            for row in dst.chunks_exact_mut(out_dim) {
                epilogue(row, bias);
            }
        });
    out
}

/// `y = act(y + bias)` over one row (or part of one: `bias` as long as `row`), on 16 lanes at a
/// time where the CPU has AVX-512. The vector `exp` is Cephes' `expf` (within 2 ulp of libm's),
/// so quick GELU agrees with the scalar formula to f32 rounding.
pub(crate) fn epilogue(row: &mut [f32], bias: Option<&[f32]>, act: Activation) {
    if let Some(b) = bias {
        assert!(b.len() >= row.len(), "bias shorter than the row");
    }
    if bias.is_none() && act == Activation::Identity {
        return;
    }
    epilogue_on(Lanes::detect(), row, bias, act);
}

/// The vector code the epilogue and softmax run on: the widest the CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lanes {
    Scalar,
    /// 8 lanes: AVX2 with FMA (x86 since Haswell and Zen, most machines without AVX-512).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// 16 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Lanes {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Scalar
    }

    /// Every kind this CPU can run, the scalar code included (the tests check each).
    #[cfg(test)]
    fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut out = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                out.push(Self::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Self::Avx512);
            }
        }
        out
    }
}

fn epilogue_on(lanes: Lanes, row: &mut [f32], bias: Option<&[f32]>, act: Activation) {
    match lanes {
        Lanes::Scalar => epilogue_scalar(row, bias, act),
        // SAFETY: `Lanes` holds a vector kind only where the CPU has it (`detect`,
        // `available`); the slices are bounds-checked inside.
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        Lanes::Avx2 => unsafe { epilogue_avx2::run(row, bias, act) },
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        Lanes::Avx512 => unsafe { epilogue_avx512::run(row, bias, act) },
    }
}

fn epilogue_scalar(row: &mut [f32], bias: Option<&[f32]>, act: Activation) {
    match bias {
        Some(b) => {
            for (y, &b) in row.iter_mut().zip(b) {
                *y = act.apply(*y + b);
            }
        }
        None => {
            for y in row.iter_mut() {
                *y = act.apply(*y);
            }
        }
    }
}

/// Cephes' `expf`, which both vector `exp`s compute: inputs clamped to where f32 `exp` is finite
/// and normal or zero, ln 2 in two parts for the range reduction, and the degree-5
/// polynomial's coefficients, highest first.
#[cfg(target_arch = "x86_64")]
mod cephes_exp {
    pub(super) const MIN_X: f32 = -103.0;
    pub(super) const MAX_X: f32 = 88.7;
    pub(super) const LN2_HI: f32 = 0.693_359_4;
    pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
    pub(super) const POLY: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
}

/// The epilogue and softmax on 8 lanes, for x86 CPUs with AVX2 and FMA but not AVX-512: the
/// same formulas as the AVX-512 code, and the scalar code for a row's last few values.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod epilogue_avx2 {
    use std::arch::x86_64::*;

    use super::{Activation, cephes_exp};

    const LANES: usize = 8;

    /// `exp(x)` on 8 lanes: the AVX-512 code's Cephes `expf`, scaled by `2^n` in two halves
    /// (each a normal power of two, so a subnormal result is rounded once, as `vscalefps`
    /// rounds it).
    #[target_feature(enable = "avx2,fma")]
    fn exp(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(cephes_exp::MIN_X)),
            _mm256_set1_ps(cephes_exp::MAX_X),
        );
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(cephes_exp::LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(cephes_exp::LN2_LO), r);
        let mut p = _mm256_set1_ps(cephes_exp::POLY[0]);
        for &c in &cephes_exp::POLY[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let r2 = _mm256_mul_ps(r, r);
        let y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
        // n lies in -149..=128: each half in -75..=64.
        let n = _mm256_cvtps_epi32(n);
        let half = _mm256_srai_epi32::<1>(n);
        let rest = _mm256_sub_epi32(n, half);
        let pow2 = |k: __m256i| {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                k,
                _mm256_set1_epi32(127),
            )))
        };
        _mm256_mul_ps(_mm256_mul_ps(y, pow2(half)), pow2(rest))
    }

    #[target_feature(enable = "avx2,fma")]
    fn activate(v: __m256, act: Activation) -> __m256 {
        match act {
            Activation::Identity => v,
            Activation::Relu => _mm256_max_ps(v, _mm256_setzero_ps()),
            Activation::QuickGelu => {
                let e = exp(_mm256_mul_ps(v, _mm256_set1_ps(-1.702)));
                _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0), e))
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn load(values: &[f32; LANES]) -> __m256 {
        // SAFETY: an array of 8 f32 is 32 readable bytes; the load is unaligned.
        unsafe { _mm256_loadu_ps(values.as_ptr()) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn store(v: __m256) -> [f32; LANES] {
        let mut out = [0f32; LANES];
        // SAFETY: as in `load`, writing.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    /// The row's whole vectors, as arrays of 8 (the rest, under 8 values, is left to scalar
    /// code).
    fn vectors(row: &mut [f32]) -> impl Iterator<Item = &mut [f32; LANES]> {
        row.chunks_exact_mut(LANES)
            .map(|c| <&mut [f32; LANES]>::try_from(c).expect("chunks of 8"))
    }

    /// Softmax of `row` in place, as the AVX-512 code does it; the last few values (under 8)
    /// with scalar `exp`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax(row: &mut [f32]) {
        let full = row.len() / LANES * LANES;
        let mut max_v = _mm256_set1_ps(f32::NEG_INFINITY);
        for v in vectors(&mut row[..full]) {
            max_v = _mm256_max_ps(max_v, load(v));
        }
        let max = row[full..]
            .iter()
            .chain(&store(max_v))
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let max_v = _mm256_set1_ps(max);
        let mut sum_v = _mm256_setzero_ps();
        for v in vectors(&mut row[..full]) {
            let e = exp(_mm256_sub_ps(load(v), max_v));
            sum_v = _mm256_add_ps(sum_v, e);
            *v = store(e);
        }
        let mut sum: f32 = store(sum_v).iter().sum();
        for v in &mut row[full..] {
            *v = (*v - max).exp();
            sum += *v;
        }
        let sum_v = _mm256_set1_ps(sum);
        for v in vectors(&mut row[..full]) {
            *v = store(_mm256_div_ps(load(v), sum_v));
        }
        for v in &mut row[full..] {
            *v /= sum;
        }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run(row: &mut [f32], bias: Option<&[f32]>, act: Activation) {
        let full = row.len() / LANES * LANES;
        match bias {
            Some(b) => {
                for (v, b) in vectors(&mut row[..full]).zip(b.chunks_exact(LANES)) {
                    let b = <&[f32; LANES]>::try_from(b).expect("chunks of 8");
                    *v = store(activate(_mm256_add_ps(load(v), load(b)), act));
                }
            }
            None => {
                for v in vectors(&mut row[..full]) {
                    *v = store(activate(load(v), act));
                }
            }
        }
        let (row, bias) = (&mut row[full..], bias.map(|b| &b[full..]));
        super::epilogue_scalar(row, bias, act);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod epilogue_avx512 {
    use std::arch::x86_64::*;

    use super::{Activation, cephes_exp};

    /// `exp(x)` on 16 lanes: Cephes' `expf` (range reduction by ln 2 in two parts, a degree-5
    /// polynomial), scaled by `2^n` with `vscalefps`; inputs clamped to where f32 `exp` is
    /// finite and normal or zero.
    #[target_feature(enable = "avx512f")]
    fn exp(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(cephes_exp::MIN_X)),
            _mm512_set1_ps(cephes_exp::MAX_X),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(cephes_exp::LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(cephes_exp::LN2_LO), r);
        let mut p = _mm512_set1_ps(cephes_exp::POLY[0]);
        for &c in &cephes_exp::POLY[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let r2 = _mm512_mul_ps(r, r);
        let y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0));
        _mm512_scalef_ps(y, n)
    }

    #[target_feature(enable = "avx512f")]
    fn activate(v: __m512, act: Activation) -> __m512 {
        match act {
            Activation::Identity => v,
            Activation::Relu => _mm512_max_ps(v, _mm512_setzero_ps()),
            Activation::QuickGelu => {
                let e = exp(_mm512_mul_ps(v, _mm512_set1_ps(-1.702)));
                _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0), e))
            }
        }
    }

    /// Softmax of `row` in place: the max, `exp(x - max)` and its sum, then each divided by
    /// the sum, 16 lanes at a time.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax(row: &mut [f32]) {
        let n = row.len();
        let lanes_at = |i: usize| -> __mmask16 {
            let lanes = (n - i).min(16);
            if lanes == 16 {
                0xFFFF
            } else {
                (1 << lanes) - 1
            }
        };
        // SAFETY (whole body): every masked load and store touches only lanes `i..i + lanes`,
        // inside `row`.
        unsafe {
            let y = row.as_mut_ptr();
            let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
            for i in (0..n).step_by(16) {
                let v = _mm512_mask_loadu_ps(max, lanes_at(i), y.add(i));
                max = _mm512_max_ps(max, v);
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
            let mut sum = _mm512_setzero_ps();
            for i in (0..n).step_by(16) {
                let mask = lanes_at(i);
                let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, y.add(i)), max));
                let e = _mm512_maskz_mov_ps(mask, e);
                sum = _mm512_add_ps(sum, e);
                _mm512_mask_storeu_ps(y.add(i), mask, e);
            }
            let sum = _mm512_set1_ps(_mm512_reduce_add_ps(sum));
            for i in (0..n).step_by(16) {
                let mask = lanes_at(i);
                let v = _mm512_maskz_loadu_ps(mask, y.add(i));
                _mm512_mask_storeu_ps(y.add(i), mask, _mm512_div_ps(v, sum));
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(row: &mut [f32], bias: Option<&[f32]>, act: Activation) {
        let n = row.len();
        let mut i = 0;
        while i < n {
            let lanes = (n - i).min(16);
            let mask: __mmask16 = if lanes == 16 {
                0xFFFF
            } else {
                (1 << lanes) - 1
            };
            // SAFETY: the masked loads and stores touch only lanes `i..i + lanes`, inside
            // `row` and (checked by the caller) inside `bias`.
            unsafe {
                let y = row.as_mut_ptr().add(i);
                let mut v = _mm512_maskz_loadu_ps(mask, y);
                if let Some(b) = bias {
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, b.as_ptr().add(i)));
                }
                _mm512_mask_storeu_ps(y, mask, activate(v, act));
            }
            i += lanes;
        }
    }
}

/// The transpose of a row-major `(rows, cols)` matrix: [`transpose_side_by_side`] of one.
pub fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    transpose_side_by_side(&[values], rows, cols)
}

/// The transposes of row-major `(rows, cols)` matrices side by side, `(cols, rows * parts)`
/// row-major: fused weights (q, k and v) transposed at load without first joining them.
///
/// Each task writes the output rows of a band of 128 input columns: it gathers 16 input rows at
/// a time (512 contiguous bytes of each) into a small array and writes each output row's 16
/// values out contiguously, into a buffer backed by huge pages. Reading each input row in long
/// runs is what matters: one cache line per 4 KiB row (32-column bands) left ViT-L/14's load
/// waiting on memory for about a second.
pub fn transpose_side_by_side(parts: &[&[f32]], rows: usize, cols: usize) -> Vec<f32> {
    const BAND: usize = 128;
    const STEP: usize = 16;
    for part in parts {
        assert_eq!(part.len(), rows * cols, "matrix has the wrong size");
    }
    let width = rows * parts.len();
    let mut out = vec![0f32; cols * width];
    if out.is_empty() {
        return out;
    }
    super::memory::advise_huge_pages(&mut out);
    out.par_chunks_mut(BAND * width)
        .enumerate()
        .for_each(|(band, dst)| {
            let c0 = band * BAND;
            let n_cols = dst.len() / width;
            let mut tile = [[0f32; STEP]; BAND];
            for (p, src) in parts.iter().enumerate() {
                for r0 in (0..rows).step_by(STEP) {
                    let n_rows = STEP.min(rows - r0);
                    for (i, row) in src[r0 * cols..].chunks(cols).take(n_rows).enumerate() {
                        for (line, &v) in tile.iter_mut().zip(&row[c0..c0 + n_cols]) {
                            line[i] = v;
                        }
                    }
                    for (j, line) in tile.iter().take(n_cols).enumerate() {
                        dst[j * width + p * rows + r0..][..n_rows].copy_from_slice(&line[..n_rows]);
                    }
                }
            }
        });
    out
}

/// Below this many rows a linear layer splits its columns across threads, not its rows.
const COLUMN_SPLIT_BELOW_ROWS: usize = 512;
/// The smallest share of columns per thread (a multiple of the AVX-512 f32 width).
const MIN_COLUMNS: usize = 64;
/// The smallest share of rows per thread.
const MIN_ROWS: usize = 16;

/// Rows `first..first + rows` of a row-major `(_, cols)` matrix.
fn rows_of(data: &[f32], first: usize, rows: usize, cols: usize) -> MatRef<'_> {
    MatRef {
        data,
        offset: first * cols,
        rows,
        cols,
        row_stride: cols,
        col_stride: 1,
    }
}

/// Softmax of one row, in place, as `torch.softmax`: subtract the max, exponentiate, divide by
/// the sum. On 16 lanes where the CPU has AVX-512 (the epilogue's `exp`).
fn softmax_in_place(row: &mut [f32]) {
    softmax_on(Lanes::detect(), row);
}

fn softmax_on(lanes: Lanes, row: &mut [f32]) {
    match lanes {
        Lanes::Scalar => softmax_scalar(row),
        // SAFETY: as in `epilogue_on`.
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        Lanes::Avx2 => unsafe { epilogue_avx2::softmax(row) },
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        Lanes::Avx512 => unsafe { epilogue_avx512::softmax(row) },
    }
}

fn softmax_scalar(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Whether a token attends to every token (CLIP's vision tower) or only to itself and the ones
/// before it (CLIP's text tower).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    None,
    Causal,
}

/// Multi-head self-attention as CLIP does it: `softmax(q kᵀ · head_dim^-0.5 + mask) v` per
/// head, heads concatenated. The causal mask is transformers' (the smallest f32 added above the
/// diagonal): those weights are exactly 0 there, so the softmax runs over each row's first
/// `row + 1` scores and the rest are set to 0.
///
/// `qkv` is the fused projection, `(batch * tokens, 3 * hidden)` row-major with q, k and v side
/// by side; returns `(batch * tokens, hidden)` ready for the output projection.
pub fn attention(
    qkv: &[f32],
    (batch, tokens, hidden): (usize, usize, usize),
    heads: usize,
    mask: Mask,
) -> Vec<f32> {
    assert!(
        heads > 0 && hidden % heads == 0,
        "hidden size must split into heads"
    );
    assert_eq!(
        qkv.len(),
        batch * tokens * 3 * hidden,
        "qkv has the wrong size"
    );
    let head_dim = hidden / heads;
    // PyTorch keeps the scale as a Python float and multiplies an f32 tensor by it.
    let scale = (head_dim as f64).powf(-0.5) as f32;
    let row = 3 * hidden;
    let per_head: Vec<Vec<f32>> = (0..batch * heads)
        .into_par_iter()
        .map(|task| {
            let (b, h) = (task / heads, task % heads);
            let base = b * tokens * row + h * head_dim;
            let q = MatRef {
                data: qkv,
                offset: base,
                rows: tokens,
                cols: head_dim,
                row_stride: row,
                col_stride: 1,
            };
            // kᵀ: element (d, t) is k[t, d].
            let k_t = MatRef {
                data: qkv,
                offset: base + hidden,
                rows: head_dim,
                cols: tokens,
                row_stride: 1,
                col_stride: row,
            };
            let mut scores = vec![0f32; tokens * tokens];
            gemm_into(&mut scores, q, k_t, scale);
            for (i, r) in scores.chunks_exact_mut(tokens.max(1)).enumerate() {
                match mask {
                    Mask::None => softmax_in_place(r),
                    Mask::Causal => {
                        let (seen, ahead) = r.split_at_mut(i + 1);
                        softmax_in_place(seen);
                        ahead.fill(0.0);
                    }
                }
            }
            let weights = MatRef {
                data: &scores,
                offset: 0,
                rows: tokens,
                cols: tokens,
                row_stride: tokens,
                col_stride: 1,
            };
            let v = MatRef {
                data: qkv,
                offset: base + 2 * hidden,
                rows: tokens,
                cols: head_dim,
                row_stride: row,
                col_stride: 1,
            };
            let mut out = vec![0f32; tokens * head_dim];
            gemm_into(&mut out, weights, v, 1.0);
            out
        })
        .collect();
    let mut out = vec![0f32; batch * tokens * hidden];
    for (task, head_out) in per_head.iter().enumerate() {
        let (b, h) = (task / heads, task % heads);
        for (t, src) in head_out.chunks_exact(head_dim.max(1)).enumerate() {
            let start = (b * tokens + t) * hidden + h * head_dim;
            out[start..start + head_dim].copy_from_slice(src);
        }
    }
    out
}

/// Replaces subnormal values with zero. Trained weights can hold many of them (GeoCLIP's
/// first location capsule has about 96,000), and x86 cores take a slow microcode path for every
/// multiply that touches one: measured here, the gallery encode ran 2.4 times slower because of
/// them. A subnormal weight is below 1.2e-38, so its contribution to any output is far below
/// f32 resolution. Returns how many were replaced.
pub fn flush_subnormals(values: &mut [f32]) -> usize {
    let mut flushed = 0;
    for v in values.iter_mut().filter(|v| v.is_subnormal()) {
        *v = 0.0;
        flushed += 1;
    }
    flushed
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) (also the bf16 kernel's test inputs).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn naive_linear(
        x: &[f32],
        w_t: &[f32],
        bias: Option<&[f32]>,
        (rows, in_dim, out_dim): (usize, usize, usize),
        act: Activation,
    ) -> Vec<f32> {
        let mut out = vec![0f32; rows * out_dim];
        for r in 0..rows {
            for o in 0..out_dim {
                let mut acc = 0f64;
                for i in 0..in_dim {
                    acc += f64::from(x[r * in_dim + i]) * f64::from(w_t[i * out_dim + o]);
                }
                let b = bias.map_or(0.0, |b| f64::from(b[o]));
                out[r * out_dim + o] = act.apply((acc + b) as f32);
            }
        }
        out
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn linear_matches_a_triple_loop() {
        // Odd sizes: row counts that don't split evenly across threads, and a single row; few
        // rows with many columns (split by columns), many rows (split by rows).
        for (rows, in_dim, out_dim) in [
            (1, 7, 5),
            (37, 33, 19),
            (129, 64, 48),
            (257, 40, 200),
            (600, 33, 19),
        ] {
            let x = values(rows * in_dim, 1);
            let w = values(in_dim * out_dim, 2);
            let b = values(out_dim, 3);
            for act in [
                Activation::Identity,
                Activation::Relu,
                Activation::QuickGelu,
            ] {
                for bias in [Some(b.as_slice()), None] {
                    let got = linear(&x, &w, bias, (rows, in_dim, out_dim), act);
                    let want = naive_linear(&x, &w, bias, (rows, in_dim, out_dim), act);
                    // f32 accumulation over at most 64 terms of size < 1.
                    let diff = max_abs_diff(&got, &want);
                    assert!(diff < 1e-5, "{rows}x{in_dim}x{out_dim} {act:?}: {diff}");
                }
            }
        }
    }

    #[test]
    fn activations_are_the_pytorch_formulas() {
        assert_eq!(Activation::Relu.apply(-2.0), 0.0);
        assert_eq!(Activation::Relu.apply(3.0), 3.0);
        // quick_gelu(1) = 1 * sigmoid(1.702) = 0.845795...
        assert!((Activation::QuickGelu.apply(1.0) - 0.845_795_8).abs() < 1e-6);
        assert!(Activation::QuickGelu.apply(-100.0).abs() < 1e-30);
    }

    #[test]
    fn the_vector_epilogue_is_the_scalar_formula() {
        // Lengths that leave partial vectors; values across exp's whole range, with extremes.
        let mut x: Vec<f32> = values(1000, 5).iter().map(|v| v * 60.0).collect();
        x.extend([
            0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 200.0, -200.0, 1e6, -1e6,
        ]);
        let bias: Vec<f32> = values(x.len(), 6);
        for act in [
            Activation::Identity,
            Activation::Relu,
            Activation::QuickGelu,
        ] {
            for b in [Some(bias.as_slice()), None] {
                for (lanes, len) in Lanes::available()
                    .into_iter()
                    .flat_map(|lanes| [x.len(), 17, 15, 9, 8, 7, 1].map(|len| (lanes, len)))
                {
                    let mut got = x[..len].to_vec();
                    epilogue_on(lanes, &mut got, b, act);
                    let mut want = x[..len].to_vec();
                    epilogue_scalar(&mut want, b, act);
                    for (g, w) in got.iter().zip(&want) {
                        let tolerance = 4.0 * f32::EPSILON * w.abs() + 1e-30;
                        assert!((g - w).abs() <= tolerance, "{lanes:?} {act:?}: {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_vector_softmax_is_the_scalar_one() {
        for lanes in Lanes::available() {
            for len in [1, 7, 8, 9, 15, 16, 17, 257] {
                let mut got: Vec<f32> = values(len, 8).iter().map(|v| v * 30.0).collect();
                got[len / 2] = 80.0;
                let mut want = got.clone();
                softmax_on(lanes, &mut got);
                softmax_scalar(&mut want);
                let sum: f32 = got.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{lanes:?} {len}: sums to {sum}");
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 4.0 * f32::EPSILON * w.abs() + 1e-37,
                        "{lanes:?}: {g} vs {w}"
                    );
                }
            }
        }
        assert_eq!(Lanes::available().last(), Some(&Lanes::detect()));
    }

    #[test]
    fn transposes_side_by_side() {
        for (rows, cols, parts) in [(0, 3, 2), (1, 1, 3), (17, 33, 3), (40, 20, 1), (16, 48, 2)] {
            let ms: Vec<Vec<f32>> = (0..parts)
                .map(|p| values(rows * cols, 9 + p as u64))
                .collect();
            let refs: Vec<&[f32]> = ms.iter().map(Vec::as_slice).collect();
            let t = transpose_side_by_side(&refs, rows, cols);
            let width = rows * parts;
            assert_eq!(t.len(), cols * width);
            for (p, m) in ms.iter().enumerate() {
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(
                            t[c * width + p * rows + r],
                            m[r * cols + c],
                            "{rows}x{cols}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn transposes_any_shape() {
        for (rows, cols) in [(0, 3), (1, 1), (3, 5), (33, 70), (64, 32)] {
            let m = values(rows * cols, 4);
            let t = transpose(&m, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], m[r * cols + c]);
                }
            }
        }
    }

    #[test]
    fn empty_inputs_give_empty_outputs() {
        assert!(linear(&[], &[0.0; 6], None, (0, 2, 3), Activation::Relu).is_empty());
        // No input features: the output is the bias alone.
        let out = linear(&[], &[], Some(&[1.0, -1.0]), (2, 0, 2), Activation::Relu);
        assert_eq!(out, vec![1.0, 0.0, 1.0, 0.0]);
    }

    fn naive_attention(
        qkv: &[f32],
        (batch, tokens, hidden): (usize, usize, usize),
        heads: usize,
        mask: Mask,
    ) -> Vec<f32> {
        let d = hidden / heads;
        let scale = (d as f64).powf(-0.5);
        let at = |b: usize, t: usize, part: usize, h: usize, i: usize| {
            f64::from(qkv[(b * tokens + t) * 3 * hidden + part * hidden + h * d + i])
        };
        let mut out = vec![0f32; batch * tokens * hidden];
        for b in 0..batch {
            for h in 0..heads {
                for t in 0..tokens {
                    // Masked: transformers adds f32::MIN, whose exp is 0.
                    let seen = match mask {
                        Mask::None => tokens,
                        Mask::Causal => t + 1,
                    };
                    let scores: Vec<f64> = (0..seen)
                        .map(|u| {
                            (0..d)
                                .map(|i| at(b, t, 0, h, i) * at(b, u, 1, h, i))
                                .sum::<f64>()
                                * scale
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let sum: f64 = exps.iter().sum();
                    for i in 0..d {
                        let v: f64 = (0..seen).map(|u| exps[u] / sum * at(b, u, 2, h, i)).sum();
                        out[(b * tokens + t) * hidden + h * d + i] = v as f32;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_a_naive_implementation() {
        for mask in [Mask::None, Mask::Causal] {
            for (batch, tokens, hidden, heads) in [(1, 5, 8, 2), (2, 17, 24, 3), (3, 1, 4, 4)] {
                let qkv: Vec<f32> = values(batch * tokens * 3 * hidden, 7)
                    .iter()
                    .map(|v| v * 3.0)
                    .collect();
                let got = attention(&qkv, (batch, tokens, hidden), heads, mask);
                let want = naive_attention(&qkv, (batch, tokens, hidden), heads, mask);
                let diff = max_abs_diff(&got, &want);
                assert!(
                    diff < 1e-5,
                    "{mask:?} {batch}x{tokens}x{hidden}/{heads}: {diff}"
                );
            }
        }
    }

    #[test]
    fn causal_attention_ignores_later_tokens() {
        // Changing the last token's q, k and v leaves every earlier token's output as it was.
        let (tokens, hidden, heads) = (6, 8, 2);
        let qkv = values(tokens * 3 * hidden, 9);
        let mut changed = qkv.clone();
        for v in &mut changed[(tokens - 1) * 3 * hidden..] {
            *v += 1.0;
        }
        let a = attention(&qkv, (1, tokens, hidden), heads, Mask::Causal);
        let b = attention(&changed, (1, tokens, hidden), heads, Mask::Causal);
        let earlier = (tokens - 1) * hidden;
        assert_eq!(a[..earlier], b[..earlier]);
        assert_ne!(a[earlier..], b[earlier..]);
        // Without the mask, every token sees the change.
        let c = attention(&qkv, (1, tokens, hidden), heads, Mask::None);
        let d = attention(&changed, (1, tokens, hidden), heads, Mask::None);
        assert_ne!(c[..hidden], d[..hidden]);
    }

    #[test]
    fn flushes_only_subnormals() {
        let mut v = vec![1e-39, -1e-40, f32::MIN_POSITIVE, 0.5, -0.0, f32::NAN];
        assert_eq!(flush_subnormals(&mut v), 2);
        assert_eq!(&v[..5], &[0.0, 0.0, f32::MIN_POSITIVE, 0.5, -0.0]);
        assert!(v[5].is_nan());
    }
}
