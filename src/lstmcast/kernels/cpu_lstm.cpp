// One Keras LSTM layer (any direction count, any Keras activation) on the CPU, forward and
// backward, in C++.
//
// Why not oneDNN's LSTM (what nn.LSTM runs)? For the small layers forecasting uses (tens of
// units, batch 32) each step is a ~32x50x200 product: library calls, thread barriers and
// packing cost more than the arithmetic. Here every batch row's recurrence is independent of
// the others, so each thread owns blocks of rows for the whole sequence (no barrier per step),
// and each step is a register-blocked product of those rows with the recurrent kernel (packed,
// in cache) fused with the gate arithmetic. The input projection (the bias riding on a column
// of ones) and the gradients of both kernels are computed in the same loops; only the
// gradient of the layer's input, when needed, is an ATen matmul. Without a gradient (`infer`)
// the forward keeps only what its output needs (see ForwardOut). The file also holds the CPU
// dropout (a hashed mask, at the end). Built on first use by torch.utils.cpp_extension
// (lstmcast/kernels/cpu_lstm.py); the torch loop in recurrence.py is the reference it is
// tested against.
//
// Shapes: B batch, L steps, I inputs, D directions, U units, G = 4U (gates i, f, g, o).
// Per-step arrays are batch first, (B, L, D, width), so the output needs no transposes; the
// backward direction walks time from L-1 down to 0 and stores each state at its own time.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

// The activation codes are lstmcast/kernels/activations.py's CODES, which cpu_lstm.py passes
// as -DLSTMCAST_ACT_<NAME>=<code>: one table for Python, this file and the Triton kernels.
#if !defined(LSTMCAST_ACT_TANH) || !defined(LSTMCAST_ACT_RELU) ||                 \
    !defined(LSTMCAST_ACT_SIGMOID) || !defined(LSTMCAST_ACT_LINEAR) ||            \
    !defined(LSTMCAST_ACT_ELU) || !defined(LSTMCAST_ACT_SOFTSIGN) ||              \
    !defined(LSTMCAST_ACT_HARD_SIGMOID)
#error "no -DLSTMCAST_ACT_<NAME>=<code> flags: build through lstmcast/kernels/cpu_lstm.py"
#endif

