// TF32 switches of libtorch's global context, which tch does not expose.
// The Rust side is src/precision.rs.

#include <ATen/Context.h>

extern "C" {

// Sets what `torch.backends.cudnn.allow_tf32` and
// `torch.backends.cuda.matmul.allow_tf32` set in Python. Returns 0, or 1
// when libtorch threw.
int segan_set_allow_tf32(bool cudnn, bool cublas) noexcept {
  try {
    at::globalContext().setAllowTF32CuDNN(cudnn);
    at::globalContext().setAllowTF32CuBLAS(cublas);
    return 0;
  } catch (...) {
    return 1;
  }
}

// Reads both switches into `cudnn` and `cublas`. Returns 0, or 1 when
// libtorch threw.
int segan_allow_tf32(bool* cudnn, bool* cublas) noexcept {
  try {
    *cudnn = at::globalContext().allowTF32CuDNN();
    *cublas = at::globalContext().allowTF32CuBLAS();
    return 0;
  } catch (...) {
    return 1;
  }
}

}  // extern "C"
