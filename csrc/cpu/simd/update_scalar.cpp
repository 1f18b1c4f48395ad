#include "cpu/simd/isa.h"
#include "cpu/simd/update_portable.h"

namespace lth_fast::simd {
namespace {

void masked_sgd_scalar(DType t, void* p, const void* g, const uint8_t* m, void* buf, int64_t n,
                       const SgdParams& s) {
  portable::with_type(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    portable::masked_sgd(static_cast<T*>(p), static_cast<const T*>(g), m, static_cast<T*>(buf),
                         n, s);
  });
}

void masked_adam_scalar(DType t, void* p, const void* g, const uint8_t* m, void* m1, void* m2,
                        void* vmax, int64_t n, const AdamParams& s) {
  portable::with_type(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    portable::masked_adam(static_cast<T*>(p), static_cast<const T*>(g), m, static_cast<T*>(m1),
                          static_cast<T*>(m2), static_cast<T*>(vmax), n, s);
  });
}

void rewind_scalar(DType t, void* p, const void* snap, const uint8_t* m, int64_t n,
                   bool /*stream: the portable loop leaves stores to the compiler*/) {
  portable::with_type(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    portable::rewind(static_cast<T*>(p), static_cast<const T*>(snap), m, n);
  });
}

}  // namespace

extern const UpdateKernels kUpdateScalar = {masked_sgd_scalar, rewind_scalar,
                                          masked_adam_scalar};

}  // namespace lth_fast::simd
