// A C entry point for choosing autocast's device and dtype, which tch 0.24
// does not expose (its `autocast` turns on CUDA autocast with fp16 only).
//
// The enums are declared opaquely with their underlying type instead of
// including <ATen/autocast_mode.h>: that header pulls in all of ATen, and
// these declarations mangle to the same symbols libtorch exports.
#include <cstdint>

namespace c10 {
enum class DeviceType : int8_t;
enum class ScalarType : int8_t;
}  // namespace c10

namespace at::autocast {
bool is_autocast_enabled(c10::DeviceType device_type);
void set_autocast_enabled(c10::DeviceType device_type, bool enabled);
c10::ScalarType get_autocast_dtype(c10::DeviceType device_type);
void set_autocast_dtype(c10::DeviceType device_type, c10::ScalarType dtype);
void clear_cache();
int increment_nesting();
int decrement_nesting();
}  // namespace at::autocast

extern "C" {

// Enters an autocast region on `device_type` (c10::DeviceType: 0 CPU,
// 1 CUDA) casting to `dtype` (c10::ScalarType, e.g. 15 bfloat16). Writes the
// previous setting to `prev_enabled` / `prev_dtype` for the matching exit.
// Returns false, changing nothing, when libtorch refuses the device.
bool selfsup_autocast_enter(int8_t device_type, int8_t dtype, bool* prev_enabled,
                            int8_t* prev_dtype) {
  auto device = static_cast<c10::DeviceType>(device_type);
  try {
    *prev_enabled = at::autocast::is_autocast_enabled(device);
    *prev_dtype = static_cast<int8_t>(at::autocast::get_autocast_dtype(device));
    at::autocast::set_autocast_dtype(device, static_cast<c10::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(device, true);
  } catch (...) {
    return false;
  }
  at::autocast::increment_nesting();
  return true;
}

// Leaves the region: restores the previous setting and, as torch.autocast
// does on its outermost exit, frees the cache of cast weights.
void selfsup_autocast_exit(int8_t device_type, bool prev_enabled, int8_t prev_dtype) {
  auto device = static_cast<c10::DeviceType>(device_type);
  at::autocast::set_autocast_enabled(device, prev_enabled);
  at::autocast::set_autocast_dtype(device, static_cast<c10::ScalarType>(prev_dtype));
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
}

// Whether autocast is on for `device_type`.
bool selfsup_autocast_is_enabled(int8_t device_type) {
  return at::autocast::is_autocast_enabled(static_cast<c10::DeviceType>(device_type));
}

}  // extern "C"
