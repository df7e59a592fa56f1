// C++ CPU kernels for training over channels-last tensors (evitvid/models/kernels.py builds
// this file on first use and documents the design). Every kernel sees its tensors as rows of
// C contiguous channels, so each inner loop runs over adjacent values, and runs on torch's own
// thread pool (at::parallel_for). A reduction is split into SLICES fixed slices of rows, each
// summed on its own and then in slice order, so no result depends on the number of threads.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t SLICES = 16;
constexpr int64_t BLOCK = 64;  // rows summed in the tensor's type before adding into double

void check_rows(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.dim() == 2 && t.is_contiguous(), name, " must be a contiguous rows x channels matrix");
}

// The activation a batch norm may be fused with (evitvid.models.batchnorm.ACTIVATIONS), with
// PyTorch's formulas but for a multiplication by 1/6 or 1/3 where PyTorch divides by 6 or 3 (a
// division costs several times a multiplication in these memory-bound loops), so a fused layer
// gives what batch norm then the activation give, to rounding.
enum Activation : int64_t { NONE = 0, RELU = 1, HARDSWISH = 2 };

template <typename T, int64_t ACT>
inline T activate(T z) {
  if (ACT == RELU) return std::max(z, T(0));  // NaN stays NaN, as in PyTorch
  if (ACT == HARDSWISH) return z * std::min(std::max(z + T(3), T(0)), T(6)) * T(1.0 / 6.0);
  return z;
}

// g times the activation's derivative at z, written as selects (no branches) so that the loops
// calling it vectorise: PyTorch's hardswish_backward is 0 below -3, g above 3, g * (z / 3 + 0.5)
// between, and g * 1 and g * 0 are g and 0.
template <typename T, int64_t ACT>
inline T activation_grad(T z, T g) {
  if (ACT == RELU) return z <= T(0) ? T(0) : g;  // threshold_backward's test
  if (ACT == HARDSWISH) {
    T m = z * T(1.0 / 3.0) + T(0.5);
    m = z > T(3) ? T(1) : m;
    m = z < T(-3) ? T(0) : m;
    return g * m;
  }
  return g;
}

// One row each: out = act(((x - k1) - k2) * u + v), the normalised row.
template <typename T, int64_t ACT>
inline void norm_row(const T* __restrict__ x, T* __restrict__ out, const T* __restrict__ k1,
                     const T* __restrict__ k2, const T* __restrict__ u, const T* __restrict__ v, int64_t C) {
  for (int64_t c = 0; c < C; ++c) out[c] = activate<T, ACT>(((x[c] - k1[c]) - k2[c]) * u[c] + v[c]);
}

// out = d * b + gz * a + w with d = (x - k1) - k2 and gz = g through the activation at d * u + v.
template <typename T, int64_t ACT>
inline void norm_grad_row(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ out,
                          const T* __restrict__ k1, const T* __restrict__ k2, const T* __restrict__ u,
                          const T* __restrict__ v, const T* __restrict__ a, const T* __restrict__ b,
                          const T* __restrict__ w, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const T d = (x[c] - k1[c]) - k2[c];
    out[c] = d * b[c] + activation_grad<T, ACT>(d * u[c] + v[c], g[c]) * a[c] + w[c];
  }
}

// A[c] += gz, B[c] += gz * (x - k1): one row of the backward pass's sums.
template <typename T, int64_t ACT>
inline void grad_sums_row(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ A, T* __restrict__ B,
                          const T* __restrict__ k1, const T* __restrict__ k2, const T* __restrict__ u,
                          const T* __restrict__ v, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const T d = x[c] - k1[c];
    const T gz = activation_grad<T, ACT>((d - k2[c]) * u[c] + v[c], g[c]);
    A[c] += gz;
    B[c] += gz * d;
  }
}

