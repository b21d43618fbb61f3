// SuStaIn likelihood of a batch of candidate mixtures: the z-score model (spec sections
// 2 and 3) and, at the end of the file, the prefix models (section 10).
//
// Work decomposition
//   One workgroup = one candidate mixture x one tile of TILE (256) subjects; one
//   invocation = SB (4) subjects, lid + 64 j (coalesced loads), so that every stage
//   value read from workgroup memory serves 4 subjects x 16 stages of accumulators.
//   Dispatch: (n_tiles, n_candidates_in_dispatch, 1), n_tiles = ceil(M / TILE).
//   `workgroup_id.y` is the candidate, `workgroup_id.x` the subject tile.
//
// What an invocation computes, for each of its subjects m and every subtype s, stage k:
//   q[s][k] = sum over observed b of 0.5 * ((x[m][b] - mu_s[b][k]) / sigma)^2
//   g[m]    = log( sum_s f_s * sum_k exp(-q[s][k]) )      (log-sum-exp, online, f32)
// The stage values mu_s[b][k] (spec section 2) are built from the candidate's event
// positions by the workgroup, a tile of (BT biomarkers x KT stages) at a time, into
// workgroup memory, and shared by the workgroup's 256 subjects.
//
// The host adds, in f64, the sequence-independent constant of each subject,
//   c[m] = -ln(N+1) + sum_obs(-0.5 ln(2 pi) - ln sigma) + missing-value constants,
// so that log p(x_m) = c[m] + g[m] (equal to sustain_model::Likelihood::log_p_subjects).
// Writing the stage term as a sum of squares (instead of x*mu - mu^2/2 plus the
// constant -x^2/2) keeps f32 from cancelling large terms.
//
// Entry points
//   `loglike_total`:    out[c * n_tiles + tile] = sum of g[m] over the tile's real subjects
//                       (f32 tree reduction in workgroup memory; the host sums the tiles
//                       in f64 and adds sum_m c[m]).
//   `loglike_subjects`: out[c * stride + m] = g[m] for every real subject m.
//   `stage_posteriors`: staging. Dispatch (subject tiles of this dispatch, G groups);
//                       group y loops over the candidates y, y + G, ... and adds the
//                       joint posterior p(s, k | x_m) = exp(log f_s - q[s][k] - g[m]) of
//                       each into its own slab:
//                       out[((y * T + s) * (N + 1) + k) * out_stride + m - tile_base * TILE]
//                       (the host clears `out` first and sums the slabs in f64). The
//                       subject constants cancel in the ratio.
//   `prefix_total`, `prefix_subjects`: the prefix models (mixture, ordinal), see the
//                       end of the file.

const WG: u32 = 64u;    // invocations per workgroup
const SB: u32 = 4u;     // subjects per invocation: tile * TILE + lid + WG * j, j < SB
const TILE: u32 = 256u; // subjects per workgroup, WG * SB
const BT: u32 = 16u;    // biomarkers per stage-value tile (WG / 4: four invocations a row)
const KT: u32 = 16u;    // stages per stage-value tile (4 x vec4 accumulators)
const NEG: f32 = -1.0e30; // stands for log(0): finite, so no inf arithmetic is needed

struct Params {
    n_subjects: u32,    // M: real subjects
    stride: u32,        // Mp = n_tiles * TILE: row stride of `xw`, `others`, per-subject `out`
    n_biomarkers: u32,  // B
    n_events: u32,      // N; stages are 0..=N
    cand_base: u32,     // index of the first candidate record of this dispatch in `cand`
    cand_stride: u32,   // u32 words per candidate record (see `cand`)
    max_subtypes: u32,  // T: subtype slots per candidate record
    pos_words: u32,     // u32 words of packed positions per subtype: ceil(N / 2)
    n_tiles: u32,       // subject tiles, ceil(M / TILE)
    use_others: u32,    // 1: mix in the pseudo-subtype `others` (E-M seam), 0: not
    z_min: f32,         // z at stage 0 (0 in the reference)
    log_f_others: f32,  // log weight of `others` (log(1 - f_t)); NEG for zero
    tile_base: u32,     // stage_posteriors: first subject tile of this dispatch
    out_stride: u32,    // stage_posteriors: subjects per slab row (tiles of this dispatch x TILE)
    n_cand: u32,        // stage_posteriors: candidates of this dispatch
    pad: u32,
}