namespace {

enum Act {
  TANH = LSTMCAST_ACT_TANH,
  RELU = LSTMCAST_ACT_RELU,
  SIGMOID = LSTMCAST_ACT_SIGMOID,
  LINEAR = LSTMCAST_ACT_LINEAR,
  ELU = LSTMCAST_ACT_ELU,
  SOFTSIGN = LSTMCAST_ACT_SOFTSIGN,
  HARD_SIGMOID = LSTMCAST_ACT_HARD_SIGMOID,
};

// One register of floats: 16 with AVX-512, 8 with AVX2. A wider type on AVX2 (two registers
// per value) made the register blocks below spill to memory: 4x slower.
#if defined(__AVX512F__)
typedef float vec __attribute__((vector_size(64)));
typedef float vec_unaligned __attribute__((vector_size(64), aligned(4)));
constexpr int64_t V = 16;
constexpr int NV_MAX = 4;  // 16 accumulators + 4 loads of 32 registers
#else
typedef float vec __attribute__((vector_size(32)));
typedef float vec_unaligned __attribute__((vector_size(32), aligned(4)));
constexpr int64_t V = 8;
constexpr int NV_MAX = 3;  // 12 accumulators + 3 loads + 1 broadcast of 16 registers
#endif
constexpr int64_t ROWS = 4;  // batch rows per register block
constexpr int64_t kL1Bytes = 32 * 1024;  // a core's L1 data cache (Zen 3, most x86 cores)

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

inline vec load(const float* p) { return *reinterpret_cast<const vec_unaligned*>(p); }
inline void store(float* p, vec v) { *reinterpret_cast<vec_unaligned*>(p) = v; }

// exp for the gate loops, in plain arithmetic so that the compiler vectorises those loops
// (a call to the C library's expf stops it): Cody-Waite reduction x = n ln2 + r, a degree-6
// polynomial for e^r (Cephes' expf coefficients, ~1 ulp), 2^n built in the exponent bits.
// The input is clamped so that 2^n stays a normal float: no inf, no NaN. (Comparisons, not
// fmin/fmax, which stay library calls when NaNs must be honoured.)
inline float clamp(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

inline float exp_poly(float x) {
  x = clamp(x, -87.0f, 88.0f);
  const float n = std::floor(x * 1.44269504f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  // a bit cast the vectoriser understands (a memcpy here stopped it)
  return p * __builtin_bit_cast(float, bits);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_poly(-x)); }
inline float tanh_exp(float x) { return 2.0f / (1.0f + exp_poly(-2.0f * x)) - 1.0f; }

template <int64_t kind>
inline float act(float x) {
  switch (kind) {
    case TANH: return tanh_exp(x);
    case RELU: return x > 0.0f ? x : 0.0f;
    case SIGMOID: return sigmoid(x);
    case LINEAR: return x;
    case ELU: return x > 0.0f ? x : exp_poly(x) - 1.0f;
    case SOFTSIGN: return x / (1.0f + std::fabs(x));
    case HARD_SIGMOID:
    default: return clamp(x / 6.0f + 0.5f, 0.0f, 1.0f);
  }
}

// d act / dx written in terms of the output y = act(x), so the backward needs no
// pre-activations saved.
template <int64_t kind>
inline float act_grad(float y) {
  switch (kind) {
    case TANH: return 1.0f - y * y;
    case RELU: return y > 0.0f ? 1.0f : 0.0f;
    case SIGMOID: return y * (1.0f - y);
    case LINEAR: return 1.0f;
    case ELU: return y > 0.0f ? 1.0f : y + 1.0f;
    case SOFTSIGN: { const float a = 1.0f - std::fabs(y); return a * a; }
    case HARD_SIGMOID:
    default: return (y > 0.0f && y < 1.0f) ? 1.0f / 6.0f : 0.0f;
  }
}

// A product's K dimension may come in stretches, each with its own operands: the input
// projection and the recurrent product of one step (x_t's columns, then h_prev's), or one
// stretch per batch row for the kernels' gradients (sums over each row's time steps). Row r of
// a stretch reads a[r * rs + k * ks] for k < K and meets b[k * ldb + column]. The accumulators
// stay in registers across stretches: stored and reloaded between them, a block of a
// lookback-10 gradient did 24 loads and stores for every 108 FMAs.
struct Stretch {
  const float* a;
  int64_t rs, ks, K;
  const float* b;
  int64_t ldb;
};
constexpr int MAX_STRETCHES = 4;
static_assert(ROWS <= MAX_STRETCHES, "the kernel gradients take a stretch per batch row");

// out[r, 0:V*NV] (+)= sum over stretches and k of a[r, k] * b[k, 0:V*NV] for R rows, the
// accumulators in registers (zero first when `zero`, else out's values).
template <int R, int NV>
inline void product_block(const Stretch* parts, int n_parts, int64_t col, float* out,
                          int64_t ldo, bool zero) {
  vec acc[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = zero ? vec{} : load(out + r * ldo + v * V);
  for (int p = 0; p < n_parts; ++p) {
    const float* a = parts[p].a;
    const float* b = parts[p].b + col;
    const int64_t rs = parts[p].rs, ks = parts[p].ks, ldb = parts[p].ldb, K = parts[p].K;
    for (int64_t k = 0; k < K; ++k) {
      vec bk[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        bk[v] = load(b + k * ldb + v * V);
        // Keep the row of b in a register: folded into each FMA as a memory operand (GCC's
        // choice), it is loaded once per batch row, and the loads, not the FMAs, set the pace.
        asm("" : "+v"(bk[v]));
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const float ar = a[r * rs + k * ks];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] += ar * bk[v];
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(out + r * ldo + v * V, acc[r][v]);
}

template <int R>
void product_rows(const Stretch* parts, int n_parts, int64_t N, float* out, int64_t ldo,
                  bool zero) {
  int64_t j = 0;
  for (; j + NV_MAX * V <= N; j += NV_MAX * V) {
    product_block<R, NV_MAX>(parts, n_parts, j, out + j, ldo, zero);
  }
  switch ((N - j) / V) {
    case 3: product_block<R, 3>(parts, n_parts, j, out + j, ldo, zero); break;
    case 2: product_block<R, 2>(parts, n_parts, j, out + j, ldo, zero); break;
    case 1: product_block<R, 1>(parts, n_parts, j, out + j, ldo, zero); break;
    default: break;
  }
}

// out[r, 0:N] (+)= sum over the stretches of a[r, 0:K] @ b[0:K, 0:N] for every r < rows
// (out is overwritten when `zero`). N is a multiple of V; b may be read up to N columns (pad
// or give slack).
void product(int64_t rows, const Stretch* stretches, int n_parts, int64_t N, float* out,
             int64_t ldo, bool zero) {
  Stretch parts[MAX_STRETCHES];
  std::copy(stretches, stretches + n_parts, parts);
  for (; rows >= 4; rows -= 4, out += 4 * ldo) {
    product_rows<4>(parts, n_parts, N, out, ldo, zero);
    for (int p = 0; p < n_parts; ++p) parts[p].a += 4 * parts[p].rs;
  }
  switch (rows) {
    case 3: product_rows<3>(parts, n_parts, N, out, ldo, zero); break;
    case 2: product_rows<2>(parts, n_parts, N, out, ldo, zero); break;
    case 1: product_rows<1>(parts, n_parts, N, out, ldo, zero); break;
    default: break;
  }
}

// out[0:rows, 0:N] += the stretch's a^T b, column block after column block: a block's K x V*NV
// floats of b stay in L1 while every block of rows reads them. (`product` takes the rows
// outer and reads all of b once per block of rows: at lookback 96 a batch row's dz is 77 KB,
// from L2 each time.) For long stretches only: the accumulators go through memory after each
// stretch, where `product` keeps them in registers across all of them.
template <int NV>
void column_block(int64_t rows, Stretch part, int64_t col, float* out, int64_t ldo) {
  for (; rows >= 4; rows -= 4, out += 4 * ldo, part.a += 4 * part.rs) {
    product_block<4, NV>(&part, 1, col, out + col, ldo, false);
  }
  switch (rows) {
    case 3: product_block<3, NV>(&part, 1, col, out + col, ldo, false); break;
    case 2: product_block<2, NV>(&part, 1, col, out + col, ldo, false); break;
    case 1: product_block<1, NV>(&part, 1, col, out + col, ldo, false); break;
    default: break;
  }
}

void product_by_columns(int64_t rows, const Stretch& part, int64_t N, float* out, int64_t ldo) {
  int64_t j = 0;
  for (; j + NV_MAX * V <= N; j += NV_MAX * V) column_block<NV_MAX>(rows, part, j, out, ldo);
  switch ((N - j) / V) {
    case 3: column_block<3>(rows, part, j, out, ldo); break;
    case 2: column_block<2>(rows, part, j, out, ldo); break;
    case 1: column_block<1>(rows, part, j, out, ldo); break;
    default: break;
  }
}

// An ensemble's K members run as one layer call: their batches are stacked, member-major, into
// B = K * Bm rows, and member m's rows meet member m's weights (each weight with a leading
// member axis). A row block never straddles two members. K = 1 is the plain layer.
struct Layer {
  int64_t B, L, D, U, G, Ia;  // Ia: inputs + 1, the constant 1 that carries the bias
  int64_t K, Bm;              // members, and batch rows per member
  // row (b, t, d) of a (B, L, D, width) array
  int64_t row(int64_t b, int64_t t, int64_t d) const { return (b * L + t) * D + d; }
  // the time that direction d reads at its step s
  int64_t time(int64_t d, int64_t s) const { return d == 0 ? s : L - 1 - s; }
  int64_t batch_stride() const { return L * D; }  // rows between (b, t, d) and (b+1, t, d)
  int64_t x_row(int64_t b, int64_t t) const { return b * L + t; }  // row of x (B, L, Ia)
};

// Where the forward loop writes. Training keeps every step's states and gates for the
// backward pass: the layer's (B, L, D, width) arrays hs, cs and gates. Inference (no gradient
// wanted) needs none of them but the output, so the cell states and gates stay in a block's
// own buffers, which stay in cache, and so do the hidden states when only the last ones are
// wanted (hs null, `last` (B, D, U)). At batch 10,000, lookback 24 and 32 units the arrays are
// 180 MB written through memory, about 20% of the pass.
struct ForwardOut {
  float *hs, *cs, *gates, *last;
};

// The forward loop for batch rows b0 .. b0+rows-1 of direction d, over all steps.
// x (B, L, Ia) with a last column of ones; w_in (Ia, Gp) = [W_ih^T; bias], w_hh (U, Gp) =
// W_hh^T, both zero-padded to Gp columns.
template <int64_t kind>
void forward_rows(const Layer& s, int64_t d, int64_t b0, int64_t rows, const float* x,
                  const float* w_in, const float* w_hh, int64_t Gp, ForwardOut out) {
  const int64_t U = s.U, G = s.G, rs = s.batch_stride();  // rs: rows between batch rows
  const bool train = out.cs != nullptr;
  std::vector<float> z(ROWS * Gp);
  // inference: the cell states (updated in place), the gates, and when hs is null the
  // hidden states of the last two steps; c_own is also training's zero state before step 0
  std::vector<float> c_own(ROWS * U, 0.0f), gates_own(ROWS * G), h_own(2 * ROWS * U);
  // step `step`'s state of row 0 of the block; row r's is r * h_rs further
  const int64_t h_rs = out.hs ? rs * U : U;
  const auto h_at = [&](int64_t step) {
    return out.hs ? out.hs + s.row(b0, s.time(d, step), d) * U
                  : h_own.data() + (step & 1) * ROWS * U;
  };
  for (int64_t step = 0; step < s.L; ++step) {
    const int64_t t = s.time(d, step), t_prev = s.time(d, step - 1);
    // z = [x_t, 1] @ [W_ih^T; bias] + h_prev @ W_hh^T; the state before the first step is zero
    const Stretch parts[2] = {{x + s.x_row(b0, t) * s.Ia, s.L * s.Ia, 1, s.Ia, w_in, Gp},
                              {step > 0 ? h_at(step - 1) : nullptr, h_rs, 1, U, w_hh, Gp}};
    product(rows, parts, step > 0 ? 2 : 1, Gp, z.data(), Gp, true);
    // row 0's gates, cell state, previous cell state and hidden state, and the strides
    float* g0 = train ? out.gates + s.row(b0, t, d) * G : gates_own.data();
    float* c0 = train ? out.cs + s.row(b0, t, d) * U : c_own.data();
    const float* c_prev0 = train && step > 0 ? out.cs + s.row(b0, t_prev, d) * U : c_own.data();
    float* h0 = h_at(step);
    const int64_t g_rs = train ? rs * G : G, c_rs = train ? rs * U : U;
    const int64_t c_prev_rs = train && step > 0 ? rs * U : U;
    for (int64_t r = 0; r < rows; ++r) {
      const float* zr = z.data() + r * Gp;
      const float* c_prev = c_prev0 + r * c_prev_rs;
      float *gr = g0 + r * g_rs, *cr = c0 + r * c_rs, *hr = h0 + r * h_rs;
      // Two loops, not one: in one, each unit's act(cell) waited on its gates' exp (a chain
      // of ~100 cycles per vector that out-of-order execution could not hide); apart, every
      // iteration of each loop is independent of the others. 9% faster at 32 units, the same
      // floats.
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        gr[u] = sigmoid(zr[u]);
        gr[U + u] = sigmoid(zr[U + u]);
        gr[2 * U + u] = act<kind>(zr[2 * U + u]);
        gr[3 * U + u] = sigmoid(zr[3 * U + u]);
      }
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float cell = gr[U + u] * c_prev[u] + gr[u] * gr[2 * U + u];
        cr[u] = cell;
        hr[u] = gr[3 * U + u] * act<kind>(cell);
      }
    }
  }
  if (out.last != nullptr) {
    const float* h_last = h_at(s.L - 1);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out.last + ((b0 + r) * s.D + d) * U, h_last + r * h_rs, U * sizeof(float));
    }
  }
}

// Where the backward loop keeps dz for a block of rows: row r's step t at
// base + r * row_stride + t * step_stride. The layer-wide (B, L, D, G) array when the input's
// gradient needs it afterwards, else the thread's own scratch for the block, which stays in
// cache (at batch 1024 and lookback 96 the array is 78 MB written and read back through memory).
struct DzView {
  float* base;
  int64_t row_stride, step_stride;
  float* at(int64_t r, int64_t t) const { return base + r * row_stride + t * step_stride; }
};

// The gradient reaching the layer's output: grad (B, L, D, U) when every step's state was
// output, else only the states after each direction's last step were, and grad is (B, D, U).
// (Then the other steps' gradients are zero: no (B, L, D, U) array of zeros is made, filled,
// read back and added to; for the bidirectional preset that was ~12% of a training step.)
struct OutputGrad {
  const float* grad;
  bool all_steps;
  // row r's gradient at direction d's time t, or null if it is zero
  const float* at(const Layer& s, int64_t b, int64_t t, int64_t d) const {
    if (all_steps) return grad + s.row(b, t, d) * s.U;
    return t == s.time(d, s.L - 1) ? grad + (b * s.D + d) * s.U : nullptr;
  }
};

// The backward loop for the same rows: dz (gradient of the pre-activations) of every step,
// and these rows' shares of the kernels' gradients, added to dw_in (Ia, Gp) = d [W_ih, bias]^T
// and dw_hh (U, Gp) = d W_hh^T.
template <int64_t kind>
void backward_rows(const Layer& s, int64_t d, int64_t b0, int64_t rows, OutputGrad grad_out,
                   const float* x, int64_t Gp, const float* w_t_packed, int64_t Up,
                   const float* hs, const float* cs, const float* gates, DzView dz,
                   float* dw_in, float* dw_hh) {
  const int64_t U = s.U, G = s.G;
  std::vector<float> dh(ROWS * Up, 0.0f), dc(ROWS * U, 0.0f);
  const int64_t t_last = s.time(d, s.L - 1);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dh.data() + r * Up, grad_out.at(s, b0 + r, t_last, d), U * sizeof(float));
  }
  for (int64_t step = s.L - 1; step >= 0; --step) {
    const int64_t t = s.time(d, step), t_prev = s.time(d, step - 1);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = s.row(b0 + r, t, d);
      const float* gr = gates + row * G;
      const float* cr = cs + row * U;
      const float* c_prev = step > 0 ? cs + s.row(b0 + r, t_prev, d) * U : cr;  // cr: unused
      const float c_prev_scale = step > 0 ? 1.0f : 0.0f;
      const float* dh_r = dh.data() + r * Up;
      float* dc_r = dc.data() + r * U;
      float* dzr = dz.at(r, t);
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float i = gr[u], f = gr[U + u], g = gr[2 * U + u], o = gr[3 * U + u];
        const float act_c = act<kind>(cr[u]);
        const float dcell = dc_r[u] + dh_r[u] * o * act_grad<kind>(act_c);
        dzr[u] = dcell * g * i * (1.0f - i);
        dzr[U + u] = dcell * c_prev_scale * c_prev[u] * f * (1.0f - f);
        dzr[2 * U + u] = dcell * i * act_grad<kind>(g);
        dzr[3 * U + u] = dh_r[u] * act_c * o * (1.0f - o);
        dc_r[u] = dcell * f;
      }
    }
    if (step > 0) {  // dh of the previous step = its own output gradient + dz @ W_hh
      const bool output_grad = grad_out.all_steps;  // else zero before the last step
      for (int64_t r = 0; output_grad && r < rows; ++r) {
        std::memcpy(dh.data() + r * Up, grad_out.at(s, b0 + r, t_prev, d), U * sizeof(float));
      }
      const Stretch part{dz.at(0, t), dz.row_stride, 1, G, w_t_packed, Up};
      product(rows, &part, 1, Up, dh.data(), Up, !output_grad);
    }
  }
  // Per batch row, as sums over time: d[W_ih, bias]^T[k, j] += [x_t, 1][k] * dz[t][j], and
  // dW_hh^T[u, j] += h_prev[u] * dz[t][j], where the forward direction's h_prev is time t-1's
  // state and the backward direction's time t+1's. (Transposed, so that the products' vector
  // dimension is the gates': less padding.)
  const int64_t t_dz = d == 0 ? 1 : 0, t_h = d == 0 ? 0 : 1;
  Stretch in_parts[MAX_STRETCHES], rec_parts[MAX_STRETCHES];
  for (int64_t r = 0; r < rows; ++r) {
    in_parts[r] = {x + s.x_row(b0 + r, 0) * s.Ia, 1, s.Ia, s.L, dz.at(r, 0), dz.step_stride};
    rec_parts[r] = {hs + s.row(b0 + r, t_h, d) * U, 1, s.D * U, s.L - 1, dz.at(r, t_dz),
                    dz.step_stride};
  }
  if (s.L * Gp * static_cast<int64_t>(sizeof(float)) > kL1Bytes) {  // a row's dz: beyond L1
    for (int64_t r = 0; r < rows; ++r) {
      product_by_columns(s.Ia, in_parts[r], Gp, dw_in, Gp);
      if (s.L > 1) product_by_columns(U, rec_parts[r], Gp, dw_hh, Gp);
    }
    return;
  }
  product(s.Ia, in_parts, static_cast<int>(rows), Gp, dw_in, Gp, false);
  if (s.L > 1) product(U, rec_parts, static_cast<int>(rows), Gp, dw_hh, Gp, false);
}

