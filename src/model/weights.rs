//! Where tensors come from: a safetensors file checked name by name and shape by shape, or —
//! for the speed benchmark only — random values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::safetensors::MmapedSafetensors;
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
}

/// A memory-mapped safetensors file.
pub struct WeightFile {
    path: PathBuf,
    tensors: MmapedSafetensors,
    device: Device,
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
        // SAFETY: the file is mapped read-only; geoloupe never writes a weights file in place
        // (installs go through a temporary file and a rename), so the mapping stays valid.
        #[allow(unsafe_code)]
        let tensors = unsafe { MmapedSafetensors::new(path) }.map_err(|e| ModelError::Invalid {
            what: "safetensors file".into(),
            reason: e.to_string(),
            path: path.to_owned(),
        })?;
        Ok(Self {
            path: path.to_owned(),
            tensors,
            device: device.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor name and shape in the file.
    pub fn shapes(&self) -> HashMap<String, Vec<usize>> {
        self.tensors
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec()))
            .collect()
    }

    fn shape_of(&self, name: &str) -> Result<Vec<usize>, ModelError> {
        self.tensors
            .get(name)
            .map(|view| view.shape().to_vec())
            .map_err(|_| ModelError::MissingTensor {
                name: name.into(),
                file: self.path.clone(),
            })
    }
}

impl TensorSource for WeightFile {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let actual = self.shape_of(name)?;
        if actual != shape {
            return Err(ModelError::ShapeMismatch {
                name: name.into(),
                expected: shape.to_vec(),
                actual,
                file: self.path.clone(),
            });
        }
        self.tensors
            .load(name, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(without_subnormals)
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
            let actual = self.shape_of(name)?;
            if &actual != shape {
                return Err(ModelError::ShapeMismatch {
                    name: name.clone(),
                    expected: shape.clone(),
                    actual,
                    file: self.path.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The tensor with its subnormal values set to zero ([`kernels::flush_subnormals`] says why);
/// the same tensor when it has none.
fn without_subnormals(t: Tensor) -> candle_core::Result<Tensor> {
    let has_subnormals = with_cpu_f32(&t.contiguous()?, |v| v.iter().any(|x| x.is_subnormal()))?;
    if !has_subnormals {
        return Ok(t);
    }
    let mut values = t.flatten_all()?.to_vec1::<f32>()?;
    kernels::flush_subnormals(&mut values);
    Tensor::from_vec(values, t.shape(), &Device::Cpu)
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
        match precision {
            Precision::Exact => (Self::F32, None),
            Precision::Bf16 if !device.is_cpu() => (Self::Bf16Device, None),
            Precision::Bf16 => match Bf16Kernel::detect() {
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
                weight_t: weight.t()?.contiguous()?,
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
        Self::load_fused(src, &[name], out_dim, in_dim, MatmulMode::F32)
    }

    /// Several layers that read the same input (each `{name}.weight` `(out_each, in)` and
    /// `{name}.bias`), fused into one whose outputs are theirs side by side, multiplying in
    /// `mode`: q, k and v in one product.
    pub fn load_fused(
        src: &dyn TensorSource,
        names: &[&str],
        out_each: usize,
        in_dim: usize,
        mode: MatmulMode,
    ) -> Result<Self, ModelError> {
        let what = names.join(", ");
        let mut weights = Vec::with_capacity(names.len());
        let mut biases = Vec::with_capacity(names.len());
        for name in names {
            weights.push(src.tensor(&format!("{name}.weight"), &[out_each, in_dim])?);
            biases.push(src.tensor(&format!("{name}.bias"), &[out_each])?);
        }
        let build = || {
            let weight = Tensor::cat(&weights, 0)?;
            let bias = Tensor::cat(&biases, 0)?;
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
                return self.device_forward(x, weight_t, rows, in_dim, out_dims, act);
            }
            DenseWeight::Bf16Device { weight_t } => {
                let y = x.reshape((rows, in_dim))?.to_dtype(DType::BF16)?;
                let y = y.matmul(weight_t)?.to_dtype(DType::F32)?;
                return self.device_forward(&y, weight_t, rows, out_dim, out_dims, act);
            }
        };
        Tensor::from_vec(y, out_dims, &Device::Cpu)
    }

    /// candle's ops: the product (unless `weight_t` is bf16: then `x` is already the product,
    /// `(rows, out)`), the bias, the activation.
    fn device_forward(
        &self,
        x: &Tensor,
        weight_t: &Tensor,
        rows: usize,
        in_dim: usize,
        out_dims: Vec<usize>,
        act: Activation,
    ) -> candle_core::Result<Tensor> {
        let y = if weight_t.dtype() == DType::BF16 {
            x.clone()
        } else {
            x.reshape((rows, in_dim))?.matmul(weight_t)?
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
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

/// Runs `f` on the elements of a contiguous f32 tensor in CPU memory, without copying.
pub(crate) fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("expected a contiguous tensor".into()))?;
    match &*storage {
        candle_core::Storage::Cpu(cpu) => Ok(f(&cpu.as_slice::<f32>()?[start..end])),
        _ => Err(candle_core::Error::Msg(
            "expected a tensor in CPU memory".into(),
        )),
    }
}
