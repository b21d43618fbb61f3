//! The device, queue and compiled pipelines, created once and shared by evaluators.

use crate::GpuError;
use std::sync::{Arc, Mutex};

/// WGSL of the batch likelihood (bindings documented in the file).
const LOGLIKE_WGSL: &str = include_str!("../../../shaders/sustain_loglike.wgsl");

/// Size in bytes of the shader's `Params` uniform.
pub(crate) const PARAMS_BYTES: u64 = 64;

/// An adapter, its device and queue, and the likelihood pipelines.
///
/// Create it once and share it (`Arc`) between evaluators: creating a device and
/// compiling the shader cost far more than an evaluation.
pub struct GpuContext {
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) layout: wgpu::BindGroupLayout,
    /// Entry point `loglike_total`: one tile sum per (candidate, 256 subjects).
    pub(crate) total: wgpu::ComputePipeline,
    /// Entry point `loglike_subjects`: one value per (candidate, subject).
    pub(crate) subjects: wgpu::ComputePipeline,
    /// Entry point `stage_posteriors`: posterior sums per (group, subtype, stage, subject).
    pub(crate) posteriors: wgpu::ComputePipeline,
    /// Entry point `prefix_total`: `total` for the prefix models (mixture, ordinal).
    pub(crate) prefix_total: wgpu::ComputePipeline,
    /// Entry point `prefix_subjects`: `subjects` for the prefix models.
    pub(crate) prefix_subjects: wgpu::ComputePipeline,
    /// Device errors not caught by an error scope (collected instead of panicking).
    errors: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.description())
            .finish()
    }
}

/// Preference order of adapters: real GPUs before software, native APIs before GL.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (device, backend)
}

impl GpuContext {
    /// Finds the best adapter with compute shaders (discrete, integrated, virtual, then
    /// software such as Mesa's lavapipe "llvmpipe"; Vulkan, Metal or DX12 before GL),
    /// creates its device with the adapter's own limits, and compiles the pipelines.
    ///
    /// The usual wgpu environment variables apply: `WGPU_BACKEND` (e.g. `vulkan`) limits
    /// the backends, `WGPU_ADAPTER_NAME` picks the adapter whose name contains it.
    ///
    /// Returns [`GpuError::NoAdapter`] when there is no usable adapter, so that the
    /// caller can fall back to the CPU with a one-line message.
    pub fn new() -> Result<Self, GpuError> {
        let wanted_name = std::env::var("WGPU_ADAPTER_NAME")
            .ok()
            .map(|s| s.to_lowercase());
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        // Native APIs first; GL only when they offer nothing (and WGPU_BACKEND allows it).
        let allowed = if std::env::var_os("WGPU_BACKEND").is_some() {
            desc.backends
        } else {
            wgpu::Backends::all()
        };
        let mut seen = Vec::new();
        let mut chosen = None;
        for group in [wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY] {
            let backends = allowed & group;
            if backends.is_empty() {
                continue;
            }
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                backends,
                ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
            });
            let mut usable: Vec<(wgpu::Adapter, wgpu::AdapterInfo)> = Vec::new();
            for adapter in pollster::block_on(instance.enumerate_adapters(backends)) {
                let info = adapter.get_info();
                seen.push(format!("{} ({:?})", info.name, info.backend));
                let compute = adapter
                    .get_downlevel_capabilities()
                    .flags
                    .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
                let named = wanted_name
                    .as_ref()
                    .is_none_or(|w| info.name.to_lowercase().contains(w.as_str()));
                if compute && named {
                    usable.push((adapter, info));
                }
            }
            usable.sort_by_key(|(_, info)| rank(info));
            if let Some(best) = usable.into_iter().next() {
                chosen = Some(best);
                break;
            }
        }
        let Some((adapter, info)) = chosen else {
            let why = if seen.is_empty() {
                "no adapter found (install a GPU driver, or Mesa's lavapipe for a software one)"
                    .to_string()
            } else {
                format!(
                    "none of the adapters supports compute shaders or matches WGPU_ADAPTER_NAME: {}",
                    seen.join(", ")
                )
            };
            return Err(GpuError::NoAdapter(why));
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sustain"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let errors = Arc::clone(&errors);
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                if let Ok(mut list) = errors.lock() {
                    list.push(e.to_string());
                }
            }));
        }

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sustain_loglike.wgsl"),
            source: wgpu::ShaderSource::Wgsl(LOGLIKE_WGSL.into()),
        });
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("sustain_loglike"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
                    },
                    count: None,
                },
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, true),
                storage(5, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("sustain_loglike"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    // Every workgroup variable is written before it is read.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        };
        let total = pipeline("loglike_total");
        let subjects = pipeline("loglike_subjects");
        let posteriors = pipeline("stage_posteriors");
        let prefix_total = pipeline("prefix_total");
        let prefix_subjects = pipeline("prefix_subjects");
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(e.to_string()));
        }
        Ok(Self {
            adapter,
            info,
            device,
            queue,
            limits,
            layout,
            total,
            subjects,
            posteriors,
            prefix_total,
            prefix_subjects,
            errors,
        })
    }

    /// The adapter's name, backend, device type and driver.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The adapter.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    /// One line naming the adapter and backend, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)
    /// on Vulkan (Cpu)`.
    pub fn description(&self) -> String {
        format!(
            "{} on {} ({:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Whether the adapter is a software rasteriser on the CPU (such as llvmpipe): it
    /// works, but is rarely faster than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The device limits in effect (the adapter's best).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Returns and clears the device errors collected since the last call.
    pub(crate) fn take_errors(&self) -> Result<(), GpuError> {
        let mut list = self
            .errors
            .lock()
            .map_err(|_| GpuError::Runtime("error list poisoned".into()))?;
        if list.is_empty() {
            Ok(())
        } else {
            let msg = list.join("; ");
            list.clear();
            Err(GpuError::Runtime(msg))
        }
    }
}
