//! Where tensors come from: a safetensors file checked name by name and shape by shape, or —
//! for the speed benchmark only — random values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use super::ModelError;

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
