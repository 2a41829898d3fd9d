//! Fast mode's matrix products: `act(x @ wᵀ + bias)` with `x` and `w` rounded to bf16 and the
//! products summed in f32 (bf16 x bf16 -> f32), on the CPU's bf16 dot-product instructions.
//!
//! - **Weights** are converted once, at load, into [`PackedBf16`]: 32-column panels in which
//!   each pair of consecutive input features of a column sits side by side, the layout
//!   `vdpbf16ps` reads (16 lanes, each `acc += a[2p] * w[2p] + a[2p + 1] * w[2p + 1]`). Half
//!   the bytes of f32, so a ViT-L/14 tower is 0.6 GB instead of 1.2.
//! - **Activations** are rounded to bf16 (round to nearest even, as PyTorch's
//!   `.to(torch.bfloat16)`) once per product and packed in blocks of 12 rows, so that each
//!   step of the microkernel reads its 12 pairs (one 32-bit broadcast each) side by side.
//! - **The microkernel**, in assembly, keeps `12 x 32` f32 accumulators in 24 of the 32 zmm
//!   registers (each step: 2 panel loads, 24 `vdpbf16ps` broadcasting their pair from memory)
//!   and walks the inner dimension in blocks that keep a panel's slice in L1 and the
//!   activations' slice in L2. Each thread takes whole panels (a share of the output's
//!   columns), so at batch 1 each reads only its half of the weights.
//!
//! Instructions: AVX-512 BF16 (Zen 4 and later, Cooper Lake, Sapphire Rapids and later),
//! detected at run time. AMX (Sapphire Rapids) would be faster still, but Rust's AMX intrinsics
//! are unstable (rust-lang/rust#126622) and no machine here has AMX to test it on. Arm's bf16
//! dot products (`BFDOT`) are likewise unstable in `std::arch`. Where there is no kernel,
//! [`Bf16Kernel::detect`] says so and the engine runs exact f32 instead, saying why.
//!
//! The tests check the kernel against a plain loop over the same bf16-rounded inputs.

use rayon::prelude::*;

use super::kernels::Activation;

/// `x` rounded to the nearest bf16 (ties to even), as its 16 bits. NaN stays NaN.
#[inline]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) as u16) | 0x0040;
    }
    let rounding = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// The f32 value of bf16 bits (exact).
#[inline]
pub fn from_bf16(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// Which instructions run fast mode's products on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// `vdpbf16ps` on 512-bit registers.
    Avx512Bf16,
}

impl Bf16Kernel {
    /// The kernel this CPU can run, or why there is none.
    pub fn detect() -> Result<Self, String> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512bf16")
                && std::arch::is_x86_feature_detected!("avx512f")
            {
                return Ok(Self::Avx512Bf16);
            }
            Err(
                "this CPU has no AVX-512 BF16 instructions (Zen 4, Cooper Lake, Sapphire \
                 Rapids or later have them)"
                    .into(),
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Err(format!(
                "geoloupe has no bf16 kernel for {} CPUs yet",
                std::env::consts::ARCH
            ))
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Avx512Bf16 => "AVX-512 BF16",
        }
    }
}

/// Columns per panel: two 16-lane f32 registers.
const PANEL: usize = 32;
/// Rows per microkernel call: 2 x 12 accumulators, 2 panel registers and the broadcasts fit
/// the 32 registers without spilling (14 rows spilled the panel registers every step).
const ROWS: usize = 12;
/// Input pairs per block: a panel's slice is `KC_PAIRS * 128` bytes (16 KiB, in L1).
const KC_PAIRS: usize = 128;
/// Rows per block: the activations' slice is `MC * KC_PAIRS * 4` bytes (about 140 KiB, in L2).
const MC: usize = ROWS * 20;

/// A linear layer's weight in bf16, packed for the kernel: panel `j` holds output columns
/// `32j..32j + 32` (zero past `out_dim`), and within it pair `p` of column `c` is at
/// `((j * k_pairs + p) * 32 + c) * 2`, the input features `2p` and `2p + 1` (zero past
/// `in_dim`).
#[derive(Clone, Debug)]
pub struct PackedBf16 {
    in_dim: usize,
    out_dim: usize,
    k_pairs: usize,
    data: Vec<u16>,
}

