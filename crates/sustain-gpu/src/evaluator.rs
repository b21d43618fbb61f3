//! [`GpuEvaluator`]: the batch likelihood with the data resident on the device.

use crate::context::{GpuContext, PARAMS_BYTES};
use crate::{GpuError, SUBJECTS_PER_WORKGROUP};
use bytemuck::{Pod, Zeroable};
use ndarray::Array3;
use std::sync::Arc;
use sustain_model::batch::common_subtypes;
use sustain_model::likelihood::neumaier_sum;
use sustain_model::{
    BatchEvaluator, Dataset, EventOrder, EventSet, Likelihood, MissingConvention, Mixture,
    ModelError, PrefixModel, Sequence, StageModel, SubtypeOf, SustainModel,
};

/// `log(0)` as the shader writes it: finite, so that no infinities reach the device.
const NEG: f32 = -1.0e30;
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
/// Candidates the buffers hold before the first call needs more.
pub(crate) const DEFAULT_CAPACITY: usize = 1024;
/// Subtypes per candidate the buffers hold before the first call needs more.
pub(crate) const DEFAULT_SUBTYPES: usize = 3;
/// Largest output/readback buffer allocated, in bytes (per-subject batches are split).
const MAX_OUT_BYTES: u64 = 256 << 20;
/// Loop iterations one shader invocation may run on a software adapter. llvmpipe
/// (Mesa's software Vulkan) caps the loop iterations of an invocation at 65,535 in
/// all and silently leaves every loop past that (wrong results, no error); the
/// count below is an upper bound (exit tests included), so this keeps a margin.
const SOFTWARE_LOOP_BUDGET: u64 = 65_000;
/// Stages and biomarkers per stage-value tile of the shader (`KT`, `BT`).
const SHADER_TILE: usize = 16;

/// The shader's `Params` uniform (`shaders/sustain_loglike.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Params {
    n_subjects: u32,
    stride: u32,
    n_biomarkers: u32,
    n_events: u32,
    cand_base: u32,
    cand_stride: u32,
    max_subtypes: u32,
    pos_words: u32,
    n_tiles: u32,
    use_others: u32,
    z_min: f32,
    log_f_others: f32,
    tile_base: u32,
    out_stride: u32,
    n_cand: u32,
    pad: u32,
}
const _: () = assert!(std::mem::size_of::<Params>() as u64 == PARAMS_BYTES);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// One sum per (candidate, tile of 256 subjects).
    Total,
    /// One value per (candidate, subject).
    Subjects,
}

/// Which model family's kernels an evaluator runs.
pub(crate) enum Kernel {
    /// The z-score model: `loglike_*` and `stage_posteriors` over the uploaded values.
    ZScore(EventSet),
    /// A prefix model (event-based mixture, ordinal): `prefix_*` over the uploaded
    /// event deltas; staging posteriors are the model's own (CPU, f64).
    Prefix(Arc<PrefixModel>),
}

/// Where a dispatch's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// Copied to the host and returned.
    Host,
    /// Copied to the `others` buffer (E-M seam), not read back.
    Others,
}

/// Neumaier's compensated sum (as `sustain_model::likelihood::neumaier_sum`), one term
/// at a time.
struct Neumaier {
    sum: f64,
    comp: f64,
}

impl Neumaier {
    fn new(start: f64) -> Self {
        Self {
            sum: start,
            comp: 0.0,
        }
    }
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.comp += (self.sum - t) + v;
        } else {
            self.comp += (v - t) + self.sum;
        }
        self.sum = t;
    }
    fn total(&self) -> f64 {
        self.sum + self.comp
    }
}

fn log_f32(f: f64) -> f32 {
    if f > 0.0 {
        (f.ln() as f32).max(NEG)
    } else {
        NEG
    }
}

/// What an evaluator uploads: the kernel's two data bindings (see the shader) and
/// the per-subject constants the host adds.
pub(crate) struct DeviceData<'a> {
    pub(crate) kernel: Kernel,
    pub(crate) n_subjects: usize,
    pub(crate) n_tiles: usize,
    /// Binding 1 (`xw`), bytes.
    pub(crate) binding1: &'a [u8],
    /// Binding 2 (`model`).
    pub(crate) binding2: &'a [u32],
    /// Per subject `log p(x_m) - g[m]`.
    pub(crate) subject_const: Vec<f64>,
    /// See [`GpuEvaluator::loops_per_subtype`].
    pub(crate) loops_per_subtype: u64,
}

/// Subject tiles of `n_subjects`, within the device's workgroup limit.
pub(crate) fn tiles_for(ctx: &GpuContext, n_subjects: usize) -> Result<usize, GpuError> {
    let n_tiles = n_subjects.div_ceil(SUBJECTS_PER_WORKGROUP);
    let most = ctx.limits().max_compute_workgroups_per_dimension;
    if n_tiles > most as usize {
        return Err(GpuError::Runtime(format!(
            "{n_subjects} subjects need {n_tiles} workgroups, the device allows {most}"
        )));
    }
    Ok(n_tiles)
}

