//! Where tensors come from: a safetensors file checked name by name and shape by shape, or —
//! for the speed benchmark only — random values.
//!
//! A [`WeightFile`] reads only its header when opened; each tensor asked for is then read with
//! one positioned read (`pread`) straight into the buffer the tensor keeps, so loading leaves
//! no file pages mapped into the process (a touched memory map counts as resident memory, and
//! the kernel's page cache does not), never reads a tensor nobody asked for (the CLIP file's
//! text tower stays on disk), and holds one tensor's worth of memory at a time on top of what
//! the caller keeps: a caller that converts each tensor (to bf16, transposed, fused) drops the
//! f32 one before asking for the next.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};

use super::bf16::{self, Bf16Kernel, PackedBf16};
use super::kernels::{self, Activation};
use super::{ModelError, Precision};

/// Anything that hands out named tensors of a known shape, as f32 on a device.
pub trait TensorSource {
    /// The tensor `name` with exactly `shape`; never a made-up value.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError>;
    fn device(&self) -> &Device;
    /// Checks every `(name, shape)` up front, so a file with one missing tensor fails before
    /// anything is built; the error names the first problem.
    fn check_all(&self, expected: &[(String, Vec<usize>)]) -> Result<(), ModelError>;

    /// The `(out_each, in)` weights `names` transposed side by side: `(in, out_each * n)` f32
    /// values in CPU memory, as [`kernels::transpose_side_by_side`] of [`TensorSource::tensor`]s.
    /// A source that reads files reads them through `scratch`, whose buffers are reused from one
    /// call to the next.
    fn transposed_side_by_side(
        &self,
        names: &[String],
        (out_each, in_dim): (usize, usize),
        _scratch: &mut LoadScratch,
    ) -> Result<Vec<f32>, ModelError> {
        let parts = names
            .iter()
            .map(|name| {
                self.tensor(name, &[out_each, in_dim])?
                    .to_device(&Device::Cpu)
                    .map_err(ModelError::candle(format!("could not read `{name}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        with_cpu_f32_all(&parts, |parts| {
            kernels::transpose_side_by_side(parts, out_each, in_dim)
        })
        .map_err(ModelError::candle(format!(
            "could not transpose `{}`",
            names.join(", ")
        )))
    }
}

/// Buffers that tensors are read into while a model loads, reused from one tensor to the next:
/// a fresh buffer for each would be mapped and zeroed by the kernel every time (ViT-L/14: 1.2
/// GB of page faults). Dropped when the load ends.
#[derive(Debug, Default)]
pub struct LoadScratch {
    buffers: Vec<Vec<f32>>,
}

/// The largest header accepted (the safetensors crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor's entry in a safetensors header.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// The header's dtype name (`F32`, `BF16`, ...).
    dtype: String,
    shape: Vec<usize>,
    /// Where its bytes lie in the file (absolute offsets).
    start: u64,
    end: u64,
}

/// A safetensors file, read tensor by tensor (the module's notes say why not mapped).
pub struct WeightFile {
    path: PathBuf,
    file: File,
    entries: HashMap<String, Entry>,
    device: Device,
    /// Tensor bytes read so far (the header not counted).
    bytes_read: AtomicU64,
}

impl std::fmt::Debug for WeightFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightFile")
            .field("path", &self.path)
            .field("tensors", &self.entries.len())
            .field("bytes_read", &self.bytes_read())
            .finish_non_exhaustive()
    }
}