impl PackedBf16 {
    /// Packs PyTorch's `(out_dim, in_dim)` row-major weight.
    pub fn from_out_in(weight: &[f32], out_dim: usize, in_dim: usize) -> Self {
        assert_eq!(weight.len(), out_dim * in_dim, "weight has the wrong size");
        let k_pairs = in_dim.div_ceil(2);
        let panels = out_dim.div_ceil(PANEL);
        let mut data = vec![0u16; panels * k_pairs * PANEL * 2];
        data.par_chunks_mut((k_pairs * PANEL * 2).max(1))
            .enumerate()
            .for_each(|(j, panel)| {
                for c in 0..PANEL.min(out_dim - j * PANEL) {
                    let row = &weight[(j * PANEL + c) * in_dim..(j * PANEL + c + 1) * in_dim];
                    for (i, &w) in row.iter().enumerate() {
                        panel[((i / 2) * PANEL + c) * 2 + i % 2] = to_bf16(w);
                    }
                }
            });
        Self {
            in_dim,
            out_dim,
            k_pairs,
            data,
        }
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 2
    }

    fn panels(&self) -> usize {
        self.out_dim.div_ceil(PANEL)
    }

    fn panel(&self, j: usize) -> &[u16] {
        let len = self.k_pairs * PANEL * 2;
        &self.data[j * len..(j + 1) * len]
    }
}

/// `x (rows, in_dim)` rounded to bf16 and packed for the microkernel: blocks of [`ROWS`] rows
/// (the last padded with zero rows), and within a block pair `p` of row `r` at
/// `(block * k_pairs + p) * ROWS + r`, so each step of the microkernel reads its rows' pairs
/// side by side. A pair is a `u32`, little-endian: feature `2p` in the low half.
fn pack_activations(x: &[f32], rows: usize, in_dim: usize, k_pairs: usize) -> Vec<u32> {
    let blocks = rows.div_ceil(ROWS);
    let mut out = vec![0u32; blocks * k_pairs * ROWS];
    if k_pairs == 0 {
        return out;
    }
    out.par_chunks_mut(k_pairs * ROWS)
        .enumerate()
        .for_each(|(block, dst)| {
            for r in 0..ROWS.min(rows - block * ROWS) {
                let row = &x[(block * ROWS + r) * in_dim..][..in_dim];
                let (pairs, rest) = row.as_chunks::<2>();
                for (p, [lo, hi]) in pairs.iter().enumerate() {
                    dst[p * ROWS + r] = u32::from(to_bf16(*lo)) | (u32::from(to_bf16(*hi)) << 16);
                }
                if let [last] = rest {
                    dst[(k_pairs - 1) * ROWS + r] = u32::from(to_bf16(*last));
                }
            }
        });
    out
}

/// `act(x @ wᵀ + bias)` for `x (rows, in_dim)` row-major; returns `(rows, out_dim)`.
pub fn linear(
    kernel: Bf16Kernel,
    x: &[f32],
    weight: &PackedBf16,
    bias: Option<&[f32]>,
    rows: usize,
    act: Activation,
) -> Vec<f32> {
    let (in_dim, out_dim, k_pairs) = (weight.in_dim, weight.out_dim, weight.k_pairs);
    assert_eq!(x.len(), rows * in_dim, "input has the wrong size");
    if let Some(b) = bias {
        assert_eq!(b.len(), out_dim, "bias has the wrong size");
    }
    let mut out = vec![0f32; rows * out_dim];
    if out.is_empty() {
        return out;
    }
    let a = pack_activations(x, rows, in_dim, k_pairs);
    let panels = weight.panels();
    let threads = rayon::current_num_threads().clamp(1, panels);
    let per_thread = panels.div_ceil(threads);
    // Each task: its panels, every row, into `[panel][row][32]` f32.
    let parts: Vec<(usize, Vec<f32>)> = (0..panels)
        .step_by(per_thread)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|first| {
            let count = per_thread.min(panels - first);
            let mut c = vec![0f32; count * rows * PANEL];
            for mc in (0..rows).step_by(MC) {
                let m = MC.min(rows - mc);
                for kc in (0..k_pairs).step_by(KC_PAIRS) {
                    let k = KC_PAIRS.min(k_pairs - kc);
                    for j in 0..count {
                        let panel = &weight.panel(first + j)[kc * PANEL * 2..];
                        let c_panel = &mut c[(j * rows + mc) * PANEL..(j * rows + mc + m) * PANEL];
                        let a = &a[(mc / ROWS * k_pairs + kc) * ROWS..];
                        block(kernel, a, k_pairs, panel, k, c_panel, kc > 0);
                    }
                }
            }
            (first, c)
        })
        .collect();
    out.par_chunks_mut(out_dim)
        .enumerate()
        .for_each(|(r, row)| {
            for (first, c) in &parts {
                for j in 0..c.len() / (rows * PANEL) {
                    let col = (first + j) * PANEL;
                    let width = PANEL.min(out_dim - col);
                    row[col..col + width].copy_from_slice(&c[(j * rows + r) * PANEL..][..width]);
                }
            }
            super::kernels::epilogue(row, bias, act);
        });
    out
}