// A[c] += x - k, B[c] += (x - k)^2: one row of the forward pass's sums.
template <typename T>
inline void moment_sums_row(const T* __restrict__ x, T* __restrict__ A, T* __restrict__ B, const T* __restrict__ k,
                            int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const T d = x[c] - k[c];
    A[c] += d;
    B[c] += d * d;
  }
}

template <typename F>
void with_activation(int64_t activation, F f) {
  switch (activation) {
    case NONE: f(std::integral_constant<int64_t, NONE>{}); break;
    case RELU: f(std::integral_constant<int64_t, RELU>{}); break;
    case HARDSWISH: f(std::integral_constant<int64_t, HARDSWISH>{}); break;
    default: TORCH_CHECK(false, "unknown activation code ", activation);
  }
}

// One channel's batch-norm constants: the mean split into k1 (its nearest T) and k2 (the
// remainder), so x - k1 is exact for x near the mean; z = ((x - k1) - k2) * scale + shift.
template <typename T>
struct Norm {
  std::vector<T> k1, k2, scale, shift;
  Norm(const double* mean, const double* var, const T* weight, const T* bias, double eps, int64_t C)
      : k1(C), k2(C), scale(C), shift(C) {
    for (int64_t c = 0; c < C; ++c) {
      k1[c] = T(mean[c]);
      k2[c] = T(mean[c] - double(k1[c]));
      scale[c] = T((weight ? double(weight[c]) : 1.0) / std::sqrt(var[c] + eps));
      shift[c] = bias ? bias[c] : T(0);
    }
  }
};

// acc (SLICES x 2 x C, double, zero on entry), for each slice of rows, in blocks of BLOCK rows
// summed in T and added into double:
// - g absent: sum(x - k) and sum((x - k)^2), k the first row (a shift that keeps the sum of
//   squares free of cancellation);
// - g given: sum(gz) and sum(gz * (x - k1)), gz the output gradient through the activation at
//   z (the normalised x, recomputed: nothing but x is kept for the backward pass).
template <typename T, int64_t ACT>
void slice_sums(const T* x, const T* g, const T* k, const Norm<T>* norm, int64_t M, int64_t C, double* acc) {
  const int64_t per = (M + SLICES - 1) / SLICES;
  at::parallel_for(0, SLICES, 1, [&](int64_t s0, int64_t s1) {
    std::vector<T> pa(C), pb(C);
    for (int64_t s = s0; s < s1; ++s) {
      double* a = acc + s * 2 * C;
      double* b = a + C;
      const int64_t end = std::min(M, (s + 1) * per);
      for (int64_t q = s * per; q < end; q += BLOCK) {
        std::fill(pa.begin(), pa.end(), T(0));
        std::fill(pb.begin(), pb.end(), T(0));
        T* A = pa.data();
        T* B = pb.data();
        for (int64_t r = q, qe = std::min(end, q + BLOCK); r < qe; ++r) {
          if (g)
            grad_sums_row<T, ACT>(x + r * C, g + r * C, A, B, norm->k1.data(), norm->k2.data(), norm->scale.data(),
                                  norm->shift.data(), C);
          else
            moment_sums_row<T>(x + r * C, A, B, k, C);
        }
        for (int64_t c = 0; c < C; ++c) { a[c] += A[c]; b[c] += B[c]; }
      }
    }
  });
}

double slice_total(const double* acc, int64_t C, int64_t which, int64_t c) {
  double s = 0;
  for (int64_t i = 0; i < SLICES; ++i) s += acc[i * 2 * C + which * C + c];
  return s;
}

// a[c] += g[c] * x[c] for C channels, in blocks of 8 the compiler turns into one vector
// instruction each (the stem's 8 channels are one block).
template <typename T>
inline void add_products(T* __restrict__ a, const T* __restrict__ g, const T* __restrict__ x, int64_t C) {
  int64_t c = 0;
  for (; c + 8 <= C; c += 8)
    for (int64_t k = 0; k < 8; ++k) a[c + k] += g[c + k] * x[c + k];
  for (; c < C; ++c) a[c] += g[c] * x[c];
}