impl WeightFile {
    pub fn open(path: &Path, device: &Device) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                what: "weights file".into(),
                hint: "Run `geoloupe model info` to see how to install it".into(),
                path: path.to_owned(),
            });
        }
        let file = File::open(path).map_err(ModelError::io("open", path))?;
        let entries = read_header(&file, path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            entries,
            device: device.clone(),
            bytes_read: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor name and shape in the file.
    pub fn shapes(&self) -> HashMap<String, Vec<usize>> {
        self.entries
            .iter()
            .map(|(name, e)| (name.clone(), e.shape.clone()))
            .collect()
    }

    /// Tensor bytes read from the file so far: the tensors asked for, each once per request.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Bytes of the tensors whose names start with `prefix` (all of them for `""`).
    pub fn bytes_under(&self, prefix: &str) -> u64 {
        self.entries
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, e)| e.end - e.start)
            .sum()
    }

    /// The stored dtype of `name` as the header spells it (`F32`, `BF16`, ...).
    pub fn dtype(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|e| e.dtype.as_str())
    }

    fn entry(&self, name: &str, shape: &[usize]) -> Result<&Entry, ModelError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.into(),
                file: self.path.clone(),
            })?;
        if entry.shape != shape {
            return Err(ModelError::ShapeMismatch {
                name: name.into(),
                expected: shape.to_vec(),
                actual: entry.shape.clone(),
                file: self.path.clone(),
            });
        }
        Ok(entry)
    }

    /// The f32 values of `name` (stored as f32, f16 or bf16), exactly as stored: one read into
    /// the returned buffer for f32, and the stored bytes converted for the half types.
    pub fn read_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let mut values = Vec::new();
        self.read_f32_into(name, shape, &mut values)?;
        Ok(values)
    }

    /// [`WeightFile::read_f32`] into `values`, reusing its memory when it has room.
    pub fn read_f32_into(
        &self,
        name: &str,
        shape: &[usize],
        values: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let entry = self.entry(name, shape)?;
        let count: usize = shape.iter().product();
        let failed = |e: std::io::Error| ModelError::Io {
            action: format!("read tensor `{name}` from"),
            path: self.path.clone(),
            source: e,
        };
        match entry.dtype.as_str() {
            "F32" => {
                if values.capacity() < count {
                    *values = vec![0f32; count];
                    super::memory::advise_huge_pages(values);
                } else {
                    values.resize(count, 0.0);
                }
                read_exact_at(&self.file, f32_bytes_mut(values), entry.start).map_err(failed)?;
                if cfg!(target_endian = "big") {
                    for v in values.iter_mut() {
                        *v = f32::from_bits(u32::from_le(v.to_bits()));
                    }
                }
            }
            "F16" | "BF16" => {
                let mut bytes = vec![0u8; 2 * count];
                read_exact_at(&self.file, &mut bytes, entry.start).map_err(failed)?;
                let half = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
                values.clear();
                if entry.dtype == "BF16" {
                    values.extend(
                        bytes
                            .chunks_exact(2)
                            .map(|b| f32::from_bits(u32::from(half(b)) << 16)),
                    );
                } else {
                    values.extend(bytes.chunks_exact(2).map(|b| f16_to_f32(half(b))));
                }
            }
            other => {
                return Err(ModelError::Invalid {
                    what: "weights".into(),
                    reason: format!("tensor `{name}` is {other}; expected F32, F16 or BF16"),
                    path: self.path.clone(),
                });
            }
        }
        self.bytes_read
            .fetch_add(entry.end - entry.start, Ordering::Relaxed);
        Ok(())
    }
}

impl TensorSource for WeightFile {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let mut values = self.read_f32(name, shape)?;
        flush_subnormals_fast(&mut values);
        Tensor::from_vec(values, shape, &Device::Cpu)
            .and_then(|t| t.to_device(&self.device))
            .map_err(ModelError::candle(format!(
                "could not load tensor `{name}` from {}",
                self.path.display()
            )))
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn check_all(&self, expected: &[(String, Vec<usize>)]) -> Result<(), ModelError> {
        for (name, shape) in expected {
            self.entry(name, shape)?;
        }
        Ok(())
    }

    fn transposed_side_by_side(
        &self,
        names: &[String],
        (out_each, in_dim): (usize, usize),
        scratch: &mut LoadScratch,
    ) -> Result<Vec<f32>, ModelError> {
        if scratch.buffers.len() < names.len() {
            scratch.buffers.resize_with(names.len(), Vec::new);
        }
        for (name, buffer) in names.iter().zip(&mut scratch.buffers) {
            self.read_f32_into(name, &[out_each, in_dim], buffer)?;
            flush_subnormals_fast(buffer);
        }
        let parts: Vec<&[f32]> = scratch.buffers[..names.len()]
            .iter()
            .map(Vec::as_slice)
            .collect();
        Ok(kernels::transpose_side_by_side(&parts, out_each, in_dim))
    }
}

