// training.cl: the operations around the LSTM for training (ModelOps), one item per
// element or row unless said; any work-group size unless said; all bounds-guarded.
// Kernels:
//   gather_rows        out[i, :] = table[idx[i], :]                       global (width, count)
//   scatter_add_rows   table[v, :] += Σ_{i: idx[i] = v} src[i, :]; each item owns one (v, column),
//                      so no atomics are needed                           global (width, rows)
//   add_row_vector     m[r, :] += v                                       global (width, rows)
//   softmax_xent_rows  per row: loss_r = logsumexp(x) − x[target] (max subtracted), gradient
//                      = (softmax − onehot)·scale, 0 for ignored rows     global (rows)
//   softmax_xent_group the same with a work-group of SOFTMAX_GROUP items per row (max and sum
//                      reduced in local memory), for wide rows: work-group (SOFTMAX_GROUP, 1)
//                      required; global (SOFTMAX_GROUP, rows)
//   reduce_sum         out[slot + g] = scale·Σ of work-group g's share of x (work-groups of
//                      REDUCE_GROUP items, required size; the items stride over x by the global
//                      size): one group gives the whole sum, G groups G partial sums for a second pass
//   mse                g = 2(p − t)/n; sq[i] = (p − t)²                   global (count)
//   dropout_mask       mask[i] = keep(seed, global index of i) ? 1/(1−p) : 0 (same hash as the CPU path)
//   multiply           out = a·b
//   square             sq[i] = x[i]²
//   clip_by_norm       x ·= min(1, max/(sqrt(Σ sums)+1e-6))
//   sgd_step, adam_step  PyTorch's update formulas (see ModelOps.swift)
//   bce_logits         g = (σ(x) − y)·scale; terms[i] = max(x, 0) − x·y + log1p(e^−|x|)   global (count)
//   pool_steps         per (feature j, sequence b): last / mean / max of x[t, b, j] over t < lengths[b]
//                      (0 and argmax −1 for length 0; first maximum on ties); argmax as a float
//                      (exact for T < 2^24)                              global (width, batch)
//   pool_steps_backward dx[t, b, j] = the pooled gradient's share for t < lengths[b], else 0;
//                      writes every element                              global (width, T·batch)

__kernel void gather_rows(const int width, const int count, __global const float* table,
                          __global const int* idx, __global float* out)
{
    const int j = get_global_id(0), i = get_global_id(1);
    if (j >= width || i >= count) return;
    out[i * width + j] = table[idx[i] * width + j];
}

__kernel void scatter_add_rows(const int width, const int count, const int rows, __global const float* src,
                               __global const int* idx, __global float* table)
{
    const int j = get_global_id(0), v = get_global_id(1);
    if (j >= width || v >= rows) return;
    float acc = 0.0f;
    for (int i = 0; i < count; i++) if (idx[i] == v) acc += src[i * width + j];
    table[v * width + j] += acc;
}

__kernel void add_row_vector(const int rows, const int width, __global const float* v, __global float* m)
{
    const int j = get_global_id(0), r = get_global_id(1);
    if (j >= width || r >= rows) return;
    m[r * width + j] += v[j];
}

__kernel void softmax_xent_rows(const int rows, const int classes, __global const float* x, __global const int* targets,
                                const int ignore_index, const float scale, __global float* grad, __global float* row_loss)
{
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* xr = x + r * classes;
    __global float* gr = grad + r * classes;
    const int target = targets[r];
    if (target == ignore_index) {
        for (int j = 0; j < classes; j++) gr[j] = 0.0f;
        row_loss[r] = 0.0f;
        return;
    }
    float top = -INFINITY;
    for (int j = 0; j < classes; j++) top = fmax(top, xr[j]);
    float sum = 0.0f;
    for (int j = 0; j < classes; j++) { const float e = exp(xr[j] - top); gr[j] = e; sum += e; }
    row_loss[r] = log(sum) + top - xr[target];
    for (int j = 0; j < classes; j++) gr[j] = gr[j] / sum * scale;
    gr[target] -= scale;
}