// binding 0, uniform, 64 bytes: the Params above, rewritten by the host per dispatch.
@group(0) @binding(0) var<uniform> params: Params;

// binding 1, storage read, array<vec2<f32>> of B * Mp, index b * Mp + m:
//   (x[m][b] * w, w) with w = sqrt(1/2) / sigma for an observed value,
//   (0, 0) for a missing value and for padding subjects m >= M.
@group(0) @binding(1) var<storage, read> xw: array<vec2<f32>>;

// binding 2, storage read, array<u32> of (B + 1) + N + N + B words, the event set:
//   [0, B]:             start[b], CSR offsets: biomarker b's events are entries
//                       start[b]..start[b+1] of the two event arrays below, in
//                       increasing threshold order
//   [B+1, B+1+N):       event index (0..N) of each entry
//   [B+1+N, B+1+2N):    its threshold z, f32 bits
//   [B+1+2N, B+1+2N+B): z_max[b], f32 bits
@group(0) @binding(2) var<storage, read> model: array<u32>;

// binding 3, storage read, array<u32>: candidate records of cand_stride words each,
//   [0]:                       number of subtypes n_s (1..=T)
//   [1, 1+T):                  log f_s, f32 bits (NEG for f_s = 0; unused slots ignored)
//   [1+T + s*pos_words, ...):  subtype s's event positions, 0-based, packed two u16 per
//                              word: event e is in word e/2, bits 16*(e%2)..16*(e%2)+15
@group(0) @binding(3) var<storage, read> cand: array<u32>;

// binding 4, storage read, array<f32> of Mp: per-subject g of the other subtypes (E-M
//   seam: log sum_{s != t} (f_s / sum_{s' != t} f_s') sum_k exp(-q[s][k])); read only when
//   params.use_others == 1.
@group(0) @binding(4) var<storage, read> others: array<f32>;

// binding 5, storage read_write, array<f32>: results, see the entry points
//   loglike_total:    n_candidates_in_dispatch * n_tiles tile sums
//   loglike_subjects: n_candidates_in_dispatch * Mp per-subject values
//   stage_posteriors: G * T * (N + 1) * out_stride posterior sums
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// mu of biomarker b0 + r at stages k0 + 4q .. k0 + 4q + 3, at index 4r + q.
var<workgroup> mu_tile: array<vec4<f32>, 64>; // BT * KT / 4
var<workgroup> partial: array<f32, 64>;        // WG

// Position of event e in the sequence whose packed positions start at word pbase.
fn position(pbase: u32, e: u32) -> u32 {
    let word = cand[pbase + (e >> 1u)];
    return (word >> ((e & 1u) << 4u)) & 0xffffu;
}

// Walks the piecewise-linear curve of one biomarker for increasing t.
struct Walk {
    lo: vec2<f32>,  // (t, z) of the knot at or before t
    hi: vec2<f32>,  // (t, z) of the next knot
    next: u32,      // entry of `hi` (== end: the final knot (N+1, z_max))
    end: u32,
    b: u32,
    pbase: u32,
}

// The knot of entry j of biomarker b's events, or the final knot when j == end.
fn knot(j: u32, end: u32, b: u32, pbase: u32) -> vec2<f32> {
    let nb = params.n_biomarkers;
    let n = params.n_events;
    if (j < end) {
        let e = model[nb + 1u + j];
        let z = bitcast<f32>(model[nb + 1u + n + j]);
        return vec2<f32>(f32(position(pbase, e) + 1u), z);
    }
    return vec2<f32>(f32(n + 1u), bitcast<f32>(model[nb + 1u + 2u * n + b]));
}

// curve(t) for t no smaller than at the previous call (spec section 2; the same
// arithmetic as sustain_model::stages::curve_at, in f32). t is clamped to N+1.
fn curve_at(w: ptr<function, Walk>, t_in: f32) -> f32 {
    let t = min(t_in, f32(params.n_events + 1u));
    loop {
        if (t <= (*w).hi.x || (*w).next >= (*w).end) {
            break;
        }
        (*w).lo = (*w).hi;
        (*w).next += 1u;
        (*w).hi = knot((*w).next, (*w).end, (*w).b, (*w).pbase);
    }
    let lo = (*w).lo;
    let hi = (*w).hi;
    let span = hi.x - lo.x;
    if (span <= 0.0) {
        return hi.y;
    }
    return lo.y + (hi.y - lo.y) * (t - lo.x) / span;
}

