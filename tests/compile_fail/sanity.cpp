// compile_fail:sanity — the control: `ko` fails on a static_assert of this file, so the harness is seen to fail a
// build and to match a sentence. If this pair breaks, no other compile_fail result means anything.
template <class T> inline constexpr bool always_false = false;

template <class T> constexpr int sanity() {
#ifdef RPO_SHOULD_FAIL
  static_assert(always_false<T>,
                "rpo sanity: this must not compile");
#endif
  return 0;
}

int main() { return sanity<int>(); }