// a SLICES x ... tensor summed over its first axis, slice after slice
torch::Tensor sum_slices(const torch::Tensor& parts) {
  auto total = torch::zeros(parts.sizes().slice(1), parts.options());
  const int64_t n = total.numel();
  AT_DISPATCH_FLOATING_TYPES(parts.scalar_type(), "sum_slices", [&] {
    const scalar_t* p = parts.data_ptr<scalar_t>();
    scalar_t* t = total.data_ptr<scalar_t>();
    for (int64_t s = 0; s < SLICES; ++s)
      for (int64_t e = 0; e < n; ++e) t[e] += p[s * n + e];
  });
  return total;
}

// the data of an optional per-channel vector (nullptr when absent), checked against x
const void* optional_data(const c10::optional<torch::Tensor>& t, const torch::Tensor& x, const char* name) {
  if (!t || !t->defined()) return nullptr;
  TORCH_CHECK(t->dim() == 1 && t->size(0) == x.size(1) && t->is_contiguous() && t->scalar_type() == x.scalar_type(),
              name, " must be a contiguous vector of one value per channel, of x's type");
  return t->data_ptr();
}

}  // namespace

// Training-mode batch norm of x (rows x channels), then the activation (0 none, 1 ReLU,
// 2 hardswish), into y (the same shape; a view of the caller's output). Returns the mean and the
// biased variance (double, one per channel). weight and bias may be absent (no affine).
std::vector<torch::Tensor> batch_norm_forward(torch::Tensor x, c10::optional<torch::Tensor> weight,
                                              c10::optional<torch::Tensor> bias, double eps, int64_t activation,
                                              torch::Tensor y) {
  check_rows(x, "x");
  check_rows(y, "y");
  TORCH_CHECK(y.sizes() == x.sizes() && y.scalar_type() == x.scalar_type(), "y must match x");
  const int64_t M = x.size(0), C = x.size(1);
  TORCH_CHECK(M > 0, "batch norm needs at least one row");
  auto acc = torch::zeros({SLICES, 2, C}, x.options().dtype(torch::kFloat64));
  auto mean = torch::empty({C}, acc.options());
  auto var = torch::empty({C}, acc.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "batch_norm_forward", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    slice_sums<scalar_t, NONE>(xp, nullptr, xp, nullptr, M, C, acc.data_ptr<double>());
    double* mu = mean.data_ptr<double>();
    double* vr = var.data_ptr<double>();
    for (int64_t c = 0; c < C; ++c) {
      const double d = slice_total(acc.data_ptr<double>(), C, 0, c) / M;
      mu[c] = xp[c] + d;
      vr[c] = std::max(slice_total(acc.data_ptr<double>(), C, 1, c) / M - d * d, 0.0);
    }
    const Norm<scalar_t> norm(mu, vr, static_cast<const scalar_t*>(optional_data(weight, x, "weight")),
                              static_cast<const scalar_t*>(optional_data(bias, x, "bias")), eps, C);
    scalar_t* yp = y.data_ptr<scalar_t>();
    with_activation(activation, [&](auto act) {
      constexpr int64_t ACT = decltype(act)::value;
      at::parallel_for(0, M, 2048, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          norm_row<scalar_t, ACT>(xp + r * C, yp + r * C, norm.k1.data(), norm.k2.data(), norm.scale.data(),
                                  norm.shift.data(), C);
      });
    });
  });
  return {mean, var};
}