#define LSTMCAST_DISPATCH(FN, KIND, ...)                       \
  switch (KIND) {                                             \
    case TANH: FN<TANH>(__VA_ARGS__); break;                  \
    case RELU: FN<RELU>(__VA_ARGS__); break;                  \
    case SIGMOID: FN<SIGMOID>(__VA_ARGS__); break;            \
    case LINEAR: FN<LINEAR>(__VA_ARGS__); break;              \
    case ELU: FN<ELU>(__VA_ARGS__); break;                    \
    case SOFTSIGN: FN<SOFTSIGN>(__VA_ARGS__); break;          \
    case HARD_SIGMOID:                                        \
    default: FN<HARD_SIGMOID>(__VA_ARGS__); break;            \
  }

// Tasks are (direction, member, block of up to ROWS of its batch rows), each for the whole
// sequence, spread over torch's intra-op threads: fn(begin, end) runs once per thread on its
// share of tasks.
inline int64_t member_blocks(const Layer& s) { return (s.Bm + ROWS - 1) / ROWS; }
inline int64_t blocks_of(const Layer& s) { return s.K * member_blocks(s); }

struct Task {
  int64_t d, m, b0, rows;  // direction, member, first batch row (of all B), rows
};

inline Task task_at(const Layer& s, int64_t task) {
  const int64_t d = task / blocks_of(s), rest = task % blocks_of(s);
  const int64_t m = rest / member_blocks(s), first = (rest % member_blocks(s)) * ROWS;
  return {d, m, m * s.Bm + first, std::min(ROWS, s.Bm - first)};
}

