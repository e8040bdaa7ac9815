// Entry points of the CUDA backend that the rest of lmserve sees. Plain C++ (no CUDA
// headers), so kernels/backend.cc can include it from a host-compiler translation unit.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace lmserve::kernels {

// The CUDA backend on device options.device_index. Throws std::runtime_error with a
// one-line message when the device cannot be opened.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

// True when the CUDA runtime reports at least one usable device. Never throws.
bool cuda_device_present();

}  // namespace lmserve::kernels
