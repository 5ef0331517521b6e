// C entry points for libtorch's multi-tensor optimizer kernels, which tch
// 0.24 does not bind (its generator skips ops that take tensor lists and
// return nothing): the fused AdamW update and the gradient-norm clipping of
// `torch.nn.utils.clip_grad_norm_` (`_foreach_norm` + `_foreach_mul_`).
// One call replaces a dozen small kernels per parameter, which is most of
// what an update costs for the many small tensors of a transformer.
//
// Tensors arrive as tch handles (`torch::Tensor*`); errors come back as a
// message in the caller's buffer, never as an exception across the C ABI.
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/stack.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

namespace {

void write_error(const char* message, char* error, size_t error_len) {
  if (error_len == 0) return;
  std::strncpy(error, message, error_len - 1);
  error[error_len - 1] = '\0';
}

// Runs `body`, turning any exception into `false` and a message.
template <typename F>
bool guarded(F body, char* error, size_t error_len) {
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    write_error(e.what(), error, error_len);
  } catch (...) {
    write_error("unknown C++ exception", error, error_len);
  }
  return false;
}

}  // namespace

extern "C" {

// The hyper-parameters of one fused AdamW call; `step` is the step count
// after this update (1 for the first). Mirrors the Rust `AdamWStep`.
struct AdamWStep {
  double step, lr, beta1, beta2, weight_decay, eps;
};

// One AdamW step (torch.optim.AdamW with fused=True) over `count`
// parameters sharing a learning rate and weight decay. Parameters without a gradient
// are skipped, as torch.optim does.
bool selfsup_fused_adamw(const at::Tensor* const* params, const at::Tensor* const* exp_avgs,
                         const at::Tensor* const* exp_avg_sqs, int64_t count,
                         const AdamWStep* h, char* error, size_t error_len) {
  return guarded(
      [&] {
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> p, g, m, v, steps;
        for (int64_t i = 0; i < count; ++i) {
          const at::Tensor& grad = params[i]->grad();
          if (!grad.defined()) continue;
          p.push_back(*params[i]);
          g.push_back(grad);
          m.push_back(*exp_avgs[i]);
          v.push_back(*exp_avg_sqs[i]);
        }
        if (p.empty()) return;
        // The kernel reads one step count per parameter; they all share it.
        at::Tensor shared_step =
            at::scalar_tensor(h->step, p[0].options().dtype(at::kFloat));
        steps.assign(p.size(), shared_step);
        at::_fused_adamw_(p, g, m, v, {}, steps, h->lr, h->beta1, h->beta2, h->weight_decay, h->eps,
                          /*amsgrad=*/false, /*maximize=*/false);
      },
      error, error_len);
}

// Scales the gradients of `count` parameters so that their global L2 norm is
// at most `max_norm`, as clip_grad_norm_ does: the scale min(1, max_norm /
// (norm + 1e-6)) stays a device tensor, so clipping costs no host sync.
bool selfsup_clip_grad_norm(const at::Tensor* const* params, int64_t count, double max_norm,
                            char* error, size_t error_len) {
  return guarded(
      [&] {
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> grads;
        for (int64_t i = 0; i < count; ++i) {
          const at::Tensor& grad = params[i]->grad();
          if (grad.defined()) grads.push_back(grad);
        }
        if (grads.empty()) return;
        std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2);
        // In double precision, as any finite `max_norm` fits there.
        at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2).to(at::kDouble);
        at::Tensor scale = at::scalar_tensor(max_norm, total.options())
                               .div(total.add(1e-6))
                               .clamp_max(1.0);
        at::_foreach_mul_(grads, scale);
      },
      error, error_len);
}

}  // extern "C"