/// Reads a safetensors header: an 8-byte little-endian length, then that much JSON mapping each
/// name to `{dtype, shape, data_offsets}` (relative to the end of the header), and an optional
/// `__metadata__`. Every entry's byte range is checked against its shape and the file's length,
/// so a truncated or inconsistent file fails here, naming itself.
fn read_header(file: &File, path: &Path) -> Result<HashMap<String, Entry>, ModelError> {
    let invalid = |reason: String| ModelError::Invalid {
        what: "safetensors file".into(),
        reason,
        path: path.to_owned(),
    };
    let file_len = file.metadata().map_err(ModelError::io("stat", path))?.len();
    let mut len_bytes = [0u8; 8];
    read_exact_at(file, &mut len_bytes, 0).map_err(|e| invalid(format!("no header: {e}")))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
        return Err(invalid(format!(
            "header of {header_len} bytes in a file of {file_len}"
        )));
    }
    let mut text = vec![0u8; header_len as usize];
    read_exact_at(file, &mut text, 8).map_err(ModelError::io("read the header of", path))?;
    let header: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&text).map_err(|e| invalid(format!("header: {e}")))?;
    let data_start = 8 + header_len;
    let mut entries = HashMap::with_capacity(header.len());
    for (name, value) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| invalid(format!("tensor `{name}`: {what}"));
        let dtype = value
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("no dtype"))?
            .to_owned();
        let shape: Vec<usize> = value
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("shape is not a list of sizes"))?;
        let offsets: Vec<u64> = value
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .map(|o| o.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default();
        let [start, end] = offsets[..] else {
            return Err(bad("data_offsets must be two offsets"));
        };
        if start > end || data_start + end > file_len {
            return Err(bad(&format!(
                "bytes {start}..{end} lie outside the file's {} bytes of data",
                file_len - data_start
            )));
        }
        if let Some(item) = dtype_bytes(&dtype) {
            let count = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
            if count.and_then(|c| c.checked_mul(item)) != Some(end - start) {
                return Err(bad(&format!(
                    "{} bytes do not hold a {dtype} tensor of shape {shape:?}",
                    end - start
                )));
            }
        }
        entries.insert(
            name,
            Entry {
                dtype,
                shape,
                start: data_start + start,
                end: data_start + end,
            },
        );
    }
    Ok(entries)
}

/// Bytes per element of a safetensors dtype (`None`: not one this reader knows the size of).
fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// IEEE half precision to f32, exactly (every f16 is an f32).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x03ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        // Subnormal: frac · 2^-24.
        (0, _) => {
            let value = frac as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -value } else { value };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// Fills `buf` from `offset` in `file` without moving a shared cursor (`pread` on Unix,
/// `ReadFile` with an offset on Windows).
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The bytes of an f32 slice, to read into.
fn f32_bytes_mut(values: &mut [f32]) -> &mut [u8] {
    let len = std::mem::size_of_val(values);
    // SAFETY: any byte pattern is a valid f32, u8 has alignment 1, and the byte slice covers
    // exactly the same memory for the same lifetime as the borrowed f32 slice.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), len)
    }
}

/// [`kernels::flush_subnormals`] (subnormals to +0.0, everything else untouched) written as a
/// branch-free select the compiler vectorises: the whole ViT-L/14 is scanned at load.
fn flush_subnormals_fast(values: &mut [f32]) {
    for v in values.iter_mut() {
        let bits = v.to_bits();
        let subnormal = bits & 0x7f80_0000 == 0 && bits & 0x007f_ffff != 0;
        *v = f32::from_bits(if subnormal { 0 } else { bits });
    }
}

/// `n` normal values (mean 0, std `std`) that depend only on `name`: the same tensor every
/// time it is asked for, so two towers built from [`RandomWeights`] (exact and fast mode in the
/// benchmark) hold the same weights.
fn seeded_normal(name: &str, n: usize, std: f32) -> Vec<f32> {
    use rayon::prelude::*;
    // FNV-1a of the name.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut out = vec![0f32; n];
    out.par_chunks_mut(1 << 16)
        .enumerate()
        .for_each(|(chunk, values)| {
            // splitmix64 per chunk, Box-Muller per pair.
            let mut state = seed ^ (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut uniform = || {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            };
            for pair in values.chunks_mut(2) {
                let radius = (-2.0 * (1.0 - uniform()).ln()).sqrt();
                let angle = std::f64::consts::TAU * uniform();
                pair[0] = (radius * angle.cos()) as f32 * std;
                if let Some(second) = pair.get_mut(1) {
                    *second = (radius * angle.sin()) as f32 * std;
                }
            }
        });
    out
}

/// Random weights (normal, std 0.02; layer norms at 1 and 0), the same for the same name. For benchmarks of full-size
/// architectures whose real weights can't be had; the app never uses it.
pub struct RandomWeights {
    device: Device,
}

impl RandomWeights {
    pub fn new(device: &Device) -> Self {
        Self {
            device: device.clone(),
        }
    }
}

impl TensorSource for RandomWeights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let context = || format!("could not make random tensor `{name}`");
        let t = if name.contains("norm") && name.ends_with("weight") {
            Tensor::ones(shape, DType::F32, &self.device)
        } else if name.contains("norm") && name.ends_with("bias") {
            Tensor::zeros(shape, DType::F32, &self.device)
        } else {
            Tensor::from_vec(
                seeded_normal(name, shape.iter().product(), 0.02),
                shape,
                &Device::Cpu,
            )
            .and_then(|t| t.to_device(&self.device))
        };
        t.map_err(ModelError::candle(context()))
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn check_all(&self, _expected: &[(String, Vec<usize>)]) -> Result<(), ModelError> {
        Ok(())
    }
}