// Denormal floats flushed to zero while a thread runs our loops: gradients that fade over
// many steps otherwise reach the denormal range, where x86 arithmetic is many times slower
// (what cuDNN and oneDNN do too). The caller's setting is restored.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(_M_X64)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#endif
};

template <typename Fn>
void for_task_ranges(const Layer& s, const Fn& fn) {
  at::parallel_for(0, s.D * blocks_of(s), 1, [&](int64_t begin, int64_t end) {
    FlushDenormals flush;
    fn(begin, end);
  });
}

// The layer's large arrays (gates and dz are 78 MB each at batch 1024, lookback 96, 50 units)
// come from this cache of freed blocks. From the allocator they would be fresh pages every
// call (glibc maps blocks over 32 MB anew and unmaps them on free), and faulting those pages
// in cost as much as the forward pass itself. A block goes back to the cache when its tensor
// is freed (autograd frees the saved arrays after the backward pass), so a training loop
// reuses the same few blocks every step. At most kCacheBytes are kept; smaller arrays go to
// torch's allocator, which serves them well.
class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{1} << 20;
  static constexpr size_t kCacheBytes = size_t{1} << 30;

  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache();  // never destroyed: tensors may outlive exit
    return *cache;
  }

  // A block of at least `bytes` (64-byte aligned), and its true size.
  std::pair<void*, size_t> take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= 2 * bytes) {  // bounded waste
        auto block = *it;
        free_.erase(it);
        cached_ -= block.first;
        return {block.second, block.first};
      }
    }
    const size_t size = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, size);
    TORCH_CHECK(p != nullptr, "out of memory allocating ", size, " bytes");
    return {p, size};
  }

  void give_back(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kCacheBytes) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
};