/// The GPU implementation of [`BatchEvaluator`].
///
/// Construction uploads the data once: values as f32 pairs `(x w, w)` with
/// `w = sqrt(1/2)/sigma` (0 for missing), biomarker-major and padded to whole
/// workgroups of 256 subjects, and the event set (per-biomarker event indices and
/// thresholds, `z_max`; `z_min` as a uniform). Each call uploads only the candidates
/// (per candidate the number of subtypes, the log-fractions as f32 and each subtype's
/// event positions packed two u16 to a word) into buffers allocated for a maximum
/// batch, which grow only when a larger batch arrives; repeated calls with the same
/// batch size allocate nothing on the device.
///
/// Numbers: the device computes `g[m] = log sum_s f_s sum_k exp(-0.5 sum_obs ((x -
/// mu)/sigma)^2)` in f32 and sums it per workgroup of 256 subjects; the host adds the per-subject
/// constants (`-ln(N+1)`, the `log(2 pi)` and `ln sigma` terms of observed values and
/// the missing-value constants of the [`MissingConvention`]) in f64. Results agree with
/// [`sustain_model::SerialEvaluator`] to about 1e-7 relative (totals, 50,000 subjects
/// included) and 3e-7 (per-subject values).
pub struct GpuEvaluator {
    ctx: Arc<GpuContext>,
    kernel: Kernel,
    order: EventOrder,
    n_subjects: usize,
    n_tiles: usize,
    /// Padded subjects, `n_tiles * 256`.
    stride: usize,
    pos_words: usize,
    /// Per subject `log p(x_m) - g[m]`, f64.
    subject_const: Vec<f64>,
    /// Sum of `subject_const`, compensated.
    const_total: f64,
    params: wgpu::Buffer,
    xw: wgpu::Buffer,
    model: wgpu::Buffer,
    others: wgpu::Buffer,
    cand: wgpu::Buffer,
    out: wgpu::Buffer,
    staging: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// Host copy of the candidate records of one dispatch (reused between calls).
    packed: Vec<u32>,
    /// The last dispatch's output, read back (reused between calls).
    raw: Vec<f32>,
    /// Largest number of candidates one dispatch may hold (workgroup-count limit).
    max_dispatch: usize,
    /// Largest storage binding / buffer, bytes.
    max_binding: u64,
    /// Upper bound of the shader loop iterations of one subtype of one candidate,
    /// per invocation (see [`SOFTWARE_LOOP_BUDGET`]).
    loops_per_subtype: u64,
    /// The loop budget of one invocation: [`SOFTWARE_LOOP_BUDGET`] on a software
    /// adapter, none otherwise.
    loop_budget: Option<u64>,
}

// Evaluators move between threads (one per cross-validation fold, say).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GpuEvaluator>();
    send_sync::<GpuContext>();
};

impl std::fmt::Debug for GpuEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuEvaluator")
            .field("adapter", &self.ctx.description())
            .field("n_subjects", &self.n_subjects)
            .field("n_events", &self.order.n_events())
            .field("candidate_words", &(self.cand.size() / 4))
            .finish()
    }
}

impl GpuEvaluator {
    /// Uploads `data` for the model `events` under `convention`.
    pub fn new(
        ctx: Arc<GpuContext>,
        events: EventSet,
        data: &Dataset,
        convention: MissingConvention,
    ) -> Result<Self, GpuError> {
        let lik = Likelihood::new(events, data, convention)?;
        Self::from_likelihood(ctx, &lik, data)
    }

    /// Uploads the data of prepared `likelihood`. `data` must be the data set the
    /// likelihood was built from (`Likelihood` keeps its values private); a data set
    /// whose per-subject constants differ is rejected.
    pub fn from_likelihood(
        ctx: Arc<GpuContext>,
        likelihood: &Likelihood,
        data: &Dataset,
    ) -> Result<Self, GpuError> {
        Self::with_capacity(ctx, likelihood, data, DEFAULT_CAPACITY, DEFAULT_SUBTYPES)
    }