// The gradients of batch_norm_forward (the same activation, weight and bias): dx (rows x
// channels, written into the given tensor), and returned dweight and dbias (one per channel).
std::vector<torch::Tensor> batch_norm_backward(torch::Tensor grad, torch::Tensor x, torch::Tensor mean,
                                               torch::Tensor var, c10::optional<torch::Tensor> weight,
                                               c10::optional<torch::Tensor> bias, double eps, int64_t activation,
                                               torch::Tensor dx) {
  check_rows(x, "x");
  check_rows(grad, "grad");
  check_rows(dx, "dx");
  TORCH_CHECK(grad.sizes() == x.sizes() && grad.scalar_type() == x.scalar_type(), "grad must match x");
  TORCH_CHECK(dx.sizes() == x.sizes() && dx.scalar_type() == x.scalar_type(), "dx must match x");
  const int64_t M = x.size(0), C = x.size(1);
  TORCH_CHECK(mean.scalar_type() == torch::kFloat64 && var.scalar_type() == torch::kFloat64 && mean.numel() == C
              && var.numel() == C && mean.is_contiguous() && var.is_contiguous(),
              "mean and var must be batch_norm_forward's (double, one per channel)");
  auto acc = torch::zeros({SLICES, 2, C}, x.options().dtype(torch::kFloat64));
  auto dweight = torch::empty({C}, x.options());
  auto dbias = torch::empty({C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "batch_norm_backward", [&] {
    const double* mu = mean.data_ptr<double>();
    const double* vr = var.data_ptr<double>();
    auto wp = static_cast<const scalar_t*>(optional_data(weight, x, "weight"));
    const Norm<scalar_t> norm(mu, vr, wp, static_cast<const scalar_t*>(optional_data(bias, x, "bias")), eps, C);
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    scalar_t* dp = dx.data_ptr<scalar_t>();
    with_activation(activation, [&](auto act) {
      constexpr int64_t ACT = decltype(act)::value;
      slice_sums<scalar_t, ACT>(xp, gp, nullptr, &norm, M, C, acc.data_ptr<double>());
      std::vector<scalar_t> a(C), b(C), v(C);
      for (int64_t c = 0; c < C; ++c) {
        const double sg = slice_total(acc.data_ptr<double>(), C, 0, c);
        const double sgx = slice_total(acc.data_ptr<double>(), C, 1, c) - (mu[c] - double(norm.k1[c])) * sg;
        const double invstd = 1.0 / std::sqrt(vr[c] + eps);
        const double sgxhat = sgx * invstd;  // sum of gz * normalised x
        dweight.data_ptr<scalar_t>()[c] = scalar_t(sgxhat);
        dbias.data_ptr<scalar_t>()[c] = scalar_t(sg);
        // dx = w * invstd * (gz - mean(gz) - xhat * mean(gz * xhat)) = (x - mean) * b + gz * a + v
        const double ac = (wp ? double(wp[c]) : 1.0) * invstd;
        a[c] = scalar_t(ac);
        b[c] = scalar_t(-ac * invstd * sgxhat / M);
        v[c] = scalar_t(-ac * sg / M);
      }
      at::parallel_for(0, M, 2048, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          norm_grad_row<scalar_t, ACT>(xp + r * C, gp + r * C, dp + r * C, norm.k1.data(), norm.k2.data(),
                                       norm.scale.data(), norm.shift.data(), a.data(), b.data(), v.data(), C);
      });
    });
  });
  return {dweight, dbias};
}

// Where the depthwise weight gradient sums rows in registers (measured against adding each
// position into its taps, at the study's shapes: 0.28x the time with 8 channels on 32 x 32
// maps, 0.95x with 32, 1.2-1.6x with 64 and 128 channels, whose many channel blocks each walk
// the rows again).
constexpr int64_t ROW_SUMS_MIN_WIDTH = 8;
constexpr int64_t ROW_SUMS_MAX_CHANNELS = 32;

// ceil(n / d) and floor(n / d) for d > 0 and n of either sign
inline int64_t ceil_div(int64_t n, int64_t d) { return n >= 0 ? (n + d - 1) / d : -((-n) / d); }
inline int64_t floor_div(int64_t n, int64_t d) { return n >= 0 ? n / d : -((-n + d - 1) / d); }