// Writes mu_tile[4r + q]: mu[b][k] = (curve(k) + curve(k+1)) / 2 for the four stages
// k = k0 + 4q .. k0 + 4q + 3.
fn fill_quad(r: u32, q: u32, b: u32, k0: u32, pbase: u32) {
    let start = model[b];
    let end = model[b + 1u];
    var w: Walk;
    w.lo = vec2<f32>(0.0, params.z_min);
    w.next = start;
    w.end = end;
    w.b = b;
    w.pbase = pbase;
    w.hi = knot(start, end, b, pbase);
    let t = f32(k0 + 4u * q);
    let c0 = curve_at(&w, t);
    let c1 = curve_at(&w, t + 1.0);
    let c2 = curve_at(&w, t + 2.0);
    let c3 = curve_at(&w, t + 3.0);
    let c4 = curve_at(&w, t + 4.0);
    mu_tile[4u * r + q] = 0.5 * vec4<f32>(c0 + c1, c1 + c2, c2 + c3, c3 + c4);
}

fn hmax(v: vec4<f32>) -> f32 {
    return max(max(v.x, v.y), max(v.z, v.w));
}

// -q for the stages first .. first + 3, NEG for stages beyond N.
fn masked(acc: vec4<f32>, first: u32, n_stages: u32) -> vec4<f32> {
    let k = vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u);
    return select(vec4<f32>(NEG), -acc, k < vec4<u32>(n_stages));
}

// One subject's q at the KT = 16 stages of the current stage tile.
struct Acc {
    q0: vec4<f32>,
    q1: vec4<f32>,
    q2: vec4<f32>,
    q3: vec4<f32>,
}

// Adds biomarker row (v = (x w, w)) with stage values m0..m3 to a subject's q.
fn add_row(a: ptr<function, Acc>, v: vec2<f32>, m0: vec4<f32>, m1: vec4<f32>, m2: vec4<f32>, m3: vec4<f32>) {
    let xx = vec4<f32>(v.x);
    let nw = vec4<f32>(-v.y);
    // d = w * (x - mu); q += d^2
    let d0 = fma(nw, m0, xx);
    (*a).q0 = fma(d0, d0, (*a).q0);
    let d1 = fma(nw, m1, xx);
    (*a).q1 = fma(d1, d1, (*a).q1);
    let d2 = fma(nw, m2, xx);
    (*a).q2 = fma(d2, d2, (*a).q2);
    let d3 = fma(nw, m3, xx);
    (*a).q3 = fma(d3, d3, (*a).q3);
}

// Online log-sum-exp over stages: st = (running max of -q, sum of exp(-q - max)),
// updated with the stages k0 .. k0 + 15 of `a`.
fn lse_update(st: vec2<f32>, a: Acc, k0: u32, n_stages: u32) -> vec2<f32> {
    let v0 = masked(a.q0, k0, n_stages);
    let v1 = masked(a.q1, k0 + 4u, n_stages);
    let v2 = masked(a.q2, k0 + 8u, n_stages);
    let v3 = masked(a.q3, k0 + 12u, n_stages);
    let nm = max(st.x, max(max(hmax(v0), hmax(v1)), max(hmax(v2), hmax(v3))));
    let e = exp(v0 - nm) + exp(v1 - nm) + exp(v2 - nm) + exp(v3 - nm);
    return vec2<f32>(nm, st.y * exp(st.x - nm) + ((e.x + e.y) + (e.z + e.w)));
}

// Adds row r of the stage-value tile (biomarker b0 + r, values at xw[idx + WG j]) to
// the four subjects' accumulators.
fn add_tile_row(a0: ptr<function, Acc>, a1: ptr<function, Acc>, a2: ptr<function, Acc>, a3: ptr<function, Acc>, r: u32, idx: u32) {
    let m0 = mu_tile[4u * r];
    let m1 = mu_tile[4u * r + 1u];
    let m2 = mu_tile[4u * r + 2u];
    let m3 = mu_tile[4u * r + 3u];
    add_row(a0, xw[idx], m0, m1, m2, m3);
    add_row(a1, xw[idx + WG], m0, m1, m2, m3);
    add_row(a2, xw[idx + 2u * WG], m0, m1, m2, m3);
    add_row(a3, xw[idx + 3u * WG], m0, m1, m2, m3);
}