// An uninitialised (n0, n1, ...) float tensor with `slack` floats of readable memory after its
// end: the products read whole vectors past a row's last column.
torch::Tensor empty_with_slack(at::IntArrayRef sizes, int64_t slack,
                               const torch::TensorOptions& options) {
  int64_t n = 1;
  for (auto size : sizes) n *= size;
  const size_t bytes = static_cast<size_t>(n + slack) * sizeof(float);
  if (bytes < BlockCache::kMinBytes) {
    return torch::empty({n + slack}, options).narrow(0, 0, n).view(sizes);
  }
  auto [p, size] = BlockCache::instance().take(bytes);
  return torch::from_blob(
      p, sizes, [size](void* q) { BlockCache::instance().give_back(q, size); }, options);
}

// K, the members: weights (G, I), (G, U), (G), (G) are one model's; (K, G, I), (K, G, U),
// (K, G), (K, G) are K members'.
int64_t check_weights(const std::vector<torch::Tensor>& weights, int64_t D) {
  TORCH_CHECK(D >= 1 && static_cast<int64_t>(weights.size()) == 4 * D,
              "expected (w_ih, w_hh, b_ih, b_hh) per direction");
  const bool members = weights[1].dim() == 3;
  const int64_t K = members ? weights[1].size(0) : 1;
  for (size_t j = 0; j < weights.size(); ++j) {
    const auto& w = weights[j];
    TORCH_CHECK(w.device().is_cpu() && w.scalar_type() == torch::kFloat32 && w.is_contiguous(),
                "weights must be contiguous float32 CPU tensors");
    TORCH_CHECK(w.dim() == (j % 4 < 2 ? 2 : 1) + (members ? 1 : 0) && (!members || w.size(0) == K),
                "every weight must have the same leading member axis, or none");
  }
  return K;
}