/// How a [`Dense`] layer multiplies: what [`crate::model::Precision`] resolves to on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulMode {
    /// f32, as PyTorch: exact mode, and everything outside the image tower.
    F32,
    /// Fast mode on the CPU: packed bf16 weights and the CPU's bf16 dot products.
    Bf16Cpu(Bf16Kernel),
    /// Fast mode on a GPU: bf16 weights and candle's bf16 matmul, f32 results.
    Bf16Device,
}

impl MatmulMode {
    /// The mode `precision` runs on `device`, and, when fast mode was asked for but cannot
    /// run here, why: the caller must show that reason (fast mode is never chosen silently,
    /// and its absence is never hidden).
    pub fn resolve(precision: Precision, device: &Device) -> (Self, Option<String>) {
        Self::resolve_with(precision, device.is_cpu(), Bf16Kernel::detect)
    }

    /// [`MatmulMode::resolve`] with the CPU's kernel detection given (tests force the
    /// fallback with it). Detection runs only when fast mode is asked for on the CPU.
    pub fn resolve_with(
        precision: Precision,
        on_cpu: bool,
        detect: impl FnOnce() -> Result<Bf16Kernel, String>,
    ) -> (Self, Option<String>) {
        match precision {
            Precision::Exact => (Self::F32, None),
            Precision::Bf16 if !on_cpu => (Self::Bf16Device, None),
            Precision::Bf16 => match detect() {
                Ok(kernel) => (Self::Bf16Cpu(kernel), None),
                Err(why) => (
                    Self::F32,
                    Some(format!(
                        "fast mode (bf16) is not available: {why}; running exact f32"
                    )),
                ),
            },
        }
    }

    /// The precision that actually runs.
    pub fn precision(self) -> Precision {
        match self {
            Self::F32 => Precision::Exact,
            Self::Bf16Cpu(_) | Self::Bf16Device => Precision::Bf16,
        }
    }

    /// For people: "exact (f32)", "bf16 (AVX-512 BF16)", "bf16 (GPU)".
    pub fn describe(self) -> String {
        match self {
            Self::F32 => "exact (f32)".into(),
            Self::Bf16Cpu(kernel) => format!("bf16 ({})", kernel.describe()),
            Self::Bf16Device => "bf16 (GPU)".into(),
        }
    }
}

/// A linear layer, `act(x @ weightᵀ + bias)`, with its weight prepared once at load for the
/// way it multiplies ([`MatmulMode`]).
#[derive(Clone, Debug)]
pub struct Dense {
    weight: DenseWeight,
    bias: Option<Tensor>,
}

#[derive(Clone, Debug)]
enum DenseWeight {
    /// `(in, out)` f32 on the engine's device, contiguous (candle's `Linear` would broadcast
    /// the weight per batch item instead).
    F32 { weight_t: Tensor },
    /// Packed bf16 in CPU memory.
    Bf16Cpu {
        packed: Arc<PackedBf16>,
        kernel: Bf16Kernel,
    },
    /// `(in, out)` bf16 on a GPU.
    Bf16Device { weight_t: Tensor },
}

impl Dense {
    /// An f32 layer; `weight` is PyTorch's `(out, in)`.
    pub fn new(weight: &Tensor, bias: Option<Tensor>) -> candle_core::Result<Self> {
        Self::with_mode(weight, bias, MatmulMode::F32)
    }

    /// A layer that multiplies in `mode`; `weight` is PyTorch's `(out, in)` f32. In a bf16
    /// mode the f32 weight is not kept: callers that drop theirs hold only the bf16 copy.
    pub fn with_mode(
        weight: &Tensor,
        bias: Option<Tensor>,
        mode: MatmulMode,
    ) -> candle_core::Result<Self> {
        let weight = match mode {
            MatmulMode::F32 => DenseWeight::F32 {
                weight_t: transposed(weight)?,
            },
            MatmulMode::Bf16Device => DenseWeight::Bf16Device {
                weight_t: weight.to_dtype(DType::BF16)?.t()?.contiguous()?,
            },
            MatmulMode::Bf16Cpu(kernel) => {
                let (out_dim, in_dim) = weight.dims2()?;
                let weight = weight.contiguous()?;
                let packed =
                    with_cpu_f32(&weight, |w| PackedBf16::from_out_in(w, out_dim, in_dim))?;
                DenseWeight::Bf16Cpu {
                    packed: Arc::new(packed),
                    kernel,
                }
            }
        };
        Ok(Self { weight, bias })
    }

    /// Reads `{name}.weight` `(out, in)` and `{name}.bias` `(out)`, in f32.
    pub fn load(
        src: &dyn TensorSource,
        name: &str,
        out_dim: usize,
        in_dim: usize,
    ) -> Result<Self, ModelError> {
        let mut scratch = LoadScratch::default();
        Self::load_fused(src, &[name], out_dim, in_dim, MatmulMode::F32, &mut scratch)
    }

