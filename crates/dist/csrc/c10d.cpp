// C entry points for libtorch's c10d, which tch 0.24 does not bind: a
// TCPStore for the rendezvous, a ProcessGroup backed by Gloo (CPU tensors)
// and, in a CUDA build (SELFSUP_NCCL), by NCCL (CUDA tensors), its
// collectives with timeouts, and the differentiable all_gather of
// `_c10d_functional_autograd` that gathered negatives need.
//
// Everything here is PyTorch's own code in libtorch_cpu.so (and
// libtorch_cuda.so for NCCL); this file only
// wires it up as torch.distributed's Python layer does (device per
// GLOO_SOCKET_IFNAME, a prefix store per launch attempt, the group
// registered by name for the functional ops). Tensors arrive as tch handles
// (`at::Tensor*`); errors come back as a message in the caller's buffer,
// never as an exception across the C ABI.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/GroupRegistry.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef SELFSUP_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
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
  } catch (const c10::Error& e) {
    // libtorch's message without its C++ backtrace.
    write_error(e.what_without_backtrace(), error, error_len);
  } catch (const std::exception& e) {
    write_error(e.what(), error, error_len);
  } catch (...) {
    write_error("unknown C++ exception", error, error_len);
  }
  return false;
}

// The Gloo devices torch.distributed would pick: one per interface named in
// GLOO_SOCKET_IFNAME (comma-separated), else loopback when every rank is on
// this machine, else the one the hostname resolves to.
std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices(bool loopback) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  if (const char* names = std::getenv("GLOO_SOCKET_IFNAME"); names && *names) {
    std::stringstream list(names);
    std::string name;
    while (std::getline(list, name, ',')) {
      if (!name.empty()) {
        devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      }
    }
  }
  if (devices.empty()) {
    // A run whose ranks all share this machine (a file store, or a store on
    // a loopback address) listens on loopback only.
    if (loopback) {
      devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
  }
  return devices;
}

// Adds an NCCL backend for CUDA tensors to `group`, under its own key
// prefix in the store as torch.distributed gives each device's backend.
void add_nccl(const c10::intrusive_ptr<c10d::ProcessGroup>& group,
              const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
              std::chrono::milliseconds timeout) {
#ifdef SELFSUP_NCCL
  auto scoped = c10::make_intrusive<c10d::PrefixStore>("cuda/", store);
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  auto backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(scoped, rank, world, options);
  group->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, backend);
#else
  (void)group, (void)store, (void)rank, (void)world, (void)timeout;
  throw std::runtime_error(
      "this selfsup was built without NCCL, so CUDA tensors cannot be reduced across ranks: "
      "run `cargo xtask setup --cuda` and build again");
#endif
}

void wait_for(const c10::intrusive_ptr<c10d::Work>& work, std::chrono::milliseconds timeout) {
  if (!work->wait(timeout)) throw std::runtime_error("collective did not complete in time");
}

}  // namespace

extern "C" {

// A TCP key-value store: the rendezvous every rank meets at.
struct SelfsupStore {
  c10::intrusive_ptr<c10d::Store> store;
  uint16_t port;
};

// One process group over all ranks, with its collectives' timeout.
struct SelfsupGroup {
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::string name;
  std::chrono::milliseconds timeout;
};

// Opens the store at host:port: serves it when `serve`, on the socket
// `listen_fd` the caller bound to that host's address and hands over (the
// store closes it), else connects as a client, retrying until `timeout_ms`.
// Given a port alone, libtorch's server would listen on every interface.
SelfsupStore* selfsup_store_open(const char* host, uint16_t port, bool serve, int listen_fd,
                                 int world, int64_t timeout_ms, char* error, size_t error_len) {
  SelfsupStore* result = nullptr;
  guarded(
      [&] {
        c10d::TCPStoreOptions options;
        options.port = port;
        options.isServer = serve;
        if (serve) options.masterListenFd = listen_fd;
        options.waitWorkers = false;
        if (serve) options.numWorkers = world;
        options.timeout = std::chrono::milliseconds(timeout_ms);
        auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
        uint16_t bound = store->getPort();
        result = new SelfsupStore{store, bound};
      },
      error, error_len);
  return result;
}

// Opens a store kept in the file at `path`, shared by `world` processes on
// one machine: no port at all, so nothing is reachable from the network
// (a TCPStore server listens on every interface, whatever host it is given).
SelfsupStore* selfsup_store_open_file(const char* path, int world, int64_t timeout_ms,
                                      char* error, size_t error_len) {
  SelfsupStore* result = nullptr;
  guarded(
      [&] {
        auto store = c10::make_intrusive<c10d::FileStore>(path, world);
        store->setTimeout(std::chrono::milliseconds(timeout_ms));
        result = new SelfsupStore{store, 0};
      },
      error, error_len);
  return result;
}

// Whether this build can add NCCL backends.
bool selfsup_has_nccl() {
#ifdef SELFSUP_NCCL
  return true;
#else
  return false;
#endif
}

uint16_t selfsup_store_port(const SelfsupStore* store) { return store->port; }

void selfsup_store_free(SelfsupStore* store) { delete store; }

// Forms the group: every rank calls this with the same `prefix` (one per
// launch attempt, so a restart never reads an earlier attempt's keys) and
// `name` (under which the functional collectives find the group). With
// `nccl`, CUDA tensors go through NCCL; CPU tensors always go through Gloo.
SelfsupGroup* selfsup_group_new(const SelfsupStore* store, const char* prefix, const char* name,
                                int rank, int world, bool nccl, bool loopback, int64_t timeout_ms,
                                char* error, size_t error_len) {
  SelfsupGroup* result = nullptr;
  guarded(
      [&] {
        auto timeout = std::chrono::milliseconds(timeout_ms);
        auto scoped = c10::make_intrusive<c10d::PrefixStore>(prefix, store->store);
        auto options = c10d::ProcessGroupGloo::Options::create(timeout);
        options->devices = gloo_devices(loopback);
        options->threads = static_cast<int>(options->devices.size()) * 2;
        auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(scoped, rank, world, options);
        auto group = c10::make_intrusive<c10d::ProcessGroup>(scoped, rank, world);
        group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, backend);
        group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
        if (nccl) add_nccl(group, scoped, rank, world, timeout);
        group->setGroupName(name);
        c10d::register_process_group(name, group);
        result = new SelfsupGroup{group, name, timeout};
      },
      error, error_len);
  return result;
}