// Member m's direction d's w_ih (G, I), w_hh (G, U), b_ih (G), b_hh (G)
const float* weight(const std::vector<torch::Tensor>& w, int64_t K, int64_t m, int64_t d,
                    int part) {
  const auto& t = w[4 * d + part];
  return t.data_ptr<float>() + m * (t.numel() / K);
}

// The packing below is plain loops, not tensor ops: at batch 32 and lookback 10 a dozen small
// ATen calls per layer cost as much as the recurrence.

// Per member and direction (index m * D + d) [W_ih^T; b_ih + b_hh] (I + 1, Gp) and W_hh^T
// (U, Gp), zero-padded to Gp columns.
void pack_forward(const std::vector<torch::Tensor>& w, int64_t K, int64_t D, int64_t I,
                  int64_t U, int64_t Gp, std::vector<float>& w_in, std::vector<float>& w_hh) {
  const int64_t G = 4 * U;
  w_in.assign(K * D * (I + 1) * Gp, 0.0f);
  w_hh.assign(K * D * U * Gp, 0.0f);
  for (int64_t md = 0; md < K * D; ++md) {
    const int64_t m = md / D, d = md % D;
    const float *w_ih = weight(w, K, m, d, 0), *w_rec = weight(w, K, m, d, 1);
    const float *b_ih = weight(w, K, m, d, 2), *b_hh = weight(w, K, m, d, 3);
    float* in = w_in.data() + md * (I + 1) * Gp;
    float* rec = w_hh.data() + md * U * Gp;
    for (int64_t j = 0; j < G; ++j) {
      for (int64_t k = 0; k < I; ++k) in[k * Gp + j] = w_ih[j * I + k];
      in[I * Gp + j] = b_ih[j] + b_hh[j];
      for (int64_t u = 0; u < U; ++u) rec[u * Gp + j] = w_rec[j * U + u];
    }
  }
}

// Per member and direction (index m * D + d) W_hh (G, Up), zero-padded to Up columns.
std::vector<float> pack_backward(const std::vector<torch::Tensor>& w, int64_t K, int64_t D,
                                 int64_t U, int64_t Up) {
  const int64_t G = 4 * U;
  std::vector<float> packed(K * D * G * Up, 0.0f);
  for (int64_t md = 0; md < K * D; ++md) {
    const float* w_rec = weight(w, K, md / D, md % D, 1);
    for (int64_t j = 0; j < G; ++j) {
      std::memcpy(packed.data() + (md * G + j) * Up, w_rec + j * U, U * sizeof(float));
    }
  }
  return packed;
}

}  // namespace

