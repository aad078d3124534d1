// Keras's LSTM recurrence for non-tanh activations on the CPU: the whole time loop in C++.
//
// Per step: one batched matmul (ATen/oneDNN) and one fused elementwise pass over the gates,
// instead of ~13 small torch ops each paying Python and dispatch overhead. Built on first use
// by torch.utils.cpp_extension (lstmcast/models/cpu_lstm.py); the torch loop in
// recurrence.py is the fallback and the reference it is tested against.
//
// Shapes: D directions, L steps, B batch, U units, G = 4U (gates i, f, g, o).
// xp (D, L, B, G), w_hh_t (D, U, G); forward returns hs, cs (D, L, B, U), gates, z (D, L, B, G).
#include <torch/extension.h>

#include <cmath>
#include <vector>

namespace {

enum Act { TANH = 0, RELU, SIGMOID, LINEAR, ELU, SOFTSIGN, HARD_SIGMOID };

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

template <int64_t kind>
inline float act(float x) {
  switch (kind) {
    case TANH: return std::tanh(x);
    case RELU: return x > 0.0f ? x : 0.0f;
    case SIGMOID: return sigmoid(x);
    case LINEAR: return x;
    case ELU: return x > 0.0f ? x : std::expm1(x);
    case SOFTSIGN: return x / (1.0f + std::fabs(x));
    default: return std::fmin(std::fmax(x / 6.0f + 0.5f, 0.0f), 1.0f);  // hard_sigmoid
  }
}

// d act / dx from the input x and the output y
template <int64_t kind>
inline float act_grad(float x, float y) {
  switch (kind) {
    case TANH: return 1.0f - y * y;
    case RELU: return x > 0.0f ? 1.0f : 0.0f;
    case SIGMOID: return y * (1.0f - y);
    case LINEAR: return 1.0f;
    case ELU: return x > 0.0f ? 1.0f : y + 1.0f;
    case SOFTSIGN: { float a = 1.0f + std::fabs(x); return 1.0f / (a * a); }
    default: return (x > -3.0f && x < 3.0f) ? 1.0f / 6.0f : 0.0f;
  }
}


// One step's fused elementwise pass, forward: gates from z, then the cell and hidden state.
// Templated on the activation so the inner loop has no branch and can vectorise.
template <int64_t kind>
void gates_forward_t(const torch::Tensor& z, torch::Tensor& gates, torch::Tensor& hs,
                     torch::Tensor& cs, const torch::Tensor& c0, int64_t t) {
  const int64_t D = z.size(0), L = z.size(1), B = z.size(2), G = z.size(3), U = G / 4;
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = (d * L + t) * B + b;  // row of the flat (D*L*B, .) arrays
      const float* zr = z.data_ptr<float>() + row * G;
      float* gr = gates.data_ptr<float>() + row * G;
      float* hr = hs.data_ptr<float>() + row * U;
      float* cr = cs.data_ptr<float>() + row * U;
      const float* c_prev = t > 0 ? cr - B * U : c0.data_ptr<float>() + (d * B + b) * U;
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float i = sigmoid(zr[u]), f = sigmoid(zr[U + u]);
        const float g = act<kind>(zr[2 * U + u]), o = sigmoid(zr[3 * U + u]);
        gr[u] = i;
        gr[U + u] = f;
        gr[2 * U + u] = g;
        gr[3 * U + u] = o;
        const float cell = f * c_prev[u] + i * g;
        cr[u] = cell;
        hr[u] = o * act<kind>(cell);
      }
    }
  }
}

// One step's fused elementwise pass, backward: dz of step t from dh, dc; dc becomes dc of t-1.
template <int64_t kind>
void gates_backward_t(const torch::Tensor& z, const torch::Tensor& gates, const torch::Tensor& cs,
                      torch::Tensor& dz, torch::Tensor& dh, torch::Tensor& dc, int64_t t) {
  const int64_t D = cs.size(0), L = cs.size(1), B = cs.size(2), U = cs.size(3), G = 4 * U;
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = (d * L + t) * B + b;
      const float* gr = gates.data_ptr<float>() + row * G;
      const float* zr = z.data_ptr<float>() + row * G;
      const float* cr = cs.data_ptr<float>() + row * U;
      float* dzr = dz.data_ptr<float>() + row * G;
      const float* dh_r = dh.data_ptr<float>() + (d * B + b) * U;
      float* dc_r = dc.data_ptr<float>() + (d * B + b) * U;
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float i = gr[u], f = gr[U + u], g = gr[2 * U + u], o = gr[3 * U + u];
        const float cell = cr[u], c_prev = t > 0 ? cr[u - B * U] : 0.0f;
        const float act_c = act<kind>(cell);
        const float dcell = dc_r[u] + dh_r[u] * o * act_grad<kind>(cell, act_c);
        dzr[u] = dcell * g * i * (1.0f - i);
        dzr[U + u] = dcell * c_prev * f * (1.0f - f);
        dzr[2 * U + u] = dcell * i * act_grad<kind>(zr[2 * U + u], g);
        dzr[3 * U + u] = dh_r[u] * act_c * o * (1.0f - o);
        dc_r[u] = dcell * f;
      }
    }
  }
}