/// `c (m, 32) (+)= a x panel (k pairs)` for `m = c.len() / 32` rows, starting at a block
/// boundary of the packed activations `a` (blocks of [`ROWS`] rows, `k_pairs` pairs each, see
/// [`pack_activations`]), in microkernel calls of up to [`ROWS`] rows.
fn block(
    kernel: Bf16Kernel,
    a: &[u32],
    k_pairs: usize,
    panel: &[u16],
    k: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    let m = c.len() / PANEL;
    assert!(panel.len() >= k * PANEL * 2, "panel slice too short");
    assert!(k <= k_pairs, "more pairs than a row holds");
    let blocks = m.div_ceil(ROWS);
    if blocks > 0 {
        assert!(
            a.len() >= ((blocks - 1) * k_pairs + k) * ROWS,
            "activation slice too short"
        );
    }
    match kernel {
        Bf16Kernel::Avx512Bf16 => {
            #[cfg(target_arch = "x86_64")]
            for (i, c_rows) in c.chunks_mut(ROWS * PANEL).enumerate() {
                let a = &a[i * k_pairs * ROWS..];
                // SAFETY: `Avx512Bf16` is only constructed by `detect` after checking the CPU
                // has AVX-512F and AVX-512 BF16. The asserts above bound every read: block `i`
                // of `a` holds `k` steps of `ROWS` pairs, the panel holds `k` pairs, and
                // `c_rows` is exactly the `rows * 32` floats written.
                #[allow(unsafe_code)]
                unsafe {
                    avx512::micro_dispatch(a, panel, k, c_rows, accumulate);
                }
            }
            // `detect` never returns this kernel off x86-64.
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("AVX-512 BF16 on {} ({accumulate})", std::env::consts::ARCH);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PANEL, ROWS};

    // The assembly below is written out for 12 rows (24 accumulators, 48 bytes a step).
    const _: () = assert!(ROWS == 12 && PANEL == 32);

    /// `c (rows, 32) (+)= a x panel` for `rows = c.len() / 32` (1 to `ROWS`) rows of a block
    /// of packed activations (zero past its real rows). A full block is written in place; a
    /// partial one goes through a buffer of `ROWS` rows.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 BF16; `a` must hold `k` steps of `ROWS` pairs,
    /// and `panel` `k` pairs.
    pub(super) unsafe fn micro_dispatch(
        a: &[u32],
        panel: &[u16],
        k: usize,
        c: &mut [f32],
        accumulate: bool,
    ) {
        debug_assert!(a.len() >= k * ROWS && panel.len() >= k * PANEL * 2);
        if c.len() == ROWS * PANEL {
            // SAFETY: forwarded from this function's contract; `c` holds ROWS rows.
            unsafe { micro(a.as_ptr(), panel.as_ptr(), k, c.as_mut_ptr(), accumulate) };
            return;
        }
        let mut full = [0f32; ROWS * PANEL];
        full[..c.len()].copy_from_slice(c);
        // SAFETY: as above, into a buffer of ROWS rows.
        unsafe { micro(a.as_ptr(), panel.as_ptr(), k, full.as_mut_ptr(), accumulate) };
        let rows = c.len();
        c.copy_from_slice(&full[..rows]);
    }

    /// `c (ROWS, 32) (+)= a (k steps of ROWS pairs) x b (k pairs of 32 columns x 2)`.
    ///
    /// The inner loop is written in assembly: each step loads the panel's two registers and
    /// issues 24 `vdpbf16ps` whose activation pair is broadcast from memory by the instruction
    /// itself (`{1to16}`), so the 24 accumulators, the 2 panel registers and nothing else
    /// live in registers. (The same loop from intrinsics, at this crate's dev opt-level, spilled
    /// the panel registers and kept pointer checks in the loop.)
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn micro(a: *const u32, b: *const u16, k: usize, c: *mut f32, accumulate: bool) {
        // SAFETY (whole body): the caller guarantees k steps of ROWS pairs in `a`, k pairs of
        // 64 bf16 in `b`, and ROWS * 32 floats in `c`. The assembly only reads `a` and `b`
        // within those bounds (k steps, each 48 bytes of `a` and 128 of `b`).
        unsafe {
            let mut acc = [_mm512_setzero_ps(); 2 * ROWS];
            if accumulate {
                for (i, v) in acc.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(c.add(i * 16));
                }
            }
            if k > 0 {
                std::arch::asm!(
                "2:",
                "vmovups {w0}, zmmword ptr [{b}]",
                "vmovups {w1}, zmmword ptr [{b} + 64]",
                "vdpbf16ps {c0}, {w0}, dword ptr [{a}]{{1to16}}",
                "vdpbf16ps {c1}, {w1}, dword ptr [{a}]{{1to16}}",
                "vdpbf16ps {c2}, {w0}, dword ptr [{a} + 4]{{1to16}}",
                "vdpbf16ps {c3}, {w1}, dword ptr [{a} + 4]{{1to16}}",
                "vdpbf16ps {c4}, {w0}, dword ptr [{a} + 8]{{1to16}}",
                "vdpbf16ps {c5}, {w1}, dword ptr [{a} + 8]{{1to16}}",
                "vdpbf16ps {c6}, {w0}, dword ptr [{a} + 12]{{1to16}}",
                "vdpbf16ps {c7}, {w1}, dword ptr [{a} + 12]{{1to16}}",
                "vdpbf16ps {c8}, {w0}, dword ptr [{a} + 16]{{1to16}}",
                "vdpbf16ps {c9}, {w1}, dword ptr [{a} + 16]{{1to16}}",
                "vdpbf16ps {c10}, {w0}, dword ptr [{a} + 20]{{1to16}}",
                "vdpbf16ps {c11}, {w1}, dword ptr [{a} + 20]{{1to16}}",
                "vdpbf16ps {c12}, {w0}, dword ptr [{a} + 24]{{1to16}}",
                "vdpbf16ps {c13}, {w1}, dword ptr [{a} + 24]{{1to16}}",
                "vdpbf16ps {c14}, {w0}, dword ptr [{a} + 28]{{1to16}}",
                "vdpbf16ps {c15}, {w1}, dword ptr [{a} + 28]{{1to16}}",
                "vdpbf16ps {c16}, {w0}, dword ptr [{a} + 32]{{1to16}}",
                "vdpbf16ps {c17}, {w1}, dword ptr [{a} + 32]{{1to16}}",
                "vdpbf16ps {c18}, {w0}, dword ptr [{a} + 36]{{1to16}}",
                "vdpbf16ps {c19}, {w1}, dword ptr [{a} + 36]{{1to16}}",
                "vdpbf16ps {c20}, {w0}, dword ptr [{a} + 40]{{1to16}}",
                "vdpbf16ps {c21}, {w1}, dword ptr [{a} + 40]{{1to16}}",
                "vdpbf16ps {c22}, {w0}, dword ptr [{a} + 44]{{1to16}}",
                "vdpbf16ps {c23}, {w1}, dword ptr [{a} + 44]{{1to16}}",
                "add {a}, 48",
                "add {b}, 128",
                "dec {k}",
                "jnz 2b",
                a = inout(reg) a => _,
                b = inout(reg) b => _,
                k = inout(reg) k => _,
                w0 = out(zmm_reg) _,
                w1 = out(zmm_reg) _,
                c0 = inout(zmm_reg) acc[0],
                c1 = inout(zmm_reg) acc[1],
                c2 = inout(zmm_reg) acc[2],
                c3 = inout(zmm_reg) acc[3],
                c4 = inout(zmm_reg) acc[4],
                c5 = inout(zmm_reg) acc[5],
                c6 = inout(zmm_reg) acc[6],
                c7 = inout(zmm_reg) acc[7],
                c8 = inout(zmm_reg) acc[8],
                c9 = inout(zmm_reg) acc[9],
                c10 = inout(zmm_reg) acc[10],
                c11 = inout(zmm_reg) acc[11],
                c12 = inout(zmm_reg) acc[12],
                c13 = inout(zmm_reg) acc[13],
                c14 = inout(zmm_reg) acc[14],
                c15 = inout(zmm_reg) acc[15],
                c16 = inout(zmm_reg) acc[16],
                c17 = inout(zmm_reg) acc[17],
                c18 = inout(zmm_reg) acc[18],
                c19 = inout(zmm_reg) acc[19],
                c20 = inout(zmm_reg) acc[20],
                c21 = inout(zmm_reg) acc[21],
                c22 = inout(zmm_reg) acc[22],
                c23 = inout(zmm_reg) acc[23],
                options(readonly, nostack),
                );
            }
            for (i, v) in acc.iter().enumerate() {
                _mm512_storeu_ps(c.add(i * 16), *v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernels::tests::values;
    use super::*;

    /// The same product on the same bf16-rounded inputs, summed in f64.
    fn reference(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        (rows, in_dim, out_dim): (usize, usize, usize),
        act: Activation,
    ) -> Vec<f32> {
        let round = |v: f32| f64::from(from_bf16(to_bf16(v)));
        let mut out = vec![0f32; rows * out_dim];
        for r in 0..rows {
            for o in 0..out_dim {
                let dot: f64 = (0..in_dim)
                    .map(|i| round(x[r * in_dim + i]) * round(w[o * in_dim + i]))
                    .sum();
                let b = bias.map_or(0.0, |b| f64::from(b[o]));
                out[r * out_dim + o] = act.apply((dot + b) as f32);
            }
        }
        out
    }

    #[test]
    fn rounds_to_nearest_even_like_pytorch() {
        assert_eq!(to_bf16(1.0), 0x3F80);
        assert_eq!(from_bf16(0x3F80), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), 0x3F80);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
        assert_eq!(to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        assert_eq!(to_bf16(-2.0), 0xC000);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        // The largest finite f32 rounds up to infinity, as in PyTorch.
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
        // Relative error at most half a unit in the last of 8 significant bits: 2^-8.
        for v in values(1000, 9) {
            let v = v * 1000.0;
            assert!((from_bf16(to_bf16(v)) - v).abs() <= v.abs() * 2f32.powi(-8));
        }
    }

    #[test]
    fn packs_pairs_side_by_side_in_panels() {
        // (out 3, in 3): panel 0, pair p, column c: [w[c][2p], w[c][2p + 1]].
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let packed = PackedBf16::from_out_in(&w, 3, 3);
        assert_eq!((packed.k_pairs, packed.data.len()), (2, 2 * PANEL * 2));
        let at = |p: usize, c: usize, e: usize| from_bf16(packed.data[(p * PANEL + c) * 2 + e]);
        assert_eq!(
            [at(0, 0, 0), at(0, 0, 1), at(1, 0, 0), at(1, 0, 1)],
            [1.0, 2.0, 3.0, 0.0]
        );
        assert_eq!([at(0, 2, 0), at(0, 2, 1), at(1, 2, 0)], [7.0, 8.0, 9.0]);
        assert_eq!(at(0, 3, 0), 0.0);
    }

    #[test]
    fn linear_matches_a_plain_loop_on_the_same_bf16_inputs() {
        let Ok(kernel) = Bf16Kernel::detect() else {
            eprintln!(
                "skipped: no bf16 kernel on this CPU ({:?})",
                Bf16Kernel::detect()
            );
            return;
        };
        // Odd sizes: odd inner dimensions (a padded pair), partial panels, row counts that
        // are not multiples of the microkernel's rows or the row block, one and many panels,
        // an inner dimension longer than one block.
        for (rows, in_dim, out_dim) in [
            (1, 1, 1),
            (1, 7, 5),
            (13, 33, 19),
            (15, 64, 32),
            (29, 300, 65),
            (300, 257, 100),
            (257, 1024, 96),
        ] {
            let x = values(rows * in_dim, 1);
            let w = values(out_dim * in_dim, 2);
            let b = values(out_dim, 3);
            let packed = PackedBf16::from_out_in(&w, out_dim, in_dim);
            for act in [Activation::Identity, Activation::QuickGelu] {
                for bias in [Some(b.as_slice()), None] {
                    let got = linear(kernel, &x, &packed, bias, rows, act);
                    let want = reference(&x, &w, bias, (rows, in_dim, out_dim), act);
                    // Both sum exact products of bf16 values; only the f32 summation order
                    // differs: |error| <= in_dim * 2^-24 * sum |x w| with |x w| < 1.
                    let tolerance = in_dim as f32 * 6e-8 + 1e-6;
                    let diff = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f32::max);
                    assert!(
                        diff <= tolerance,
                        "{rows}x{in_dim}x{out_dim} {act:?} bias {}: {diff}",
                        bias.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn empty_inputs_give_empty_or_bias_outputs() {
        let Ok(kernel) = Bf16Kernel::detect() else {
            return;
        };
        let w = PackedBf16::from_out_in(&[0.5; 6], 3, 2);
        assert!(linear(kernel, &[], &w, None, 0, Activation::Identity).is_empty());
        // No input features: the output is the activation of the bias.
        let none = PackedBf16::from_out_in(&[], 2, 0);
        let out = linear(kernel, &[], &none, Some(&[1.0, -1.0]), 2, Activation::Relu);
        assert_eq!(out, vec![1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn detection_agrees_with_the_cpu() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            Bf16Kernel::detect().is_ok(),
            std::arch::is_x86_feature_detected!("avx512bf16")
        );
        #[cfg(not(target_arch = "x86_64"))]
        assert!(Bf16Kernel::detect().is_err());
    }
}
