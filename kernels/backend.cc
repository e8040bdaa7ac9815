// make_backend / default_device / cuda_available: the one place that knows which
// backends exist in this build.
#include "kernels/backend.h"

#include <stdexcept>

#include "kernels/cpu/cpu_backend.h"
#ifdef LMSERVE_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace lmserve::kernels {

bool cuda_available() {
#ifdef LMSERVE_HAVE_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

std::string default_device() { return cuda_available() ? "cuda" : "cpu"; }

std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options) {
  if (device == "cpu") return std::make_unique<cpu::CpuBackend>(options);
  if (device == "cuda") {
#ifdef LMSERVE_HAVE_CUDA
    if (!cuda_device_present())
      throw std::runtime_error("device 'cuda': no CUDA device is present");
    return make_cuda_backend(options);
#else
    throw std::runtime_error("device 'cuda': lmserve was built without CUDA (LMSERVE_CUDA=OFF or nvcc not found)");
#endif
  }
  throw std::runtime_error("device '" + device + "': unknown device (expected cpu or cuda)");
}

}  // namespace lmserve::kernels