void selfsup_group_free(SelfsupGroup* group) {
  try {
    c10d::unregister_process_group(group->name);
  } catch (...) {
  }
  delete group;
}

// Reduces `tensor` in place across ranks: op 0 sum, 1 max, 2 min.
bool selfsup_group_all_reduce(SelfsupGroup* group, at::Tensor* tensor, int op, char* error,
                              size_t error_len) {
  return guarded(
      [&] {
        c10d::AllreduceOptions options;
        options.reduceOp = op == 1 ? c10d::ReduceOp::MAX
                           : op == 2 ? c10d::ReduceOp::MIN
                                     : c10d::ReduceOp::SUM;
        options.timeout = group->timeout;
        std::vector<at::Tensor> tensors{*tensor};
        wait_for(group->group->allreduce(tensors, options), group->timeout);
      },
      error, error_len);
}

// Writes every rank's `input` into `output` (world × input, rank order).
bool selfsup_group_all_gather(SelfsupGroup* group, at::Tensor* output, at::Tensor* input,
                              char* error, size_t error_len) {
  return guarded(
      [&] {
        c10d::AllgatherOptions options;
        options.timeout = group->timeout;
        wait_for(group->group->_allgather_base(*output, *input, options), group->timeout);
      },
      error, error_len);
}

// Overwrites `tensor` on every rank with rank `root`'s.
bool selfsup_group_broadcast(SelfsupGroup* group, at::Tensor* tensor, int root, char* error,
                             size_t error_len) {
  return guarded(
      [&] {
        c10d::BroadcastOptions options;
        options.rootRank = root;
        options.timeout = group->timeout;
        std::vector<at::Tensor> tensors{*tensor};
        wait_for(group->group->broadcast(tensors, options), group->timeout);
      },
      error, error_len);
}

bool selfsup_group_barrier(SelfsupGroup* group, char* error, size_t error_len) {
  return guarded(
      [&] {
        c10d::BarrierOptions options;
        options.timeout = group->timeout;
        wait_for(group->group->barrier(options), group->timeout);
      },
      error, error_len);
}

// all_gather along dim 0 that autograd differentiates as torch.distributed's
// functional collectives do: backward reduce-scatters (sums) the gradient
// across ranks and keeps this rank's slice. Returns a new tch handle.
at::Tensor* selfsup_all_gather_with_grad(SelfsupGroup* group, const at::Tensor* input,
                                         char* error, size_t error_len) {
  at::Tensor* result = nullptr;
  guarded(
      [&] {
        static auto gather =
            c10::Dispatcher::singleton()
                .findSchemaOrThrow("_c10d_functional_autograd::all_gather_into_tensor", "")
                .typed<at::Tensor(const at::Tensor&, int64_t, const std::string&)>();
        static auto wait = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("_c10d_functional::wait_tensor", "")
                               .typed<at::Tensor(const at::Tensor&)>();
        at::Tensor output = gather.call(input->contiguous(), group->group->getSize(), group->name);
        {
          // Waiting completes the tensor in place; below autograd so that
          // `output` keeps the gather's backward.
          c10::impl::ExcludeDispatchKeyGuard below(c10::autograd_dispatch_keyset);
          wait.call(output);
        }
        result = new at::Tensor(std::move(output));
      },
      error, error_len);
  return result;
}

}  // extern "C"
