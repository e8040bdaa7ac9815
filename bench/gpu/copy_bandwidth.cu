// Measures the device-memory bandwidth the batch-1 decode bound is computed from:
// device-to-device cudaMemcpy (counted as bytes read + bytes written, the usual
// convention) and a read-only streaming kernel (what decode does to the weights).
// Built by scripts/gpu-check.sh with nvcc alone; prints one JSON object.
//   copy_bandwidth [MiB per buffer, default 1024]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CHECK(expr)                                                                       \
  do {                                                                                    \
    cudaError_t err_ = (expr);                                                            \
    if (err_ != cudaSuccess) {                                                            \
      std::fprintf(stderr, "copy_bandwidth: %s failed: %s\n", #expr, cudaGetErrorString(err_)); \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

// Sums the buffer with 128-bit loads; the result is written so the loads are not elided.
__global__ void read_kernel(const uint4* __restrict__ data, size_t count, unsigned* sink) {
  unsigned acc = 0;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint4 v = __ldg(data + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;  // practically never true; keeps the loop live
}

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  const size_t bytes = mib << 20;
  const int reps = 20;
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  void *a = nullptr, *b = nullptr;
  unsigned* sink = nullptr;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMalloc(&sink, sizeof(unsigned)));
  CHECK(cudaMemset(a, 1, bytes));
  CHECK(cudaMemset(b, 0, bytes));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));

  CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));  // warm-up
  CHECK(cudaEventRecord(start));
  for (int i = 0; i < reps; ++i) CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
  CHECK(cudaEventRecord(stop));
  CHECK(cudaEventSynchronize(stop));
  float copy_ms = 0;
  CHECK(cudaEventElapsedTime(&copy_ms, start, stop));

  const int blocks = prop.multiProcessorCount * 8;
  const size_t count = bytes / sizeof(uint4);
  read_kernel<<<blocks, 256>>>(static_cast<const uint4*>(a), count, sink);  // warm-up
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(start));
  for (int i = 0; i < reps; ++i) read_kernel<<<blocks, 256>>>(static_cast<const uint4*>(a), count, sink);
  CHECK(cudaEventRecord(stop));
  CHECK(cudaEventSynchronize(stop));
  CHECK(cudaGetLastError());
  float read_ms = 0;
  CHECK(cudaEventElapsedTime(&read_ms, start, stop));

  const double copy_gbps = 2.0 * bytes * reps / (copy_ms * 1e-3) / 1e9;
  const double read_gbps = 1.0 * bytes * reps / (read_ms * 1e-3) / 1e9;
  std::printf("{\"device\": \"%s\", \"buffer_mib\": %zu, \"copy_gbps\": %.1f, \"read_gbps\": %.1f}\n",
              prop.name, mib, copy_gbps, read_gbps);
  return 0;
}