namespace {

// The layer's forward pass on x (B, L, I); weights: w_ih (G, I), w_hh (G, U), b_ih (G),
// b_hh (G) per direction (torch's nn.LSTM layout), or K members' with a leading member axis,
// and then x is the K members' inputs stacked member-major (B = K * batch rows per member). `train`: returns hs, cs (B, L, D, U),
// gates (B, L, D, G) and x with a column of ones appended (B, L, I + 1), which the backward
// reuses. Else returns {hs} when `all_steps`, or {the last states (B, D, U)}: direction d's
// state after its last step (time L-1 forward, time 0 backward).
std::vector<torch::Tensor> run_forward(torch::Tensor x, const std::vector<torch::Tensor>& weights,
                                       int64_t kind, bool train, bool all_steps) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() == 3,
              "x must be a (batch, steps, inputs) float32 CPU tensor");
  const int64_t D = static_cast<int64_t>(weights.size()) / 4;
  const int64_t K = check_weights(weights, D);
  x = x.contiguous();
  const int64_t B = x.size(0), L = x.size(1), I = x.size(2);
  TORCH_CHECK(B % K == 0, "x's batch must be the members' batches stacked");
  const int64_t G = weights[1].size(-2), U = G / 4, Gp = round_up(G, V);
  const Layer s{B, L, D, U, G, I + 1, K, B / K};

  auto x_ones = empty_with_slack({B, L, I + 1}, V, x.options());
  const float* x_in = x.data_ptr<float>();
  float* x_p = x_ones.data_ptr<float>();
  for (int64_t row = 0; row < B * L; ++row) {
    std::memcpy(x_p + row * (I + 1), x_in + row * I, I * sizeof(float));
    x_p[row * (I + 1) + I] = 1.0f;
  }
  std::vector<float> w_in, w_hh;
  pack_forward(weights, K, D, I, U, Gp, w_in, w_hh);
  torch::Tensor hs, cs, gates, last;
  ForwardOut out{nullptr, nullptr, nullptr, nullptr};
  if (train || all_steps) {
    hs = empty_with_slack({B, L, D, U}, V, x.options());
    out.hs = hs.data_ptr<float>();
  } else {
    last = torch::empty({B, D, U}, x.options());
    out.last = last.data_ptr<float>();
  }
  if (train) {
    cs = empty_with_slack({B, L, D, U}, 0, x.options());
    gates = empty_with_slack({B, L, D, G}, 0, x.options());
    out.cs = cs.data_ptr<float>();
    out.gates = gates.data_ptr<float>();
  }
  const float *w_in_p = w_in.data(), *w_hh_p = w_hh.data();
  for_task_ranges(s, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const Task k = task_at(s, task);
      const int64_t md = k.m * D + k.d;
      LSTMCAST_DISPATCH(forward_rows, kind, s, k.d, k.b0, k.rows, x_p,
                        w_in_p + md * (I + 1) * Gp, w_hh_p + md * U * Gp, Gp, out)
    }
  });
  if (train) return {hs, cs, gates, x_ones};
  return {all_steps ? hs : last};
}

}  // namespace

// For training: hs, cs (B, L, D, U), gates (B, L, D, G) and x_ones (see run_forward).
std::vector<torch::Tensor> forward(torch::Tensor x, std::vector<torch::Tensor> weights,
                                   int64_t kind) {
  return run_forward(x, weights, kind, true, true);
}

// For inference: every hidden state (B, L, D, U) when `all_steps`, else each direction's last
// (B, D, U); the same floats as forward's.
torch::Tensor infer(torch::Tensor x, std::vector<torch::Tensor> weights, int64_t kind,
                    bool all_steps) {
  return run_forward(x, weights, kind, false, all_steps)[0];
}