    /// Several layers that read the same input (each `{name}.weight` `(out_each, in)` and
    /// `{name}.bias`), fused into one whose outputs are theirs side by side, multiplying in
    /// `mode`: q, k and v in one product. In f32 on the CPU the weights are read through
    /// `scratch` and each transposed straight into its columns (no joined copy first).
    pub fn load_fused(
        src: &dyn TensorSource,
        names: &[&str],
        out_each: usize,
        in_dim: usize,
        mode: MatmulMode,
        scratch: &mut LoadScratch,
    ) -> Result<Self, ModelError> {
        let what = names.join(", ");
        let weight_names: Vec<String> = names.iter().map(|n| format!("{n}.weight")).collect();
        let biases = names
            .iter()
            .map(|name| src.tensor(&format!("{name}.bias"), &[out_each]))
            .collect::<Result<Vec<_>, _>>()?;
        let bias =
            Tensor::cat(&biases, 0).map_err(ModelError::candle(format!("preparing `{what}`")))?;
        if mode == MatmulMode::F32 && src.device().is_cpu() {
            let values = src.transposed_side_by_side(&weight_names, (out_each, in_dim), scratch)?;
            let weight_t = Tensor::from_vec(values, (in_dim, out_each * names.len()), &Device::Cpu)
                .map_err(ModelError::candle(format!("preparing `{what}`")))?;
            return Ok(Self {
                weight: DenseWeight::F32 { weight_t },
                bias: Some(bias),
            });
        }
        let weights = weight_names
            .iter()
            .map(|name| src.tensor(name, &[out_each, in_dim]))
            .collect::<Result<Vec<_>, _>>()?;
        let build = || {
            let weight = Tensor::cat(&weights, 0)?;
            Self::with_mode(&weight, Some(bias), mode)
        };
        build().map_err(ModelError::candle(format!("preparing `{what}`")))
    }

    pub fn out_dim(&self) -> candle_core::Result<usize> {
        match &self.weight {
            DenseWeight::F32 { weight_t } | DenseWeight::Bf16Device { weight_t } => weight_t.dim(1),
            DenseWeight::Bf16Cpu { packed, .. } => Ok(packed.out_dim()),
        }
    }

    fn in_dim(&self) -> candle_core::Result<usize> {
        match &self.weight {
            DenseWeight::F32 { weight_t } | DenseWeight::Bf16Device { weight_t } => weight_t.dim(0),
            DenseWeight::Bf16Cpu { packed, .. } => Ok(packed.in_dim()),
        }
    }

    /// `act(x @ weightᵀ + bias)` over the last dimension of `x`. On the CPU this is one fused
    /// kernel ([`kernels::linear`] in f32, [`bf16::linear`] in bf16); elsewhere candle's ops.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
        let (in_dim, out_dim) = (self.in_dim()?, self.out_dim()?);
        let rows = x.elem_count() / in_dim.max(1);
        let mut out_dims = x.dims().to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = out_dim;
        }
        let on_cpu = x.device().is_cpu() && x.dtype() == DType::F32;
        let with_bias = |run: &dyn Fn(Option<&[f32]>) -> Vec<f32>| match &self.bias {
            Some(b) => with_cpu_f32(b, |b| run(Some(b))),
            None => Ok(run(None)),
        };
        let y = match &self.weight {
            DenseWeight::F32 { weight_t } if on_cpu => {
                let x = x.contiguous()?;
                with_cpu_f32(&x, |x| {
                    with_cpu_f32(weight_t, |w| {
                        with_bias(&|bias| kernels::linear(x, w, bias, (rows, in_dim, out_dim), act))
                    })
                    .flatten()
                })
                .flatten()?
            }
            DenseWeight::Bf16Cpu { packed, kernel } => {
                let x = x
                    .to_device(&Device::Cpu)?
                    .to_dtype(DType::F32)?
                    .contiguous()?;
                with_cpu_f32(&x, |x| {
                    with_bias(&|bias| bf16::linear(*kernel, x, packed, bias, rows, act))
                })
                .flatten()?
            }
            DenseWeight::F32 { weight_t } => {
                let y = x.reshape((rows, in_dim))?.matmul(weight_t)?;
                return self.device_forward(&y, out_dims, act);
            }
            DenseWeight::Bf16Device { weight_t } => {
                let y = x.reshape((rows, in_dim))?.to_dtype(DType::BF16)?;
                let y = y.matmul(weight_t)?.to_dtype(DType::F32)?;
                return self.device_forward(&y, out_dims, act);
            }
        };
        Tensor::from_vec(y, out_dims, &Device::Cpu)
    }

    /// candle's ops after the product `y (rows, out)`: the bias, the activation.
    fn device_forward(
        &self,
        y: &Tensor,
        out_dims: Vec<usize>,
        act: Activation,
    ) -> candle_core::Result<Tensor> {
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y.clone(),
        };
        let y = match act {
            Activation::Identity => y,
            Activation::Relu => y.relu()?,
            Activation::QuickGelu => (&y * candle_nn::ops::sigmoid(&(&y * 1.702)?)?)?,
        };
        y.reshape(out_dims)
    }
}