// The four subjects' q at stages k0 .. k0 + KT - 1.
struct Acc4 {
    a0: Acc,
    a1: Acc,
    a2: Acc,
    a3: Acc,
}

// q of the SB subjects m + WG * j of invocation lid at the KT stages from k0, for the
// subtype whose packed positions start at word pbase. Must be called in uniform control
// flow (it synchronises the workgroup).
fn stage_tile(lid: u32, m: u32, pbase: u32, k0: u32) -> Acc4 {
    let nb = params.n_biomarkers;
    let stride = params.stride;
    let zero = vec4<f32>(0.0);
    var a0 = Acc(zero, zero, zero, zero);
    var a1 = Acc(zero, zero, zero, zero);
    var a2 = Acc(zero, zero, zero, zero);
    var a3 = Acc(zero, zero, zero, zero);
    for (var b0 = 0u; b0 < nb; b0 += BT) {
        workgroupBarrier();
        // Invocation lid fills row lid / 4, stages 4 (lid % 4) .. + 3 of the tile.
        if (b0 + lid / 4u < nb) {
            fill_quad(lid / 4u, lid % 4u, b0 + lid / 4u, k0, pbase);
        }
        workgroupBarrier();
        let rows = min(BT, nb - b0);
        var idx = b0 * stride + m;
        // Four rows per iteration: software drivers (llvmpipe) cap the loop
        // iterations of one invocation (65,535 in all), so loops stay short.
        var r = 0u;
        for (; r + 4u <= rows; r += 4u) {
            add_tile_row(&a0, &a1, &a2, &a3, r, idx);
            add_tile_row(&a0, &a1, &a2, &a3, r + 1u, idx + stride);
            add_tile_row(&a0, &a1, &a2, &a3, r + 2u, idx + 2u * stride);
            add_tile_row(&a0, &a1, &a2, &a3, r + 3u, idx + 3u * stride);
            idx += 4u * stride;
        }
        for (; r < rows; r += 1u) {
            add_tile_row(&a0, &a1, &a2, &a3, r, idx);
            idx += stride;
        }
    }
    workgroupBarrier();
    return Acc4(a0, a1, a2, a3);
}

// g of the SB = 4 subjects tile * TILE + lid + WG * j (j = 0..3, component j) under
// candidate c of this dispatch. Must be called in uniform control flow (it
// synchronises the workgroup).
fn subject_values(lid: u32, tile: u32, c: u32) -> vec4<f32> {
    let m = tile * TILE + lid;
    let n_stages = params.n_events + 1u;
    let rec = (params.cand_base + c) * params.cand_stride;
    let n_sub = min(cand[rec], params.max_subtypes);
    var best = vec4<f32>(NEG);   // running max over subtypes of log f_s + lse_s
    var total = vec4<f32>(0.0);  // sum of exp(. - best)
    for (var s = 0u; s < n_sub; s += 1u) {
        let log_f = bitcast<f32>(cand[rec + 1u + s]);
        let pbase = rec + 1u + params.max_subtypes + s * params.pos_words;
        var st0 = vec2<f32>(NEG, 0.0);
        var st1 = vec2<f32>(NEG, 0.0);
        var st2 = vec2<f32>(NEG, 0.0);
        var st3 = vec2<f32>(NEG, 0.0);
        for (var k0 = 0u; k0 < n_stages; k0 += KT) {
            let t = stage_tile(lid, m, pbase, k0);
            st0 = lse_update(st0, t.a0, k0, n_stages);
            st1 = lse_update(st1, t.a1, k0, n_stages);
            st2 = lse_update(st2, t.a2, k0, n_stages);
            st3 = lse_update(st3, t.a3, k0, n_stages);
        }
        let mx = vec4<f32>(st0.x, st1.x, st2.x, st3.x);
        let sm = vec4<f32>(st0.y, st1.y, st2.y, st3.y);
        mix_in(&best, &total, vec4<f32>(log_f) + mx + log(sm));
    }
    return mixed_with_others(m, best, total);
}