#ifndef SOFTMAX_GROUP
#error "SOFTMAX_GROUP comes from the host (OpenCLTiles.buildOptions)"
#endif
__kernel __attribute__((reqd_work_group_size(SOFTMAX_GROUP, 1, 1)))
void softmax_xent_group(const int rows, const int classes, __global const float* x, __global const int* targets,
                        const int ignore_index, const float scale, __global float* grad, __global float* row_loss)
{
    __local float partial[SOFTMAX_GROUP];
    const int l = get_local_id(0), r = get_group_id(1);
    if (r >= rows) return;                               // whole work-groups only: no barrier divergence
    __global const float* xr = x + r * classes;
    __global float* gr = grad + r * classes;
    const int target = targets[r];
    if (target == ignore_index) {
        for (int j = l; j < classes; j += SOFTMAX_GROUP) gr[j] = 0.0f;
        if (l == 0) row_loss[r] = 0.0f;
        return;
    }
    float top = -INFINITY;
    for (int j = l; j < classes; j += SOFTMAX_GROUP) top = fmax(top, xr[j]);
    partial[l] = top;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = SOFTMAX_GROUP / 2; s > 0; s >>= 1) {   // SOFTMAX_GROUP is a power of two
        if (l < s) partial[l] = fmax(partial[l], partial[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    top = partial[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float sum = 0.0f;
    for (int j = l; j < classes; j += SOFTMAX_GROUP) { const float e = exp(xr[j] - top); gr[j] = e; sum += e; }
    partial[l] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = SOFTMAX_GROUP / 2; s > 0; s >>= 1) {
        if (l < s) partial[l] += partial[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    sum = partial[0];
    for (int j = l; j < classes; j += SOFTMAX_GROUP) gr[j] = gr[j] / sum * scale;
    barrier(CLK_GLOBAL_MEM_FENCE);                       // every gr[j] scaled before the target's is adjusted
    if (l == 0) {
        row_loss[r] = log(sum) + top - xr[target];
        gr[target] -= scale;
    }
}

#ifndef REDUCE_GROUP
#error "REDUCE_GROUP comes from the host (OpenCLTiles.buildOptions)"
#endif
__kernel __attribute__((reqd_work_group_size(REDUCE_GROUP, 1, 1)))
void reduce_sum(const int n, __global const float* x, const float scale, __global float* out, const int slot)
{
    __local float partial[REDUCE_GROUP];
    const int l = get_local_id(0);
    float acc = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) acc += x[i];
    partial[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = REDUCE_GROUP / 2; s > 0; s >>= 1) {   // REDUCE_GROUP is a power of two
        if (l < s) partial[l] += partial[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) out[slot + get_group_id(0)] = partial[0] * scale;
}

__kernel void mse(const int n, __global const float* p, __global const float* t, __global float* g, __global float* sq)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float d = p[i] - t[i];
    g[i] = 2.0f * d / (float)n;
    sq[i] = d * d;
}

__kernel void dropout_mask(const int n, const float p, const uint seed_lo, const uint seed_hi,
                           const int local_batch, const int global_batch, const int offset, const int width,
                           __global float* mask)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    // the element's index in the global [T, global_batch, width] batch
    const int per_step = local_batch * width, t = i / per_step, rest = i % per_step;
    // in uint, wrapping mod 2^32 exactly as the host's 64-bit index truncated to 32 bits
    // (int arithmetic could overflow, which C leaves undefined)
    const uint g = ((uint)t * (uint)global_batch + (uint)offset + (uint)(rest / width)) * (uint)width
                   + (uint)(rest % width);
    uint x = (g * 0x9E3779B9u) ^ seed_lo;
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    x ^= seed_hi;
    x *= 0x27D4EB2Du; x ^= x >> 15;
    const float u = (float)(x >> 8) * (1.0f / 16777216.0f);
    mask[i] = u >= p ? 1.0f / (1.0f - p) : 0.0f;
}

__kernel void multiply(const int n, __global const float* a, __global const float* b, __global float* out)
{
    const int i = get_global_id(0);
    if (i < n) out[i] = a[i] * b[i];
}

__kernel void square(const int n, __global const float* x, __global float* out)
{
    const int i = get_global_id(0);
    if (i < n) out[i] = x[i] * x[i];
}

__kernel void clip_by_norm(const int n, __global float* x, __global const float* sums, const int slots, const float max_norm)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    float total = 0.0f;
    for (int s = 0; s < slots; s++) total += sums[s];
    const float factor = max_norm / (sqrt(total) + 1e-6f);
    if (factor < 1.0f) x[i] *= factor;
}

__kernel void sgd_step(const int n, __global float* p, __global const float* g, __global float* buf, const int has_momentum,
                       const float lr, const float momentum, const int nesterov, const float wd)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    float d = g[i] + wd * p[i];
    if (has_momentum) {
        buf[i] = momentum * buf[i] + d;
        d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] -= lr * d;
}

__kernel void adam_step(const int n, __global float* p, __global const float* g, __global float* m, __global float* v,
                        const float lr, const float beta1, const float beta2, const float eps, const float wd,
                        const int decoupled, const float bc1, const float bc2)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    float d = g[i];
    if (decoupled) p[i] *= 1.0f - lr * wd; else d += wd * p[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * d;
    v[i] = beta2 * v[i] + (1.0f - beta2) * d * d;
    p[i] -= (lr / bc1) * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
}

__kernel void bce_logits(const int n, __global const float* x, __global const float* y, const float scale,
                         __global float* g, __global float* terms)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float xi = x[i], yi = y[i];
    terms[i] = fmax(xi, 0.0f) - xi * yi + log1p(exp(-fabs(xi)));
    g[i] = (1.0f / (1.0f + exp(-xi)) - yi) * scale;
}

// mode: 0 last, 1 mean, 2 max (PoolingMode's raw values).
__kernel void pool_steps(const int steps, const int batch, const int width, const int mode, __global const float* x,
                         __global const int* lengths, __global float* out, __global float* argmax)
{
    const int j = get_global_id(0), b = get_global_id(1);
    if (j >= width || b >= batch) return;
    const int n = min(lengths[b], steps);
    float value = 0.0f;
    int best = -1;
    if (n > 0) {
        if (mode == 0) {
            best = n - 1;
            value = x[(best * batch + b) * width + j];
        } else if (mode == 1) {
            for (int t = 0; t < n; t++) value += x[(t * batch + b) * width + j];
            value /= (float)n;
        } else {
            best = 0;
            value = x[b * width + j];
            for (int t = 1; t < n; t++) {
                const float v = x[(t * batch + b) * width + j];
                if (v > value) { value = v; best = t; }
            }
        }
    }
    out[b * width + j] = value;
    argmax[b * width + j] = (float)best;
}

__kernel void pool_steps_backward(const int steps, const int batch, const int width, const int mode,
                                  __global const float* g, __global const int* lengths, __global const float* argmax,
                                  __global float* dx)
{
    const int j = get_global_id(0), r = get_global_id(1);
    if (j >= width || r >= steps * batch) return;
    const int t = r / batch, b = r % batch, n = lengths[b];
    float value = 0.0f;
    if (t < n) {
        if (mode == 1) value = g[b * width + j] / (float)n;
        else if (t == (int)argmax[b * width + j]) value = g[b * width + j];
    }
    dx[r * width + j] = value;
}