    /// As [`Self::from_likelihood`], with buffers sized for batches of `max_batch`
    /// candidates of up to `max_subtypes` subtypes from the start.
    pub fn with_capacity(
        ctx: Arc<GpuContext>,
        likelihood: &Likelihood,
        data: &Dataset,
        max_batch: usize,
        max_subtypes: usize,
    ) -> Result<Self, GpuError> {
        let events = likelihood.events().clone();
        let nb = events.n_biomarkers();
        let n_events = events.n_events();
        let m_count = data.n_subjects();
        if data.n_biomarkers() != nb {
            return Err(ModelError::BiomarkerCount {
                data: data.n_biomarkers(),
                model: nb,
            }
            .into());
        }
        if m_count != likelihood.n_subjects() {
            return Err(GpuError::Model(ModelError::Shape(format!(
                "the data has {m_count} subjects, the likelihood {}",
                likelihood.n_subjects()
            ))));
        }
        let n_tiles = tiles_for(&ctx, m_count)?;
        let stride = n_tiles * SUBJECTS_PER_WORKGROUP;
        let sigma = events.sigma();
        let w = (0.5f64).sqrt() / sigma;
        let values = data.values();

        // Values, biomarker-major, and the per-subject constants.
        let mut xw = vec![[0.0f32; 2]; nb * stride];
        let mut subject_const = Vec::with_capacity(m_count);
        let lik_const = likelihood.subject_constants();
        let log_stages = (events.n_stages() as f64).ln();
        for m in 0..m_count {
            let mut half_sq = 0.0;
            let mut own = -log_stages;
            for b in 0..nb {
                let v = values[[m, b]];
                if v.is_nan() {
                    if likelihood.convention() == MissingConvention::Reference {
                        let t = (1.0 / (events.z_max(b) - events.z_min())).ln();
                        own += -HALF_LN_2PI - 0.5 * t * t;
                    }
                } else {
                    let xs = v / sigma;
                    half_sq += 0.5 * xs * xs;
                    own += -HALF_LN_2PI - sigma.ln();
                    xw[b * stride + m] = [(v * w) as f32, w as f32];
                }
            }
            // The likelihood's constant includes -x^2/2, which the device keeps inside
            // its sum of squares: add it back (f64, no cancellation to speak of).
            let c = lik_const[m] + half_sq;
            if (c - own).abs() > 1e-9 * (1.0 + own.abs()) {
                return Err(GpuError::Model(ModelError::Shape(format!(
                    "subject {m} of the data does not match the likelihood's data"
                ))));
            }
            subject_const.push(c);
        }

        // The event set.
        let mut model: Vec<u32> = Vec::with_capacity(nb + 1 + 2 * n_events + nb);
        let mut start = 0u32;
        model.push(0);
        for b in 0..nb {
            start += events.biomarker_events(b).len() as u32;
            model.push(start);
        }
        for b in 0..nb {
            model.extend(events.biomarker_events(b).iter().map(|&e| e as u32));
        }
        for b in 0..nb {
            model.extend(
                events
                    .biomarker_events(b)
                    .iter()
                    .map(|&e| (events.event(e).z as f32).to_bits()),
            );
        }
        model.extend(events.z_max_all().iter().map(|&z| (z as f32).to_bits()));

        // Per stage tile: the biomarker-tile loop; per biomarker tile one iteration,
        // the curve walk of `fill_quad` (the biomarker's knots plus one exit test per
        // `curve_at` call) and the row loops (4 rows an iteration; then the
        // remainder), each with its exit test.
        let max_events = (0..nb)
            .map(|b| events.biomarker_events(b).len())
            .max()
            .unwrap_or(0);
        let per_btile = 1 + (max_events + 1 + 5) + (SHADER_TILE / 4 + 2);
        let loops_per_subtype = (events.n_stages().div_ceil(SHADER_TILE)
            * (1 + nb.div_ceil(SHADER_TILE) * per_btile)) as u64
            + 1;
        Self::upload(
            ctx,
            DeviceData {
                kernel: Kernel::ZScore(events),
                n_subjects: m_count,
                n_tiles,
                binding1: bytemuck::cast_slice(&xw),
                binding2: &model,
                subject_const,
                loops_per_subtype,
            },
            max_batch,
            max_subtypes,
        )
    }