// Adds the term v (log f_s + lse_s per subject) to the running log-sum-exp over
// subtypes (best, total).
fn mix_in(best: ptr<function, vec4<f32>>, total: ptr<function, vec4<f32>>, v: vec4<f32>) {
    let nbest = max(*best, v);
    *total = *total * exp(*best - nbest) + exp(v - nbest);
    *best = nbest;
}

// The log-sum-exp over subtypes (best, total) of the subjects m + WG j, with the
// `others` term mixed in when params.use_others is set.
fn mixed_with_others(m: u32, best_in: vec4<f32>, total_in: vec4<f32>) -> vec4<f32> {
    var best = best_in;
    var total = total_in;
    if (params.use_others != 0u) {
        let o = vec4<f32>(others[m], others[m + WG], others[m + 2u * WG], others[m + 3u * WG]);
        mix_in(&best, &total, vec4<f32>(params.log_f_others) + o);
    }
    return best + log(total);
}

// Which of the invocation's subjects are real (not padding).
fn real_subjects(m: u32) -> vec4<bool> {
    return (vec4<u32>(m) + vec4<u32>(0u, WG, 2u * WG, 3u * WG)) < vec4<u32>(params.n_subjects);
}

// out[c * n_tiles + tile] = sum of the tile's real subjects' g (tree reduction).
// Must be called in uniform control flow.
fn write_total(lid: u32, wid: vec3<u32>, g: vec4<f32>) {
    let kept = select(vec4<f32>(0.0), g, real_subjects(wid.x * TILE + lid));
    partial[lid] = (kept.x + kept.y) + (kept.z + kept.w);
    for (var width = WG / 2u; width > 0u; width >>= 1u) {
        workgroupBarrier();
        if (lid < width) {
            partial[lid] += partial[lid + width];
        }
    }
    if (lid == 0u) {
        out[wid.y * params.n_tiles + wid.x] = partial[0];
    }
}

// out[c * stride + m] = g[m] for the invocation's real subjects.
fn write_subjects(lid: u32, wid: vec3<u32>, g: vec4<f32>) {
    let m = wid.x * TILE + lid;
    let real = real_subjects(m);
    let row = wid.y * params.stride;
    for (var j = 0u; j < SB; j += 1u) {
        if (real[j]) {
            out[row + m + j * WG] = g[j];
        }
    }
}

@compute @workgroup_size(64)
fn loglike_total(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    write_total(lid, wid, subject_values(lid, wid.x, wid.y));
}

@compute @workgroup_size(64)
fn loglike_subjects(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    write_subjects(lid, wid, subject_values(lid, wid.x, wid.y));
}

// Adds p (stages first .. first + 3 of one subject) at out[idx + i * out_stride], for
// the stages that exist.
fn add4(p: vec4<f32>, first: u32, idx: u32) {
    let n_stages = params.n_events + 1u;
    for (var i = 0u; i < 4u; i += 1u) {
        if (first + i < n_stages) {
            out[idx + i * params.out_stride] += p[i];
        }
    }
}

// Adds exp(shift - q) of one subject's KT stages from k0; idx is the slab index of
// (subject, stage k0).
fn add_tile(a: Acc, shift: f32, k0: u32, idx: u32) {
    let step = 4u * params.out_stride;
    let sh = vec4<f32>(shift);
    add4(exp(sh - a.q0), k0, idx);
    add4(exp(sh - a.q1), k0 + 4u, idx + step);
    add4(exp(sh - a.q2), k0 + 8u, idx + 2u * step);
    add4(exp(sh - a.q3), k0 + 12u, idx + 3u * step);
}