impl candle_core::Module for Dense {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_act(x, Activation::Identity)
    }
}

/// The transpose of a 2-D f32 weight, contiguous: on the CPU with [`kernels::transpose`] (tiled,
/// on every thread), elsewhere with candle.
fn transposed(weight: &Tensor) -> candle_core::Result<Tensor> {
    if !weight.device().is_cpu() || weight.dtype() != DType::F32 {
        return weight.t()?.contiguous();
    }
    let (rows, cols) = weight.dims2()?;
    let weight = weight.contiguous()?;
    let values = with_cpu_f32(&weight, |w| kernels::transpose(w, rows, cols))?;
    Tensor::from_vec(values, (cols, rows), &Device::Cpu)
}

/// Runs `f` on the elements of a contiguous f32 tensor in CPU memory, without copying.
pub(crate) fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    with_cpu_f32_all(std::slice::from_ref(t), |slices| f(slices[0]))
}

/// [`with_cpu_f32`] on several tensors at once.
pub(crate) fn with_cpu_f32_all<R>(
    ts: &[Tensor],
    f: impl FnOnce(&[&[f32]]) -> R,
) -> candle_core::Result<R> {
    let guards: Vec<_> = ts.iter().map(Tensor::storage_and_layout).collect();
    let mut slices = Vec::with_capacity(ts.len());
    for (storage, layout) in &guards {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("expected a contiguous tensor".into()))?;
        match &**storage {
            candle_core::Storage::Cpu(cpu) => slices.push(&cpu.as_slice::<f32>()?[start..end]),
            _ => {
                return Err(candle_core::Error::Msg(
                    "expected a tensor in CPU memory".into(),
                ));
            }
        }
    }
    Ok(f(&slices))
}

#[cfg(test)]
mod precision_tests {
    use super::*;

    #[test]
    fn exact_is_the_default_and_never_turns_into_fast_mode() {
        assert_eq!(Precision::default(), Precision::Exact);
        let (mode, note) = MatmulMode::resolve(Precision::Exact, &Device::Cpu);
        assert_eq!((mode, note), (MatmulMode::F32, None));
        let detected = std::cell::Cell::new(false);
        let (mode, _) = MatmulMode::resolve_with(Precision::Exact, true, || {
            detected.set(true);
            Ok(Bf16Kernel::Avx512Bf16)
        });
        assert_eq!(mode, MatmulMode::F32);
        assert!(
            !detected.get(),
            "exact mode never even looks for a bf16 kernel"
        );
    }

    #[test]
    fn fast_mode_without_a_kernel_runs_exact_and_says_why() {
        let (mode, note) =
            MatmulMode::resolve_with(Precision::Bf16, true, || Err("no AVX-512 BF16".into()));
        assert_eq!(mode, MatmulMode::F32);
        assert_eq!(mode.precision(), Precision::Exact);
        let note = note.expect("the fallback is never silent");
        assert!(
            note.contains("no AVX-512 BF16") && note.contains("exact"),
            "{note}"
        );
        let (mode, note) =
            MatmulMode::resolve_with(Precision::Bf16, true, || Ok(Bf16Kernel::Avx512Bf16));
        assert_eq!(
            (mode, note),
            (MatmulMode::Bf16Cpu(Bf16Kernel::Avx512Bf16), None)
        );
        assert_eq!(mode.describe(), "bf16 (AVX-512 BF16)");
        let (mode, _) = MatmulMode::resolve_with(Precision::Bf16, false, || Err("unused".into()));
        assert_eq!(mode, MatmulMode::Bf16Device);
    }