// The weight gradient of a depthwise 3D convolution. x: B x T x H x W x C input, g: B x To x Ho x
// Wo x C output gradient (both contiguous: channels-last clips seen channels innermost). Returns
// KT x KH x KW x C. Slice s sums the output rows (b, t) numbered s, s + SLICES, ...; only the
// taps that touch the input are visited. With few channels on wide maps (the stem's 8 channels
// on 32 x 32), each tap sums a whole output row (the positions w) for 8 channels at a time in
// registers before adding into the slice's accumulator, so the additions do not wait on each
// other through memory; otherwise each position adds into every tap directly.
torch::Tensor depthwise_weight_grad(torch::Tensor x, torch::Tensor g, std::vector<int64_t> kernel,
                                    std::vector<int64_t> stride, std::vector<int64_t> padding) {
  TORCH_CHECK(x.dim() == 5 && g.dim() == 5 && x.is_contiguous() && g.is_contiguous(),
              "x and g must be contiguous B x T x H x W x C tensors");
  TORCH_CHECK(kernel.size() == 3 && stride.size() == 3 && padding.size() == 3, "kernel, stride, padding: 3 each");
  TORCH_CHECK(g.scalar_type() == x.scalar_type() && g.size(0) == x.size(0) && g.size(4) == x.size(4),
              "g must be x's output gradient");
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), W = x.size(3), C = x.size(4);
  const int64_t To = g.size(1), Ho = g.size(2), Wo = g.size(3);
  const int64_t KT = kernel[0], KH = kernel[1], KW = kernel[2];
  const int64_t st = stride[0], sh = stride[1], sw = stride[2], pt = padding[0], ph = padding[1], pw = padding[2];
  auto out = torch::zeros({SLICES, KT, KH, KW, C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "depthwise_weight_grad", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const int64_t rows = B * To;
    at::parallel_for(0, SLICES, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) {
        scalar_t* acc = op + s * KT * KH * KW * C;
        for (int64_t r = s; r < rows; r += SLICES) {
          const int64_t b = r / To, t = r % To;
          for (int64_t i = 0; i < KT; ++i) {
            const int64_t ti = t * st + i - pt;
            if (ti < 0 || ti >= T) continue;
            for (int64_t h = 0; h < Ho; ++h) {
              const scalar_t* grow = gp + ((b * To + t) * Ho + h) * Wo * C;
              for (int64_t j = 0; j < KH; ++j) {
                const int64_t hi = h * sh + j - ph;
                if (hi < 0 || hi >= H) continue;
                const scalar_t* xrow = xp + ((b * T + ti) * H + hi) * W * C;
                if (Wo < ROW_SUMS_MIN_WIDTH || C > ROW_SUMS_MAX_CHANNELS) {  // each position into its taps
                  for (int64_t w = 0; w < Wo; ++w)
                    for (int64_t kk = 0; kk < KW; ++kk) {
                      const int64_t wi = w * sw + kk - pw;
                      if (wi >= 0 && wi < W)
                        add_products(acc + ((i * KH + j) * KW + kk) * C, grow + w * C, xrow + wi * C, C);
                    }
                  continue;
                }
                for (int64_t kk = 0; kk < KW; ++kk) {
                  // the output positions w whose tap kk reads inside the input: 0 <= w * sw + kk - pw < W
                  const int64_t w0 = std::max<int64_t>(0, ceil_div(pw - kk, sw));
                  const int64_t w1 = std::min<int64_t>(Wo, floor_div(W - 1 + pw - kk, sw) + 1);
                  if (w0 >= w1) continue;
                  scalar_t* a = acc + ((i * KH + j) * KW + kk) * C;
                  const scalar_t* xs = xrow + (kk - pw) * C;  // x at w = 0 (never read below w0)
                  int64_t c = 0;
                  for (; c + 8 <= C; c += 8) {
                    scalar_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                    for (int64_t w = w0; w < w1; ++w) {
                      const scalar_t* gw = grow + w * C + c;
                      const scalar_t* xw = xs + w * sw * C + c;
                      for (int64_t k = 0; k < 8; ++k) v[k] += gw[k] * xw[k];
                    }
                    for (int64_t k = 0; k < 8; ++k) a[c + k] += v[k];
                  }
                  for (; c < C; ++c) {
                    scalar_t v = 0;
                    for (int64_t w = w0; w < w1; ++w) v += grow[w * C + c] * xs[w * sw * C + c];
                    a[c] += v;
                  }
                }
              }
            }
          }
        }
      }
    });
  });
  return sum_slices(out);
}

