//! Where tensors come from: a safetensors file checked name by name and shape by shape, or —
//! for the speed benchmark only — random values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use super::ModelError;
use super::kernels::{self, Activation};

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

/// Random weights (normal, std 0.02; layer norms at 1 and 0). For benchmarks of full-size
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
            Tensor::randn(0f32, 0.02, shape, &self.device)
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

/// A linear layer stored for fast CPU inference: the weight transposed once to `(in, out)`,
/// and every leading dimension folded into rows so each call is a single 2-D matmul
/// (candle's `Linear` broadcasts the weight per batch item instead).
#[derive(Clone, Debug)]
pub struct Dense {
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Dense {
    /// `weight` is PyTorch's `(out, in)`.
    pub fn new(weight: &Tensor, bias: Option<Tensor>) -> candle_core::Result<Self> {
        Ok(Self {
            weight_t: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// Reads `{name}.weight` `(out, in)` and `{name}.bias` `(out)`.
    pub fn load(
        src: &dyn TensorSource,
        name: &str,
        out_dim: usize,
        in_dim: usize,
    ) -> Result<Self, ModelError> {
        let w = src.tensor(&format!("{name}.weight"), &[out_dim, in_dim])?;
        let b = src.tensor(&format!("{name}.bias"), &[out_dim])?;
        Self::new(&w, Some(b)).map_err(ModelError::candle(format!("preparing `{name}`")))
    }

    /// Several layers that read the same input, fused into one (outputs concatenated).
    pub fn fuse(parts: &[Dense]) -> candle_core::Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight_t).collect();
        let bias = match parts
            .iter()
            .map(|p| p.bias.as_ref())
            .collect::<Option<Vec<&Tensor>>>()
        {
            Some(b) => Some(Tensor::cat(&b, 0)?),
            None => None,
        };
        Ok(Self {
            weight_t: Tensor::cat(&weights, 1)?.contiguous()?,
            bias,
        })
    }

    pub fn out_dim(&self) -> candle_core::Result<usize> {
        self.weight_t.dim(1)
    }
}

impl Dense {
    /// `act(x @ weightᵀ + bias)` over the last dimension of `x`. On the CPU in f32 this is one
    /// fused kernel ([`kernels::linear`]); elsewhere candle's ops.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
        let (in_dim, out_dim) = self.weight_t.dims2()?;
        let rows = x.elem_count() / in_dim.max(1);
        let mut out_dims = x.dims().to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = out_dim;
        }
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            let x = x.contiguous()?;
            let y = with_cpu_f32(&x, |x| {
                with_cpu_f32(&self.weight_t, |w| {
                    let run = |bias: Option<&[f32]>| {
                        kernels::linear(x, w, bias, (rows, in_dim, out_dim), act)
                    };
                    match &self.bias {
                        Some(b) => with_cpu_f32(b, |b| run(Some(b))),
                        None => Ok(run(None)),
                    }
                })
                .flatten()
            })
            .flatten()?;
            return Tensor::from_vec(y, out_dims, &Device::Cpu);
        }
        let y = x.reshape((rows, in_dim))?.matmul(&self.weight_t)?;
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