    #[test]
    fn a_bf16_layer_matches_the_f32_layer_within_bf16_rounding() {
        let Ok(kernel) = Bf16Kernel::detect() else {
            return;
        };
        let w = Tensor::from_vec(seeded_normal("w", 40 * 24, 0.1), (40, 24), &Device::Cpu).unwrap();
        let b = Tensor::from_vec(seeded_normal("b", 40, 0.1), 40, &Device::Cpu).unwrap();
        let x = Tensor::from_vec(
            seeded_normal("x", 3 * 5 * 24, 1.0),
            (3, 5, 24),
            &Device::Cpu,
        )
        .unwrap();
        let exact = Dense::new(&w, Some(b.clone())).unwrap();
        let fast = Dense::with_mode(&w, Some(b), MatmulMode::Bf16Cpu(kernel)).unwrap();
        assert_eq!((fast.in_dim().unwrap(), fast.out_dim().unwrap()), (24, 40));
        let y_exact = exact.forward_act(&x, Activation::QuickGelu).unwrap();
        let y_fast = fast.forward_act(&x, Activation::QuickGelu).unwrap();
        assert_eq!(y_fast.dims(), &[3, 5, 40]);
        let diff = (y_exact - y_fast)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // 24 products of values ~0.1 x ~1, each off by at most 2^-8 relative twice.
        assert!(diff > 0.0 && diff < 0.02, "{diff}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use candle_core::{DType, Device, Tensor};

    use super::*;
    use crate::model::clip::{ClipVision, ClipVisionConfig};

    fn tiny_clip() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_clip")
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all()
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1())
            .unwrap()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn save(dir: &Path, tensors: &[(&str, Tensor)]) -> PathBuf {
        let path = dir.join("w.safetensors");
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| ((*n).to_owned(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    /// Every tensor of the tiny CLIP folder (text tower included) reads back bit for bit as
    /// candle's own safetensors loader reads it.
    #[test]
    fn a_tensor_read_by_name_equals_candles_own_load() {
        let path = tiny_clip().join("model.safetensors");
        let file = WeightFile::open(&path, &Device::Cpu).unwrap();
        let reference = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(file.shapes().len(), reference.len());
        for (name, expected) in &reference {
            let shape = expected.dims().to_vec();
            let read = file.read_f32(name, &shape).unwrap();
            assert_eq!(bits(&read), bits(&values(expected)), "{name}");
            let tensor = file.tensor(name, &shape).unwrap();
            assert_eq!(tensor.dims(), expected.dims(), "{name}");
            assert_eq!(tensor.dtype(), DType::F32);
        }
        // Each tensor was asked for twice (read_f32, then tensor).
        assert_eq!(file.bytes_read(), 2 * file.bytes_under(""));
    }

    /// Building the vision tower reads its tensors and nothing else: not the text tower, not
    /// `text_projection`, not `logit_scale`.
    #[test]
    fn the_vision_tower_reads_only_its_own_tensors() {
        let dir = tiny_clip();
        let cfg = ClipVisionConfig::from_hf_json(
            &std::fs::read_to_string(dir.join("config.json")).unwrap(),
        )
        .unwrap();
        let file = WeightFile::open(&dir.join("model.safetensors"), &Device::Cpu).unwrap();
        assert!(
            file.bytes_under("text_model.") > 0,
            "the fixture has a text tower"
        );
        ClipVision::new(&file, &cfg).unwrap();
        let expected: u64 = cfg
            .expected_tensors()
            .iter()
            .map(|(_, shape)| 4 * shape.iter().product::<usize>() as u64)
            .sum();
        assert_eq!(file.bytes_read(), expected);
        let not_vision = file.bytes_under("text_model.")
            + file.bytes_under("text_projection.")
            + file.bytes_under("logit_scale");
        assert_eq!(file.bytes_read() + not_vision, file.bytes_under(""));
    }

    #[test]
    fn missing_and_misshaped_tensors_fail_naming_the_tensor_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let path = save(dir.path(), &[("a.weight", t)]);
        let file = WeightFile::open(&path, &Device::Cpu).unwrap();
        let shown = path.display().to_string();
        let err = file.tensor("b.weight", &[2, 3]).unwrap_err();
        assert!(matches!(err, ModelError::MissingTensor { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("`b.weight`") && text.contains(&shown),
            "{text}"
        );
        let err = file.tensor("a.weight", &[3, 2]).unwrap_err();
        assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("`a.weight`") && text.contains(&shown),
            "{text}"
        );
        let err = file
            .check_all(&[("a.weight".into(), vec![2, 3]), ("c".into(), vec![1])])
            .unwrap_err();
        assert!(err.to_string().contains("`c`"), "{err}");
        // Nothing was read by the failed requests.
        assert_eq!(file.bytes_read(), 0);
        assert_eq!(
            file.read_f32("a.weight", &[2, 3]).unwrap(),
            [0., 1., 2., 3., 4., 5.]
        );
        assert_eq!(file.bytes_read(), 24);
    }

    /// A file cut short, or with a header that doesn't match its bytes, fails when opened.
    #[test]
    fn truncated_or_inconsistent_files_fail_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap();
        let path = save(dir.path(), &[("w", t)]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let err = WeightFile::open(&path, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`w`") && err.contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::write(&path, &bytes[..4]).unwrap();
        assert!(WeightFile::open(&path, &Device::Cpu).is_err());
        // A shape that doesn't fit the byte range.
        let header = br#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&[0u8; 8]);
        std::fs::write(&path, &file).unwrap();
        let err = WeightFile::open(&path, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not hold"), "{err}");
    }

    /// f16 and bf16 tensors read as the f32 values candle converts them to.
    #[test]
    fn half_precision_tensors_read_as_f32() {
        let dir = tempfile::tempdir().unwrap();
        let base =
            Tensor::new(&[1.5f32, -0.333, 65504.0, 1e-6, -0.0, 3.0e-5], &Device::Cpu).unwrap();
        let f16 = base.to_dtype(DType::F16).unwrap();
        let bf16 = base.to_dtype(DType::BF16).unwrap();
        let path = save(dir.path(), &[("h", f16.clone()), ("b", bf16.clone())]);
        let file = WeightFile::open(&path, &Device::Cpu).unwrap();
        assert_eq!(file.dtype("h"), Some("F16"));
        assert_eq!(
            bits(&file.read_f32("h", &[6]).unwrap()),
            bits(&values(&f16))
        );
        assert_eq!(
            bits(&file.read_f32("b", &[6]).unwrap()),
            bits(&values(&bf16))
        );
    }

    /// Every f16 bit pattern converts as candle (the `half` crate) converts it.
    #[test]
    fn every_f16_converts_exactly() {
        let raw: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
        let expected = Tensor::from_raw_buffer(&raw, DType::F16, &[1 << 16], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (h, want) in (0..=u16::MAX).zip(expected) {
            let got = f16_to_f32(h);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{h:#06x}: {got} != {want}"
            );
        }
    }

    /// `tensor` flushes subnormal weights to zero as `kernels::flush_subnormals` does;
    /// `read_f32` returns what is stored.
    #[test]
    fn subnormal_weights_are_flushed_like_the_kernels_flush_them() {
        let dir = tempfile::tempdir().unwrap();
        let stored = vec![1.0f32, 1e-40, -1e-40, -0.0, f32::MIN_POSITIVE, 0.5e-38, 7.0];
        let t = Tensor::new(stored.as_slice(), &Device::Cpu).unwrap();
        let path = save(dir.path(), &[("w", t)]);
        let file = WeightFile::open(&path, &Device::Cpu).unwrap();
        assert_eq!(bits(&file.read_f32("w", &[7]).unwrap()), bits(&stored));
        let mut expected = stored.clone();
        kernels::flush_subnormals(&mut expected);
        let got = values(&file.tensor("w", &[7]).unwrap());
        assert_eq!(bits(&got), bits(&expected));
        assert_eq!(got[3].to_bits(), (-0.0f32).to_bits(), "-0 is not subnormal");
    }

    /// A source that has only [`TensorSource`]'s default `transposed_side_by_side`.
    struct Plain<'a>(&'a WeightFile);

    impl TensorSource for Plain<'_> {
        fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
            self.0.tensor(name, shape)
        }
        fn device(&self) -> &Device {
            self.0.device()
        }
        fn check_all(&self, expected: &[(String, Vec<usize>)]) -> Result<(), ModelError> {
            self.0.check_all(expected)
        }
    }

    /// Reading through one scratch, tensor after tensor (larger, smaller, fewer, stored in
    /// f32 and in bf16, with subnormals), gives the same values as fresh tensors transposed.
    #[test]
    fn weights_read_through_a_reused_scratch_equal_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let make = |rows: usize, cols: usize, seed: u64, dtype: DType| {
            let mut v = kernels::tests::values(rows * cols, seed);
            v[0] = 1e-40;
            Tensor::from_vec(v, (rows, cols), &Device::Cpu)
                .and_then(|t| t.to_dtype(dtype))
                .unwrap()
        };
        let path = save(
            dir.path(),
            &[
                ("q", make(6, 5, 1, DType::F32)),
                ("k", make(6, 5, 2, DType::F32)),
                ("v", make(6, 5, 3, DType::BF16)),
                ("fc1", make(20, 5, 4, DType::F32)),
                ("fc2", make(5, 20, 5, DType::F32)),
            ],
        );
        let file = WeightFile::open(&path, &Device::Cpu).unwrap();
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut scratch = LoadScratch::default();
        for (parts, shape) in [
            (names(&["q", "k", "v"]), (6, 5)),
            (names(&["fc1"]), (20, 5)),
            (names(&["fc2"]), (5, 20)),
            (names(&["k", "q"]), (6, 5)),
        ] {
            let got = file
                .transposed_side_by_side(&parts, shape, &mut scratch)
                .unwrap();
            let fresh = Plain(&file)
                .transposed_side_by_side(&parts, shape, &mut LoadScratch::default())
                .unwrap();
            assert_eq!(bits(&got), bits(&fresh), "{parts:?}");
            assert_eq!(got.len(), shape.0 * shape.1 * parts.len());
            assert!(got.iter().all(|v| v.is_normal() || *v == 0.0), "{parts:?}");
        }
    }
}
