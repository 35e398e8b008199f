// kernels::frexp_exponent and kernels::pow2_of (csrc/kernels/guards.h) against libm's
// frexp and ldexp: every exponent, normal and subnormal, with several mantissas, float
// and double; and SpectrumScale::from_max brings each maximum into [0.5, 1). Compiled
// and run by tests/test_guards_bits.py. Prints "<n> failures" last.
#include <cmath>
#include <cstdio>
#include <limits>

#include "kernels/guards.h"

namespace {

int failures = 0;

template <typename R>
void check_value(R m) {
  using safesvd::kernels::frexp_exponent;
  using safesvd::kernels::SpectrumScale;
  int e = 0;
  (void)std::frexp(m, &e);
  if (frexp_exponent(m) != e) {
    std::printf("FAILED: frexp_exponent(%a) = %d, frexp: %d\n", double(m), frexp_exponent(m), e);
    ++failures;
  }
  const R top = SpectrumScale<R>::from_max(m)(m);
  if (!(top >= R(0.5) && top < R(1))) {
    std::printf("FAILED: from_max(%a) scales it to %a\n", double(m), double(top));
    ++failures;
  }
}

template <typename R>
void check_type(const char* name) {
  using Bits = safesvd::kernels::FloatBits<R>;
  const int lo = std::numeric_limits<R>::min_exponent - 1, hi = std::numeric_limits<R>::max_exponent - 1;
  for (int k = lo; k <= hi; ++k)
    if (safesvd::kernels::pow2_of<R>(k) != std::ldexp(R(1), k)) {
      std::printf("FAILED: %s pow2_of(%d)\n", name, k);
      ++failures;
    }
  // Every power of two from the smallest subnormal to the largest, times mantissas.
  const R mantissas[] = {R(1), R(1.25), R(1.5), R(1.75), R(2) - std::numeric_limits<R>::epsilon()};
  for (int k = lo - Bits::kMantissa; k <= hi; ++k)
    for (R f : mantissas) {
      const R m = std::ldexp(f, k);
      if (m > R(0) && m <= std::numeric_limits<R>::max()) check_value(m);
    }
  check_value(std::numeric_limits<R>::denorm_min());
  check_value(std::numeric_limits<R>::min());
  check_value(std::numeric_limits<R>::max());
  // The identity for what from_max does not scale.
  for (R m : {R(0), -R(1), std::numeric_limits<R>::infinity(), std::numeric_limits<R>::quiet_NaN()}) {
    const auto s = safesvd::kernels::SpectrumScale<R>::from_max(m);
    if (s.f1 != R(1) || s.f2 != R(1)) {
      std::printf("FAILED: %s from_max(%a) is not the identity\n", name, double(m));
      ++failures;
    }
  }
}

}  // namespace

int main() {
  check_type<float>("float");
  check_type<double>("double");
  std::printf("%d failures\n", failures);
  return failures != 0;
}