// Gradients of forward's inputs from grad, the gradient of its output: of every hidden state
// (B, L, D, U) when `all_steps`, else of each direction's state after its last step (B, D, U).
// Returns dx (undefined unless need_dx), then per direction d w_ih (G, I), d w_hh (G, U),
// d bias (G) (the same for b_ih and b_hh), each with the weights' member axis if they have one.
std::vector<torch::Tensor> backward(torch::Tensor grad, torch::Tensor x_ones,
                                    std::vector<torch::Tensor> weights, torch::Tensor hs,
                                    torch::Tensor cs, torch::Tensor gates, int64_t kind,
                                    bool need_dx, bool all_steps) {
  grad = grad.contiguous();
  const int64_t B = gates.size(0), L = gates.size(1), D = gates.size(2), G = gates.size(3);
  TORCH_CHECK(grad.dim() == (all_steps ? 4 : 3) && grad.size(0) == B &&
                  grad.size(all_steps ? 2 : 1) == D,
              "grad must be (batch, steps, directions, units), or (batch, directions, units)");
  const int64_t I = x_ones.size(2) - 1, U = G / 4, Up = round_up(U, V), Gp = round_up(G, V);
  const int64_t K = check_weights(weights, D);
  const Layer s{B, L, D, U, G, I + 1, K, B / K};
  const std::vector<float> w_t_packed = pack_backward(weights, K, D, U, Up);
  // dz for the input's gradient (see DzView), else a block's worth of scratch per thread
  torch::Tensor dz;
  if (need_dx) dz = empty_with_slack({B, L, D, G}, V, gates.options());
  const int64_t scratch_size = need_dx ? 0 : ROWS * L * G + V;
  // Each thread sums its rows' shares of the kernel gradients, d [W_ih, bias]^T (I + 1, Gp)
  // and d W_hh^T (U, Gp) per member and direction, in its own slot; the slots are added in thread order
  // afterwards, so a run repeats bit for bit (a lock would add them in whatever order the
  // threads finish).
  const int64_t in_size = K * D * (I + 1) * Gp, slot_size = in_size + K * D * U * Gp;
  const int64_t threads = at::get_num_threads();
  std::vector<float> slots(threads * slot_size, 0.0f);
  // written before it is read, like the layer-wide dz: no zero fill on every call
  std::unique_ptr<float[]> scratch(new float[threads * scratch_size]);
  const OutputGrad grad_out{grad.data_ptr<float>(), all_steps};
  const float* x_p = x_ones.data_ptr<float>();
  const float* w_p = w_t_packed.data();
  const float *hs_p = hs.data_ptr<float>(), *cs_p = cs.data_ptr<float>();
  const float* gates_p = gates.data_ptr<float>();
  float* dz_p = need_dx ? dz.data_ptr<float>() : nullptr;
  for_task_ranges(s, [&](int64_t begin, int64_t end) {
    float* slot = slots.data() + at::get_thread_num() * slot_size;
    float* own = scratch.get() + at::get_thread_num() * scratch_size;
    for (int64_t task = begin; task < end; ++task) {
      const Task k = task_at(s, task);
      const int64_t md = k.m * D + k.d;
      const DzView dz_rows = need_dx ? DzView{dz_p + s.row(k.b0, 0, k.d) * G, L * D * G, D * G}
                                     : DzView{own, L * G, G};
      LSTMCAST_DISPATCH(backward_rows, kind, s, k.d, k.b0, k.rows, grad_out, x_p, Gp,
                        w_p + md * G * Up, Up, hs_p, cs_p, gates_p, dz_rows,
                        slot + md * (I + 1) * Gp, slot + in_size + md * U * Gp)
    }
  });
  for (int64_t t = 1; t < threads; ++t) {
    for (int64_t j = 0; j < slot_size; ++j) slots[j] += slots[t * slot_size + j];
  }
  std::vector<torch::Tensor> grads(1 + 3 * D);
  if (need_dx) {
    std::vector<torch::Tensor> parts;
    for (int64_t d = 0; d < D; ++d) parts.push_back(weights[4 * d]);
    const auto w_ih = D == 1 ? parts[0] : torch::cat(parts, -2);  // ([K,] D * G, I)
    grads[0] = K == 1 ? dz.view({B * L, D * G}).mm(w_ih.view({D * G, I})).view({B, L, I})
                      : dz.view({K, B / K * L, D * G}).bmm(w_ih).view({B, L, I});
  }
  for (int64_t d = 0; d < D; ++d) {  // transpose the sums into nn.LSTM's layouts
    auto dw_ih = torch::empty(weights[4 * d].sizes(), gates.options());
    auto dw_hh = torch::empty(weights[4 * d + 1].sizes(), gates.options());
    auto dbias = torch::empty(weights[4 * d + 2].sizes(), gates.options());
    for (int64_t m = 0; m < K; ++m) {
      const float* in = slots.data() + (m * D + d) * (I + 1) * Gp;
      const float* rec = slots.data() + in_size + (m * D + d) * U * Gp;
      float* dw_ih_p = dw_ih.data_ptr<float>() + m * G * I;
      float* dw_hh_p = dw_hh.data_ptr<float>() + m * G * U;
      float* dbias_p = dbias.data_ptr<float>() + m * G;
      for (int64_t j = 0; j < G; ++j) {
        for (int64_t k = 0; k < I; ++k) dw_ih_p[j * I + k] = in[k * Gp + j];
        dbias_p[j] = in[I * Gp + j];
        for (int64_t u = 0; u < U; ++u) dw_hh_p[j * U + u] = rec[u * Gp + j];
      }
    }
    grads[1 + 3 * d] = dw_ih;
    grads[2 + 3 * d] = dw_hh;
    grads[3 + 3 * d] = dbias;
  }
  return grads;
}

namespace {

// A 32-bit integer hash with good avalanche (Wellons' "lowbias32"); plain 32-bit arithmetic,
// so loops over it vectorise on AVX2 as well as AVX-512.
inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// res[i] = in[i] * scale or 0, for elements first .. first + n - 1 of the tensor.
void dropout_range(const float* __restrict in, float* __restrict res, int64_t n, uint32_t first,
                   uint32_t key_lo, uint32_t key_hi, uint32_t threshold, float scale) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = hash32(hash32((first + static_cast<uint32_t>(i)) ^ key_lo) + key_hi);
    res[i] = in[i] * ((bits >> 8) >= threshold ? scale : 0.0f);
  }
}

}  // namespace

// Inverted dropout, out = x * keep / (1 - p), where element i is kept when the hash of
// (i, seed) falls at or above p (24-bit resolution). The mask is a pure function of the seed,
// so the backward pass calls this again on the gradient with the same seed and nothing is
// stored. torch's CPU dropout draws one Mersenne-twister number per element: 1.5 ms for a
// (32, 96, 64) activation on 2 cores, more than the LSTM layer that produced it.
torch::Tensor dropout(torch::Tensor x, double p, int64_t seed) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32,
              "x must be a float32 CPU tensor");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "p must be in [0, 1)");
  x = x.contiguous();
  auto out = torch::empty_like(x);
  const uint32_t threshold = static_cast<uint32_t>(p * 16777216.0 + 0.5);  // p * 2^24
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const uint32_t key_lo = static_cast<uint32_t>(seed), key_hi = static_cast<uint32_t>(seed >> 32);
  const float* in = x.data_ptr<float>();
  float* res = out.data_ptr<float>();
  at::parallel_for(0, x.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    dropout_range(in + begin, res + begin, end - begin, static_cast<uint32_t>(begin), key_lo,
                  key_hi, threshold, scale);
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "Keras LSTM layer, forward");
  m.def("infer", &infer, "Keras LSTM layer, forward without what the backward needs");
  m.def("backward", &backward, "Keras LSTM layer, backward");
  m.def("dropout", &dropout, "inverted dropout with a hashed, seed-determined mask");
}