    /// Uploads `data` and allocates the buffers for batches of `max_batch`
    /// candidates of up to `max_subtypes` subtypes.
    pub(crate) fn upload(
        ctx: Arc<GpuContext>,
        data: DeviceData<'_>,
        max_batch: usize,
        max_subtypes: usize,
    ) -> Result<Self, GpuError> {
        let DeviceData {
            kernel,
            n_subjects,
            n_tiles,
            binding1,
            binding2,
            subject_const,
            loops_per_subtype,
        } = data;
        let order = match &kernel {
            Kernel::ZScore(events) => events.order().clone(),
            Kernel::Prefix(model) => model.order().clone(),
        };
        let n_events = order.n_events();
        let stride = n_tiles * SUBJECTS_PER_WORKGROUP;
        let const_total = neumaier_sum(&subject_const);
        let limits = ctx.limits().clone();
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let data_bytes = (binding1.len() as u64).max(binding2.len() as u64 * 4);
        if data_bytes > max_binding {
            return Err(GpuError::Runtime(format!(
                "the data needs a {data_bytes}-byte buffer, the device allows {max_binding}"
            )));
        }

        let device = &ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let init = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
            wgpu::util::DeviceExt::create_buffer_init(
                device,
                &wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents,
                    usage,
                },
            )
        };
        let xw_buf = init("xw", binding1, wgpu::BufferUsages::STORAGE);
        let model_buf = init(
            "model",
            bytemuck::cast_slice(binding2),
            wgpu::BufferUsages::STORAGE,
        );
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: PARAMS_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let others = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("others"),
            size: (stride * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let pos_words = n_events.div_ceil(2);
        let max_batch = max_batch.max(1);
        let max_subtypes = max_subtypes.max(1);
        let cand_words = max_batch * (1 + max_subtypes + max_subtypes * pos_words);
        let cand = Self::cand_buffer(device, cand_words as u64 * 4);
        let out_floats = (max_batch * n_tiles).max(stride);
        let (out, staging) = Self::out_buffers(device, out_floats as u64 * 4);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Runtime(format!("allocating device buffers: {e}")));
        }
        let bind_group = Self::bind_group(&ctx, &params, &xw_buf, &model_buf, &cand, &others, &out);
        let max_dispatch = limits.max_compute_workgroups_per_dimension as usize;
        let loop_budget = ctx.is_software().then_some(SOFTWARE_LOOP_BUDGET);
        Ok(Self {
            ctx,
            kernel,
            order,
            n_subjects,
            n_tiles,
            stride,
            pos_words,
            subject_const,
            const_total,
            params,
            xw: xw_buf,
            model: model_buf,
            others,
            cand,
            out,
            staging,
            bind_group,
            packed: Vec::new(),
            raw: Vec::new(),
            max_dispatch,
            max_binding: max_binding.min(MAX_OUT_BYTES),
            loops_per_subtype,
            loop_budget,
        })
    }

    fn cand_buffer(device: &wgpu::Device, bytes: u64) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("candidates"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn out_buffers(device: &wgpu::Device, bytes: u64) -> (wgpu::Buffer, wgpu::Buffer) {
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("out"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        (out, staging)
    }

    fn bind_group(
        ctx: &GpuContext,
        params: &wgpu::Buffer,
        xw: &wgpu::Buffer,
        model: &wgpu::Buffer,
        cand: &wgpu::Buffer,
        others: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            }
        }
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sustain_loglike"),
            layout: &ctx.layout,
            entries: &[
                entry(0, params),
                entry(1, xw),
                entry(2, model),
                entry(3, cand),
                entry(4, others),
                entry(5, out),
            ],
        })
    }

    /// The shared context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Per subject, `log p(x_m)` minus what the device computes: the sequence-independent
    /// constant (f64).
    pub fn subject_offsets(&self) -> &[f64] {
        &self.subject_const
    }

    /// Grows the buffers (never shrinks) so that batches of `n` candidates with up to
    /// `max_subtypes` subtypes need no allocation.
    pub fn reserve(&mut self, n: usize, max_subtypes: usize) -> Result<(), GpuError> {
        let n = n.min(self.max_dispatch).max(1);
        let words = n * self.record_words(max_subtypes.max(1));
        self.ensure(words, n * self.n_tiles)
    }

    /// Caps the candidates per dispatch (normally set by the device limits), so that
    /// tests can exercise batches split over several dispatches.
    #[doc(hidden)]
    pub fn limit_dispatch(&mut self, max_candidates: usize) {
        self.max_dispatch = max_candidates.max(1);
    }

    /// Fails when one invocation would run more loop iterations than the adapter runs
    /// correctly (`subtype_passes` subtype evaluations per invocation).
    fn check_loop_budget(&self, subtype_passes: usize) -> Result<(), GpuError> {
        let need = self.loops_per_subtype * subtype_passes as u64;
        match self.loop_budget {
            Some(budget) if need > budget => Err(GpuError::Runtime(format!(
                "this model ({} biomarkers, {} events) needs up to {need} shader loop iterations per invocation, more than the adapter {} runs correctly ({budget}; llvmpipe stops loops past 65,535); use the CPU backend",
                self.order.n_biomarkers(),
                self.order.n_events(),
                self.ctx.description()
            ))),
            _ => Ok(()),
        }
    }

    /// Candidates one workgroup row of `stage_posteriors` may loop over: at most
    /// `wanted`, and within the loop budget (two passes per subtype: `g`, then the
    /// posteriors).
    fn staging_candidates_per_row(&self, k: usize, wanted: usize) -> Result<usize, GpuError> {
        self.check_loop_budget(2 * k)?;
        Ok(match self.loop_budget {
            Some(budget) => wanted
                .min((budget / (self.loops_per_subtype * 2 * k as u64)) as usize)
                .max(1),
            None => wanted,
        })
    }

    /// Sets the loop budget of one invocation (normally only software adapters have
    /// one), so that tests can exercise the staging split and the error on any
    /// adapter.
    #[doc(hidden)]
    pub fn limit_loop_budget(&mut self, iterations: u64) {
        self.loop_budget = Some(iterations);
    }

    /// Caps the bytes of one output buffer (normally set by the device limits), so
    /// that tests can exercise staging split over subject tiles and workgroup rows.
    #[doc(hidden)]
    pub fn limit_output_bytes(&mut self, bytes: u64) {
        self.max_binding = bytes.max(4);
    }

    fn record_words(&self, max_subtypes: usize) -> usize {
        1 + max_subtypes + max_subtypes * self.pos_words
    }

    /// Makes the candidate buffer hold `cand_words` words and the output `out_floats`.
    fn ensure(&mut self, cand_words: usize, out_floats: usize) -> Result<(), GpuError> {
        let cand_bytes = cand_words as u64 * 4;
        let out_bytes = out_floats as u64 * 4;
        if cand_bytes <= self.cand.size() && out_bytes <= self.out.size() {
            return Ok(());
        }
        let device = &self.ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        if cand_bytes > self.cand.size() {
            self.cand = Self::cand_buffer(device, cand_bytes);
        }
        if out_bytes > self.out.size() {
            let (out, staging) = Self::out_buffers(device, out_bytes);
            self.out = out;
            self.staging = staging;
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Runtime(format!("growing device buffers: {e}")));
        }
        self.bind_group = Self::bind_group(
            &self.ctx,
            &self.params,
            &self.xw,
            &self.model,
            &self.cand,
            &self.others,
            &self.out,
        );
        Ok(())
    }

    /// How many candidates of `max_subtypes` subtypes one dispatch of `entry` may hold.
    fn chunk_len(&self, entry: Entry, max_subtypes: usize) -> usize {
        let per_out = match entry {
            Entry::Total => self.n_tiles,
            Entry::Subjects => self.stride,
        } as u64
            * 4;
        let per_cand = self.record_words(max_subtypes) as u64 * 4;
        let by_out = (self.max_binding / per_out).max(1);
        let by_cand = (self.max_binding / per_cand).max(1);
        (by_out.min(by_cand) as usize).min(self.max_dispatch).max(1)
    }

    fn check_len(&self, seq: &Sequence) -> Result<(), GpuError> {
        if seq.len() != self.order.n_events() {
            return Err(GpuError::Model(ModelError::InvalidSequence(format!(
                "has {} events, the model has {}",
                seq.len(),
                self.order.n_events()
            ))));
        }
        Ok(())
    }

    /// Packs one candidate record (see binding 3 of the shader) at record `i`.
    fn pack_record<'a>(
        &mut self,
        i: usize,
        max_subtypes: usize,
        subtypes: impl ExactSizeIterator<Item = (&'a Sequence, f32)>,
    ) {
        let words = self.record_words(max_subtypes);
        let pos_words = self.pos_words;
        let prefix = matches!(self.kernel, Kernel::Prefix(_));
        let rec = &mut self.packed[i * words..(i + 1) * words];
        rec[0] = subtypes.len() as u32;
        for (s, (seq, log_f)) in subtypes.enumerate() {
            rec[1 + s] = log_f.to_bits();
            let dst =
                &mut rec[1 + max_subtypes + s * pos_words..1 + max_subtypes + (s + 1) * pos_words];
            // The z-score shader reads each event's position, the prefix one the
            // event at each position.
            let pos = if prefix {
                seq.order_u16()
            } else {
                seq.positions_u16()
            };
            for (d, pair) in dst.iter_mut().zip(pos.chunks(2)) {
                let lo = u32::from(pair[0]);
                let hi = pair.get(1).map_or(0, |&p| u32::from(p));
                *d = lo | (hi << 16);
            }
        }
    }

    /// Sizes the host record array for `n` records of `max_subtypes` subtypes.
    fn begin_records(&mut self, n: usize, max_subtypes: usize) {
        let words = n * self.record_words(max_subtypes);
        self.packed.clear();
        self.packed.resize(words, 0);
    }

    /// Uploads the packed records and runs `entry` over `n` candidates; the output is
    /// read back into `self.raw` (Sink::Host) or copied to the `others` buffer
    /// (Sink::Others).
    fn dispatch(
        &mut self,
        entry: Entry,
        n: usize,
        max_subtypes: usize,
        log_f_others: Option<f32>,
        sink: Sink,
    ) -> Result<(), GpuError> {
        let per = match entry {
            Entry::Total => self.n_tiles,
            Entry::Subjects => self.stride,
        };
        self.check_loop_budget(max_subtypes)?;
        self.ensure(self.packed.len(), n * per)?;
        let ctx = Arc::clone(&self.ctx);
        let params = self.params_for(n, max_subtypes, log_f_others);
        ctx.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        ctx.queue
            .write_buffer(&self.cand, 0, bytemuck::cast_slice(&self.packed));
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("sustain"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            pass.set_pipeline(match (&self.kernel, entry) {
                (Kernel::ZScore(_), Entry::Total) => &ctx.total,
                (Kernel::ZScore(_), Entry::Subjects) => &ctx.subjects,
                (Kernel::Prefix(_), Entry::Total) => &ctx.prefix_total,
                (Kernel::Prefix(_), Entry::Subjects) => &ctx.prefix_subjects,
            });
            pass.set_bind_group(0, &self.bind_group, &[]);
            pass.dispatch_workgroups(self.n_tiles as u32, n as u32, 1);
        }
        let bytes = (n * per * 4) as u64;
        match sink {
            Sink::Host => encoder.copy_buffer_to_buffer(&self.out, 0, &self.staging, 0, bytes),
            Sink::Others => encoder.copy_buffer_to_buffer(
                &self.out,
                0,
                &self.others,
                0,
                (self.stride * 4) as u64,
            ),
        }
        let submitted = ctx.queue.submit([encoder.finish()]);
        if sink == Sink::Others {
            return ctx.take_errors();
        }
        self.read_back(bytes, submitted)
    }

    /// The uniform of a dispatch over `n` candidates of `max_subtypes` subtype slots.
    fn params_for(&self, n: usize, max_subtypes: usize, log_f_others: Option<f32>) -> Params {
        Params {
            n_subjects: self.n_subjects as u32,
            stride: self.stride as u32,
            n_biomarkers: self.order.n_biomarkers() as u32,
            n_events: self.order.n_events() as u32,
            cand_base: 0,
            cand_stride: self.record_words(max_subtypes) as u32,
            max_subtypes: max_subtypes as u32,
            pos_words: self.pos_words as u32,
            n_tiles: self.n_tiles as u32,
            use_others: u32::from(log_f_others.is_some()),
            z_min: match &self.kernel {
                Kernel::ZScore(events) => events.z_min() as f32,
                Kernel::Prefix(_) => 0.0,
            },
            log_f_others: log_f_others.unwrap_or(NEG),
            tile_base: 0,
            out_stride: 0,
            n_cand: n as u32,
            pad: 0,
        }
    }

    /// Waits for submission `submitted` (this evaluator's own: evaluators used on other
    /// threads of the same device do not make it wait for their work) and reads the
    /// first `bytes` of the staging buffer into `self.raw`.
    fn read_back(&mut self, bytes: u64, submitted: wgpu::SubmissionIndex) -> Result<(), GpuError> {
        let ctx = Arc::clone(&self.ctx);
        let slice = self.staging.slice(0..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submitted),
                timeout: None,
            })
            .map_err(|e| GpuError::Runtime(format!("waiting for the device: {e}")))?;
        let mapped = rx
            .recv()
            .map_err(|_| GpuError::Runtime("the read-back callback was dropped".into()))?
            .map_err(|e| GpuError::Runtime(format!("mapping the results: {e}")));
        if let Err(e) = mapped {
            ctx.take_errors()?;
            return Err(e);
        }
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| GpuError::Runtime(format!("reading the results: {e}")))?;
            self.raw.clear();
            self.raw.extend(
                view.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        self.staging.unmap();
        ctx.take_errors()
    }

    /// Checks the sequences' lengths; returns the largest number of subtypes.
    fn validate(&self, mixtures: &[Mixture]) -> Result<usize, GpuError> {
        let mut max_subtypes = 1;
        for m in mixtures {
            max_subtypes = max_subtypes.max(m.n_subtypes());
            for s in m.sequences() {
                self.check_len(s)?;
            }
        }
        Ok(max_subtypes)
    }

    /// Packs `part` and runs `entry` over it; the output lands in `self.raw`.
    fn dispatch_mixtures(
        &mut self,
        entry: Entry,
        part: &[Mixture],
        max_subtypes: usize,
    ) -> Result<(), GpuError> {
        self.pack_mixtures(part.iter(), part.len(), max_subtypes);
        self.dispatch(entry, part.len(), max_subtypes, None, Sink::Host)
    }

    /// Packs the records of the `n` mixtures of `part` into `self.packed`.
    fn pack_mixtures<'m>(
        &mut self,
        part: impl Iterator<Item = &'m Mixture>,
        n: usize,
        max_subtypes: usize,
    ) {
        self.begin_records(n, max_subtypes);
        for (i, m) in part.take(n).enumerate() {
            let subtypes = m
                .sequences()
                .iter()
                .zip(m.fractions().iter().map(|&f| log_f32(f)));
            self.pack_record(i, max_subtypes, subtypes);
        }
    }

    /// Staging: the sums over `mixtures` of the joint posteriors, (subjects, stages,
    /// subtypes). One dispatch covers a chunk of candidates and a range of subject
    /// tiles; its G workgroup rows each sum every G-th candidate into their own slab,
    /// and the host adds the slabs in f64.
    fn posterior_sums_gpu(&mut self, mixtures: &[Mixture]) -> Result<Array3<f64>, GpuError> {
        if let Kernel::Prefix(model) = &self.kernel {
            // Staging is one call per fit; the model's own evaluator is exact (f64).
            return Ok(PrefixModel::batch_evaluator(model).posterior_sums(mixtures)?);
        }
        /// Candidates per workgroup row, so that read-back stays small next to the work.
        const PER_GROUP: usize = 16;
        let k = common_subtypes(mixtures)?;
        let ns = self.order.n_stages();
        let mut sum = Array3::<f64>::zeros((self.n_subjects, ns, k));
        if mixtures.is_empty() {
            return Ok(sum);
        }
        self.validate(mixtures)?;
        let budget = self.max_binding / 4; // floats of one output buffer
        let tile_floats = (k * ns * SUBJECTS_PER_WORKGROUP) as u64;
        if tile_floats > budget {
            return Err(GpuError::Runtime(format!(
                "staging {k} subtypes x {ns} stages needs {} bytes per {SUBJECTS_PER_WORKGROUP} subjects, the device allows {}",
                tile_floats * 4,
                budget * 4
            )));
        }
        let tiles_per = ((budget / tile_floats) as usize).clamp(1, self.n_tiles);
        let cand_chunk = self.chunk_len(Entry::Total, k);
        let per_row = self.staging_candidates_per_row(k, PER_GROUP)?;
        for part in mixtures.chunks(cand_chunk) {
            self.pack_mixtures(part.iter(), part.len(), k);
            // The records of `part` stay on the device; each dispatch takes the
            // candidates from `first_cand` (Params.cand_base).
            let ctx = Arc::clone(&self.ctx);
            self.ensure(self.packed.len(), 1)?;
            ctx.queue
                .write_buffer(&self.cand, 0, bytemuck::cast_slice(&self.packed));
            for tile_base in (0..self.n_tiles).step_by(tiles_per) {
                let nt = tiles_per.min(self.n_tiles - tile_base);
                let out_stride = nt * SUBJECTS_PER_WORKGROUP;
                let slab = k * ns * out_stride;
                let max_groups = ((budget / slab as u64) as usize)
                    .min(self.max_dispatch)
                    .max(1);
                // Each workgroup row loops over at most `per_row` candidates.
                let mut first_cand = 0;
                while first_cand < part.len() {
                    let n_cand = (part.len() - first_cand).min(max_groups * per_row);
                    let groups = n_cand.div_ceil(per_row);
                    self.ensure(self.packed.len(), groups * slab)?;
                    let mut params = self.params_for(n_cand, k, None);
                    params.cand_base = first_cand as u32;
                    params.tile_base = tile_base as u32;
                    params.out_stride = out_stride as u32;
                    ctx.queue
                        .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
                    let bytes = (groups * slab * 4) as u64;
                    let mut encoder =
                        ctx.device
                            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                                label: Some("sustain staging"),
                            });
                    encoder.clear_buffer(&self.out, 0, Some(bytes));
                    {
                        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: None,
                        });
                        pass.set_pipeline(&ctx.posteriors);
                        pass.set_bind_group(0, &self.bind_group, &[]);
                        pass.dispatch_workgroups(nt as u32, groups as u32, 1);
                    }
                    encoder.copy_buffer_to_buffer(&self.out, 0, &self.staging, 0, bytes);
                    let submitted = ctx.queue.submit([encoder.finish()]);
                    self.read_back(bytes, submitted)?;
                    let first = tile_base * SUBJECTS_PER_WORKGROUP;
                    let real = out_stride.min(self.n_subjects - first);
                    for g in 0..groups {
                        for s in 0..k {
                            for st in 0..ns {
                                let row = ((g * k + s) * ns + st) * out_stride;
                                for (i, &v) in self.raw[row..row + real].iter().enumerate() {
                                    sum[[first + i, st, s]] += f64::from(v);
                                }
                            }
                        }
                    }
                    first_cand += n_cand;
                }
            }
        }
        Ok(sum)
    }

    /// Appends the total log-likelihood of every candidate in `self.raw` (`n_tiles`
    /// tile sums each): the tile sums and the constants, summed in f64 (compensated).
    fn push_totals(&self, out: &mut Vec<f64>) {
        for tiles in self.raw.chunks_exact(self.n_tiles) {
            let mut sum = Neumaier::new(self.const_total);
            for &v in tiles {
                sum.add(f64::from(v));
            }
            out.push(sum.total());
        }
    }

    /// Total log-likelihoods of the mixtures of `parts`, in order, packed in place
    /// (the parts are not copied into one batch).
    fn loglike_batch_gpu(&mut self, parts: &[&[Mixture]]) -> Result<Vec<f64>, GpuError> {
        let mut max_subtypes = 1;
        for part in parts {
            max_subtypes = max_subtypes.max(self.validate(part)?);
        }
        let chunk = self.chunk_len(Entry::Total, max_subtypes);
        let mut left: usize = parts.iter().map(|p| p.len()).sum();
        let mut result = Vec::with_capacity(left);
        let mut all = parts.iter().flat_map(|p| p.iter());
        while left > 0 {
            let n = left.min(chunk);
            self.pack_mixtures(all.by_ref(), n, max_subtypes);
            self.dispatch(Entry::Total, n, max_subtypes, None, Sink::Host)?;
            self.push_totals(&mut result);
            left -= n;
        }
        Ok(result)
    }

    fn log_p_subjects_gpu(&mut self, mixtures: &[Mixture]) -> Result<Vec<Vec<f64>>, GpuError> {
        let max_subtypes = self.validate(mixtures)?;
        let chunk = self.chunk_len(Entry::Subjects, max_subtypes);
        let mut result = Vec::with_capacity(mixtures.len());
        for part in mixtures.chunks(chunk) {
            self.dispatch_mixtures(Entry::Subjects, part, max_subtypes)?;
            for row in self.raw.chunks_exact(self.stride) {
                let values = row[..self.n_subjects]
                    .iter()
                    .zip(&self.subject_const)
                    .map(|(&g, &c)| f64::from(g) + c)
                    .collect();
                result.push(values);
            }
        }
        Ok(result)
    }

    fn subtype_candidates_gpu(
        &mut self,
        base: &Mixture,
        subtype: usize,
        candidates: &[Sequence],
    ) -> Result<Vec<f64>, GpuError> {
        let n_sub = base.n_subtypes();
        if subtype >= n_sub {
            return Err(GpuError::Model(ModelError::Shape(format!(
                "subtype {subtype} out of range: the mixture has {n_sub}"
            ))));
        }
        for s in base.sequences().iter().chain(candidates) {
            self.check_len(s)?;
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let f = base.fractions();
        let f_t = f[subtype];
        let log_f_others = if n_sub == 1 {
            None
        } else {
            // The other subtypes, renormalised, as one per-subject term: computed on the
            // device and left there (copied to the `others` buffer).
            let rest: f64 = (0..n_sub).filter(|&s| s != subtype).map(|s| f[s]).sum();
            let others: Vec<(&Sequence, f32)> = (0..n_sub)
                .filter(|&s| s != subtype)
                .map(|s| {
                    let w = if rest > 0.0 {
                        f[s] / rest
                    } else {
                        1.0 / (n_sub - 1) as f64
                    };
                    (&base.sequences()[s], log_f32(w))
                })
                .collect();
            self.begin_records(1, n_sub - 1);
            self.pack_record(0, n_sub - 1, others.into_iter());
            self.dispatch(Entry::Subjects, 1, n_sub - 1, None, Sink::Others)?;
            Some(log_f32(1.0 - f_t))
        };
        let log_f_t = if n_sub == 1 { 0.0 } else { log_f32(f_t) };
        let chunk = self.chunk_len(Entry::Total, 1);
        let mut result = Vec::with_capacity(candidates.len());
        for part in candidates.chunks(chunk) {
            self.begin_records(part.len(), 1);
            for (i, c) in part.iter().enumerate() {
                self.pack_record(i, 1, std::iter::once((c, log_f_t)));
            }
            self.dispatch(Entry::Total, part.len(), 1, log_f_others, Sink::Host)?;
            self.push_totals(&mut result);
        }
        Ok(result)
    }
}