@compute @workgroup_size(64)
fn stage_posteriors(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let tile = params.tile_base + wid.x;
    let m = tile * TILE + lid;
    let local_m = wid.x * TILE + lid;
    let n_stages = params.n_events + 1u;
    let os = params.out_stride;
    for (var c = wid.y; c < params.n_cand; c += nwg.y) {
        let g = subject_values(lid, tile, c);
        let rec = (params.cand_base + c) * params.cand_stride;
        let n_sub = min(cand[rec], params.max_subtypes);
        for (var s = 0u; s < n_sub; s += 1u) {
            let log_f = bitcast<f32>(cand[rec + 1u + s]);
            let pbase = rec + 1u + params.max_subtypes + s * params.pos_words;
            let shift = vec4<f32>(log_f) - g;
            let slab = (wid.y * params.max_subtypes + s) * n_stages;
            for (var k0 = 0u; k0 < n_stages; k0 += KT) {
                let t = stage_tile(lid, m, pbase, k0);
                let idx = (slab + k0) * os + local_m;
                add_tile(t.a0, shift.x, k0, idx);
                add_tile(t.a1, shift.y, k0, idx + WG);
                add_tile(t.a2, shift.z, k0, idx + 2u * WG);
                add_tile(t.a3, shift.w, k0, idx + 3u * WG);
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The prefix models, event-based (mixture) and ordinal (spec section 10). A subject's
// log-likelihood at stage k of sequence S is offset[m] + v_k, with v_0 = 0 and
// v_k = sum_{j < k} delta[m][S_j] (prefix sums of per-event deltas along S). The
// dispatch, candidate records, `others`, `out` and the tile sums are those of the
// z-score entry points, with two differences:
//   binding 2 (`model`) holds the deltas, f32 bits, index e * Mp + m (0 for padding
//     subjects); binding 1 (`xw`) is not read;
//   a record's per-subtype u16 pairs are the order (the event at each position p,
//     word p/2, bits 16*(p%2)..) instead of the positions.
// g[m] = log sum_s f_s sum_{k=0..N} exp(v_k) in f32 (online log-sum-exp); the host adds
// offset[m] (stage-0 log-likelihood and -ln(N+1)) in f64, as for the z-score model.
// Entry points: `prefix_total` and `prefix_subjects`, outputs as `loglike_total` and
// `loglike_subjects`.

// Adds the values v to the running (max, sum of exp(. - max)) with one exponential:
// whichever of v and the max is smaller is scaled by exp(-|v - max|).
fn lse_add(mx: ptr<function, vec4<f32>>, sm: ptr<function, vec4<f32>>, v: vec4<f32>) {
    let t = exp(-abs(v - *mx));
    *sm = select(*sm + t, fma(*sm, t, vec4<f32>(1.0)), v > *mx);
    *mx = max(*mx, v);
}

// The deltas of event e for the subjects m + WG j.
fn deltas_of(e: u32, m: u32) -> vec4<f32> {
    let i = e * params.stride + m;
    return vec4<f32>(
        bitcast<f32>(model[i]),
        bitcast<f32>(model[i + WG]),
        bitcast<f32>(model[i + 2u * WG]),
        bitcast<f32>(model[i + 3u * WG]),
    );
}

// g of the SB subjects tile * TILE + lid + WG * j (component j) under candidate c.
fn prefix_values(lid: u32, tile: u32, c: u32) -> vec4<f32> {
    let m = tile * TILE + lid;
    let n = params.n_events;
    let rec = (params.cand_base + c) * params.cand_stride;
    let n_sub = min(cand[rec], params.max_subtypes);
    var best = vec4<f32>(NEG);
    var total = vec4<f32>(0.0);
    for (var s = 0u; s < n_sub; s += 1u) {
        let log_f = bitcast<f32>(cand[rec + 1u + s]);
        let obase = rec + 1u + params.max_subtypes + s * params.pos_words;
        // Stage 0: v = 0, so the max is 0 and the sum exp(0) = 1.
        var acc = vec4<f32>(0.0);
        var mx = vec4<f32>(0.0);
        var sm = vec4<f32>(1.0);
        // Two positions per packed word (and per iteration: llvmpipe caps the loop
        // iterations of an invocation).
        for (var p = 0u; p < n; p += 2u) {
            let word = cand[obase + (p >> 1u)];
            acc += deltas_of(word & 0xffffu, m);
            lse_add(&mx, &sm, acc);
            if (p + 1u < n) {
                acc += deltas_of(word >> 16u, m);
                lse_add(&mx, &sm, acc);
            }
        }
        mix_in(&best, &total, vec4<f32>(log_f) + mx + log(sm));
    }
    return mixed_with_others(m, best, total);
}

@compute @workgroup_size(64)
fn prefix_total(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    write_total(lid, wid, prefix_values(lid, wid.x, wid.y));
}

@compute @workgroup_size(64)
fn prefix_subjects(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    write_subjects(lid, wid, prefix_values(lid, wid.x, wid.y));
}
