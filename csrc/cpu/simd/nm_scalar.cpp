// The scalar N:M kernels: the portable loops of nm_portable.h, the reference of the vector ISAs.
#include "cpu/simd/nm_portable.h"

namespace lth_fast::simd {

extern const NmKernels kNmScalar = {portable::has_nan, portable::keep_nm};

}  // namespace lth_fast::simd