impl BatchEvaluator for GpuEvaluator {
    fn events(&self) -> &sustain_model::EventOrder {
        &self.order
    }
    fn n_subjects(&self) -> usize {
        self.n_subjects
    }
    fn loglike_batch(&mut self, mixtures: &[Mixture]) -> sustain_model::Result<Vec<f64>> {
        Ok(self.loglike_batch_gpu(&[mixtures])?)
    }
    fn loglike_batch_parts(&mut self, parts: &[&[Mixture]]) -> sustain_model::Result<Vec<f64>> {
        Ok(self.loglike_batch_gpu(parts)?)
    }
    fn log_p_subjects_batch(
        &mut self,
        mixtures: &[Mixture],
    ) -> sustain_model::Result<Vec<Vec<f64>>> {
        Ok(self.log_p_subjects_gpu(mixtures)?)
    }
    /// z-score model: in f32 on the device (posteriors agree with the CPU to about
    /// 1e-5 absolute per sample), summed over samples in f64 on the host. Prefix
    /// models: the model's own CPU evaluation (f64).
    fn posterior_sums(&mut self, mixtures: &[Mixture]) -> sustain_model::Result<Array3<f64>> {
        Ok(self.posterior_sums_gpu(mixtures)?)
    }
    /// Evaluates only the candidate subtype per candidate: the other subtypes' per-subject
    /// term is computed once per call on the device and mixed in by the shader.
    fn loglike_subtype_candidates(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> sustain_model::Result<Vec<f64>> {
        Ok(self.subtype_candidates_gpu(slot.base, slot.subtype, candidates)?)
    }
}