// The input gradient of a depthwise 3D convolution with kernel w (KT x KH x KW x C), given the
// output gradient g (B x To x Ho x Wo x C): dx, B x T x H x W x C. Each input row (b, t)
// gathers from the output positions and taps that read it, so no two threads write one element.
torch::Tensor depthwise_input_grad(torch::Tensor g, torch::Tensor w, std::vector<int64_t> input_size,
                                   std::vector<int64_t> stride, std::vector<int64_t> padding) {
  TORCH_CHECK(g.dim() == 5 && w.dim() == 4 && g.is_contiguous() && w.is_contiguous(),
              "g must be a contiguous B x To x Ho x Wo x C tensor and w a contiguous KT x KH x KW x C kernel");
  TORCH_CHECK(input_size.size() == 3 && stride.size() == 3 && padding.size() == 3, "input_size, stride, padding: 3 each");
  const int64_t B = g.size(0), To = g.size(1), Ho = g.size(2), Wo = g.size(3), C = g.size(4);
  const int64_t T = input_size[0], H = input_size[1], W = input_size[2];
  const int64_t KT = w.size(0), KH = w.size(1), KW = w.size(2);
  const int64_t st = stride[0], sh = stride[1], sw = stride[2], pt = padding[0], ph = padding[1], pw = padding[2];
  auto dx = torch::empty({B, T, H, W, C}, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "depthwise_input_grad", [&] {
    const scalar_t* gp = g.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* dp = dx.data_ptr<scalar_t>();
    at::parallel_for(0, B * T, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / T, ti = r % T;
        std::fill(dp + r * H * W * C, dp + (r + 1) * H * W * C, scalar_t(0));
        for (int64_t i = 0; i < KT; ++i) {
          const int64_t tt = ti + pt - i;
          if (tt < 0 || tt % st != 0 || tt / st >= To) continue;
          const int64_t t = tt / st;
          for (int64_t hi = 0; hi < H; ++hi) {
            for (int64_t j = 0; j < KH; ++j) {
              const int64_t hh = hi + ph - j;
              if (hh < 0 || hh % sh != 0 || hh / sh >= Ho) continue;
              const int64_t h = hh / sh;
              for (int64_t wi = 0; wi < W; ++wi) {
                scalar_t* o = dp + (((b * T + ti) * H + hi) * W + wi) * C;
                for (int64_t kk = 0; kk < KW; ++kk) {
                  const int64_t ww = wi + pw - kk;
                  if (ww < 0 || ww % sw != 0 || ww / sw >= Wo) continue;
                  add_products(o, gp + (((b * To + t) * Ho + h) * Wo + ww / sw) * C, wp + ((i * KH + j) * KW + kk) * C, C);
                }
              }
            }
          }
        }
      }
    });
  });
  return dx;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.attr("SLICES") = SLICES;
  m.def("batch_norm_forward", &batch_norm_forward, "training-mode batch norm over rows x channels");
  m.def("batch_norm_backward", &batch_norm_backward, "its gradients");
  m.def("depthwise_weight_grad", &depthwise_weight_grad, "depthwise 3D weight gradient, channels last");
  m.def("depthwise_input_grad", &depthwise_input_grad, "depthwise 3D input gradient, channels last");
}