#define LSTMCAST_DISPATCH(FN, KIND, ...)                       \
  switch (KIND) {                                             \
    case TANH: FN<TANH>(__VA_ARGS__); break;                  \
    case RELU: FN<RELU>(__VA_ARGS__); break;                  \
    case SIGMOID: FN<SIGMOID>(__VA_ARGS__); break;            \
    case LINEAR: FN<LINEAR>(__VA_ARGS__); break;              \
    case ELU: FN<ELU>(__VA_ARGS__); break;                    \
    case SOFTSIGN: FN<SOFTSIGN>(__VA_ARGS__); break;          \
    default: FN<HARD_SIGMOID>(__VA_ARGS__); break;            \
  }

void gates_forward(int64_t kind, const torch::Tensor& z, torch::Tensor& gates, torch::Tensor& hs,
                   torch::Tensor& cs, const torch::Tensor& c0, int64_t t) {
  LSTMCAST_DISPATCH(gates_forward_t, kind, z, gates, hs, cs, c0, t)
}

void gates_backward(int64_t kind, const torch::Tensor& z, const torch::Tensor& gates,
                    const torch::Tensor& cs, torch::Tensor& dz, torch::Tensor& dh,
                    torch::Tensor& dc, int64_t t) {
  LSTMCAST_DISPATCH(gates_backward_t, kind, z, gates, cs, dz, dh, dc, t)
}

}  // namespace

std::vector<torch::Tensor> forward(torch::Tensor xp, torch::Tensor w_hh_t, int64_t kind) {
  xp = xp.contiguous();
  w_hh_t = w_hh_t.contiguous();
  const int64_t D = xp.size(0), L = xp.size(1), B = xp.size(2), G = xp.size(3), U = G / 4;
  auto z = torch::empty_like(xp);
  auto gates = torch::empty_like(xp);
  auto hs = torch::empty({D, L, B, U}, xp.options());
  auto cs = torch::empty({D, L, B, U}, xp.options());
  auto h = torch::zeros({D, B, U}, xp.options());
  auto c = torch::zeros({D, B, U}, xp.options());
  for (int64_t t = 0; t < L; ++t) {
    auto z_t = z.select(1, t);
    at::baddbmm_out(z_t, xp.select(1, t), h, w_hh_t);
    auto h_t = hs.select(1, t), c_t = cs.select(1, t), g_t = gates.select(1, t);
    gates_forward(kind, z, gates, hs, cs, c, t);
    h = h_t;
    c = c_t;
  }
  return {hs, cs, gates, z};
}

// Returns dz (D, L, B, G), the gradient of the pre-activations (= of xp).
torch::Tensor backward(torch::Tensor grad_hs, torch::Tensor w_hh_t, torch::Tensor cs,
                       torch::Tensor gates, torch::Tensor z, int64_t kind) {
  grad_hs = grad_hs.contiguous();
  const int64_t D = cs.size(0), L = cs.size(1), B = cs.size(2), U = cs.size(3), G = 4 * U;
  auto w_hh = w_hh_t.transpose(1, 2);  // (D, G, U)
  auto dz = torch::empty_like(z);
  auto dh = grad_hs.select(1, L - 1).clone();  // (D, B, U)
  auto dc = torch::zeros({D, B, U}, cs.options());
  for (int64_t t = L - 1; t >= 0; --t) {
    gates_backward(kind, z, gates, cs, dz, dh, dc, t);
    if (t > 0) {
      // dh of step t-1 = its own output gradient + dz_t @ W_hh
      at::baddbmm_out(dh, grad_hs.select(1, t - 1), dz.select(1, t), w_hh);
    }
  }
  return dz;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "Keras LSTM recurrence, forward");
  m.def("backward", &backward, "Keras LSTM recurrence, backward");
}
